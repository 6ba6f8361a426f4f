"""Synthetic renderer throughput: images per second on one core, per augmentation level.

  python benchmarks/renderer.py [--config configs/scene_en.py:stage=1] [--records 500]
      [--levels strong scene] [--output renderer.json]

For each level the config's synthetic source (its fonts, vocabulary, backgrounds) is created
and timed in this process, on one thread:
  preload: decoding every background photograph once (each worker process does it once, on
        first use of each image);
  cold: the first `--records` records, with fonts still being loaded at each size;
  warm: `--records` records after `--warmup` more, as a long-running data-loader worker sees
        them.
Each record is rendered and then encoded as the training pipeline does (grayscale, resize to
the model's input, normalize, label ids), so the rate is what one grain worker can feed. The
train step of the full-size CRNN takes about 3 s per batch of 64 on the 2-core CPU (about 20
images/s), so one worker at the 'scene' level has to stay well above that.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
  sys.path.insert(0, str(REPO / "benchmarks"))

from crnn_jax import config_file  # pylint: disable=wrong-import-position
from crnn_jax.data import pipeline  # pylint: disable=wrong-import-position
from crnn_jax.data import transforms  # pylint: disable=wrong-import-position
from crnn_jax.text.charset import Charset  # pylint: disable=wrong-import-position
import machine  # pylint: disable=wrong-import-position


def time_level(config, level: str, records: int, warmup: int) -> dict:
  config = config.copy_and_resolve_references()
  config.data.synthetic.augment = level
  if level != "scene":
    config.data.synthetic.strong_fraction = 0.0
  charset = Charset.from_config(config.text)
  start = time.perf_counter()
  source = pipeline.make_source(config, charset, "train", 2 * records + warmup)
  setup = time.perf_counter() - start
  start = time.perf_counter()
  from crnn_jax.synth import backgrounds  # pylint: disable=import-outside-toplevel
  for path in getattr(source, "backgrounds", ()):
    backgrounds.load_background(path)
  preload = time.perf_counter() - start
  encode = transforms.EncodeExample(config.data, charset)
  rates = {}
  for name, indices in (("cold", range(records)), ("warmup", range(records, records + warmup)),
                        ("warm", range(records + warmup, 2 * records + warmup))):
    start = time.perf_counter()
    for i in indices:
      encode(source[i])
    rates[name] = len(indices) / max(time.perf_counter() - start, 1e-9)
  return dict(level=level, setup_seconds=setup, preload_seconds=preload,
              cold_images_per_second=rates["cold"], warm_images_per_second=rates["warm"],
              fonts=len(source.fonts), backgrounds=len(getattr(source, "backgrounds", ())))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default=f"{REPO / 'configs' / 'scene_en.py'}:stage=1")
  parser.add_argument("--records", type=int, default=500)
  parser.add_argument("--warmup", type=int, default=1000)
  parser.add_argument("--levels", nargs="+", default=["strong", "scene"],
                      choices=("none", "light", "strong", "scene"))
  parser.add_argument("--output", help="write the figures as JSON")
  args = parser.parse_args()
  os.environ.setdefault("OMP_NUM_THREADS", "1")
  try:
    import cv2  # pylint: disable=import-outside-toplevel
    cv2.setNumThreads(1)
  except ImportError:
    pass
  config = config_file.load(args.config)
  print(f"{machine.describe().line()} before; {args.records} records per phase")
  print("| level | fonts | backgrounds | set-up s | preload s | cold images/s | warm images/s |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  results = []
  for level in args.levels:
    r = time_level(config, level, args.records, args.warmup)
    results.append(r)
    print(f"| {level} | {r['fonts']} | {r['backgrounds']} | {r['setup_seconds']:.1f} | "
          f"{r['preload_seconds']:.1f} | "
          f"{r['cold_images_per_second']:.0f} | {r['warm_images_per_second']:.0f} |")
  print(f"load average {machine.format_load(machine.load_average())} after")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
