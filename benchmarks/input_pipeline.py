"""Input-pipeline benchmark: images per second from ArrayRecord (decode + resize + batch).

  python benchmarks/input_pipeline.py [--records 4096] [--workers 0 1 2] [--batch-size 64]
      [--resize fixed|keep_ratio] [--seconds 10] [--data-dir DIR]

Builds (once, in --data-dir) an ArrayRecord dataset of synthetic text crops of 32 x 100 pixels
with `crnn-jax data build` (via an LMDB, as users' data would come), then times the training
pipeline of `crnn_jax.data.pipeline` (read, PNG decode, resize to 32 x 100 or keep-ratio,
normalize, label encoding, batching) with 0 (in-process), 1 and 2 grain worker processes.
Start-up (worker spawn, first batch) is excluded; the rate is measured over `--seconds`.
It also reports the single-thread cost of each stage per record (the PNG decode is measured
alone and again as part of decode + resize + encode).

Measured (2024-11, `python benchmarks/input_pipeline.py --data-dir /tmp/bench --seconds 15`,
4096 crops, batches of 64, fixed 32 x 100 resize) on a shared 2-core CPU VM whose load average
was 4-6 from other jobs, so the figures are lower bounds and noisy between runs:

  single thread, per record: read 40-54 us, decode + resize + encode 94-159 us
    (about 7,000 images/s per core when the core is free)
  workers=0: 2,665-3,910 images/s    workers=1: 3,712-4,112    workers=2: 2,706-4,245

With 2 cores, 2 workers cannot beat 1 (the main process and the other jobs share them); each
worker delivers well over 2,000 images/s.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
  sys.path.insert(0, str(ROOT / "benchmarks"))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import machine  # pylint: disable=g-import-not-at-top,wrong-import-position


def build_dataset(data_dir: pathlib.Path, records: int) -> pathlib.Path:
  """Renders `records` synthetic crops at 32 x 100, writes an LMDB, builds ArrayRecord."""
  from crnn_jax.data import builders, lmdb_io, preprocess, records as records_lib
  from crnn_jax.text.charset import ALPHANUMERIC_36, Charset
  from crnn_jax.synth.source_en import SyntheticTextSource

  built = data_dir / "crnn_lmdb" / f"crops_{records}" / "1.0.0"
  if (built / "dataset_info.json").is_file():
    return built
  lmdb_dir = data_dir / "lmdb" / f"crops_{records}"
  if not lmdb_io.is_lmdb_dir(lmdb_dir):
    source = SyntheticTextSource(charset=Charset(ALPHANUMERIC_36),
                                 seed=0, num_records=records, max_length=10, augment="light")
    with lmdb_io.LmdbWriter(lmdb_dir) as writer:
      for i in range(records):
        record = source[i]
        crop = preprocess.resize(record["image"], height=32, fixed_width=100)
        writer.add(records_lib.encode_png(crop), record["text"])
  result = builders.build("lmdb", data_dir, paths=[lmdb_dir], name=f"crops_{records}")
  return result.directory


def stage_costs(directory: pathlib.Path, config, n: int = 500) -> dict[str, float]:
  """Microseconds per record of each stage, in this process (one thread)."""
  from crnn_jax.data import records as records_lib, sources, transforms
  from crnn_jax.text.charset import Charset

  source = sources.open_dataset(directory)
  n = min(n, len(source))
  decode = transforms.DecodeExample(config.data, Charset.from_config(config.text))
  collate = transforms.Collate(config.data)
  t0 = time.perf_counter()
  raw = [source[i] for i in range(n)]
  t1 = time.perf_counter()
  for r in raw:
    records_lib.decode_image(r["image"])
  t2 = time.perf_counter()
  examples = [decode(r) for r in raw]
  t3 = time.perf_counter()
  for k in range(0, n - config.batch_size + 1, config.batch_size):
    collate(examples[k:k + config.batch_size])
  t4 = time.perf_counter()
  per = lambda t: 1e6 * t / n
  return dict(read_us=per(t1 - t0), png_decode_us=per(t2 - t1),
              decode_resize_encode_us=per(t3 - t2), collate_us=per(t4 - t3))  # Per record.


def measure(directory: pathlib.Path, config, workers: int, seconds: float) -> dict[str, float]:
  from crnn_jax.data import pipeline
  from crnn_jax.text.charset import Charset

  config.data.worker_count = workers
  t0 = time.perf_counter()
  it = iter(pipeline.train_dataset(config, Charset.from_config(config.text)))
  next(it)
  startup = time.perf_counter() - t0
  for _ in range(3):  # Let the workers fill their buffers' steady state.
    next(it)
  batches = 0
  t0 = time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    batch = next(it)
    batches += 1
  elapsed = time.perf_counter() - t0
  assert np.isfinite(batch["image"]).all()
  if hasattr(it, "close"):
    it.close()
  return dict(workers=workers, images_per_second=batches * config.batch_size / elapsed,
              batches=batches, startup_seconds=startup)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--records", type=int, default=4096)
  parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--resize", default="fixed", choices=("fixed", "keep_ratio"))
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--data-dir", default="")
  parser.add_argument("--output", help="write the figures as JSON")
  args = parser.parse_args()
  flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags.

  from configs import default
  import tensorflow_datasets as tfds
  tfds.disable_progress_bar()

  data_dir = pathlib.Path(args.data_dir or tempfile.mkdtemp(prefix="crnn_bench_"))
  t0 = time.perf_counter()
  directory = build_dataset(data_dir, args.records)
  print(f"dataset: {directory} ({args.records} crops of 32x100, built in "
        f"{time.perf_counter() - t0:.1f}s)")
  config = default.get_config()
  config.data.source = "arrayrecord"
  config.data.train_paths = (str(directory),)
  config.data.resize = args.resize
  config.batch_size = args.batch_size
  costs = stage_costs(directory, config)
  print("single-thread cost per record: " + ", ".join(f"{k} {v:.0f}" for k, v in costs.items()))
  described = machine.describe()
  print(f"machine: {described.line()}")
  results = []
  for workers in args.workers:
    result = measure(directory, config, workers, args.seconds)
    results.append(result)
    print(f"workers={workers}: {result['images_per_second']:8.0f} images/s "
          f"({result['batches']} batches of {args.batch_size}, start-up "
          f"{result['startup_seconds']:.1f}s)")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(dict(
        records=args.records, batch_size=args.batch_size, resize=args.resize,
        stage_costs_us=costs, results=results, cpus=described.cpus,
        machine=described.as_dict()), indent=2) + "\n")


if __name__ == "__main__":
  main()
