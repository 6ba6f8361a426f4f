"""CPU deployment speed: the JAX and onnxruntime backends, int8, PyTorch eager and RapidOCR.

  pip install -e '.[export,bench]' rapidocr        # onnxruntime, PyTorch, RapidOCR (offline)
  crnn-jax export --weights scene_en --format onnx --quantize int8 --reduce-range \\
      --output scene_en.int8.onnx
  python benchmarks/cpu_latency.py --int8 scene_en.int8.onnx --output cpu_latency.json

On the same images (the word crops of testdata/heldout_en, or --data FOLDER), for 1 and 2
threads and batch 1 and 64, it times images -> strings for:
  jax            `Recognizer(backend='jax')` (XLA), compiled first;
  onnxruntime    `Recognizer(backend='onnxruntime')`: the float32 model of crnn_jax.onnx_graph;
  onnxruntime int8  `Recognizer.from_onnx(--int8)`, a `crnn-jax export --quantize int8` file;
  pytorch        benchmarks/torch_crnn.py (eager, inference mode) with the same weights, on the
                 same preprocessed images batched as the Recognizer batches them (sorted by
                 width, padded to each batch's widest, without masking), greedy decoding;
  rapidocr       RapidOCR's PP-OCR recognizer (recognition only) on the original crops, its own
                 preprocessing (height 48) and batching (`rec_batch_num`).
Every crnn-jax row decodes greedily (`decoder='greedy'`), as the PyTorch row does, so that the
rows time the same work; the default lm decoder adds its cost on the host (docs/benchmarks.md, "The lm
decoder"). It reports milliseconds per image (median of --repeats) and the throughput relative to
PyTorch's. Each thread count runs in its own process (XLA sizes its thread pool from the CPU
affinity when it starts, so it cannot change in a process): the parent restricts each child
with `os.sched_setaffinity` and sets every framework's thread count to the same number. The
strings of the onnxruntime backends are compared with the JAX backend's (`agree` column).

Run it on an otherwise idle machine and report the machine line it prints (benchmarks/machine.py:
the CPU model, CPUs, flags and load average) and the load before each thread count with the
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "testdata" / "heldout_en"
SYSTEMS = ("jax", "onnxruntime", "onnxruntime int8", "pytorch", "rapidocr")

if str(REPO / "benchmarks") not in sys.path:
  sys.path.insert(0, str(REPO / "benchmarks"))

import machine  # pylint: disable=wrong-import-position


def _median_ms(fn, count: int, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1000 / count)
  return statistics.median(times)


def worker(args) -> dict:
  """Times every system at args.threads threads (this process's CPUs are already limited)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import crnn_jax  # pylint: disable=import-outside-toplevel
  from crnn_jax import inference  # pylint: disable=import-outside-toplevel
  from crnn_jax.decoding import greedy  # pylint: disable=import-outside-toplevel

  paths = inference.expand_inputs([args.data])[:args.images]
  threads = args.threads[0]
  results = {}
  jax_rec = crnn_jax.Recognizer.from_pretrained(args.weights, decoder="greedy")
  arrays = [jax_rec.preprocess(p) for p in paths]
  recognizers = {"jax": jax_rec,
                 "onnxruntime": crnn_jax.Recognizer.from_pretrained(
                     args.weights, backend="onnxruntime", threads=threads, decoder="greedy")}
  if args.int8:
    recognizers["onnxruntime int8"] = crnn_jax.Recognizer.from_onnx(args.int8, threads=threads,
                                                                     decoder="greedy")
  reference = None
  for name, rec in recognizers.items():
    entry = {}
    for batch in (1, 64):
      count = len(arrays) if batch == 64 else min(len(arrays), args.single_images)
      run = lambda rec=rec, batch=batch, count=count: rec.recognize_preprocessed(
          arrays[:count], batch_size=batch)
      run()  # Compile (JAX) and warm up.
      entry[f"batch {batch}"] = _median_ms(run, count, args.repeats)
    texts = [p.text for p in rec.recognize_preprocessed(arrays, batch_size=64)]
    if reference is None:
      reference = texts
    entry["agree"] = float(np.mean([a == b for a, b in zip(texts, reference)]))
    results[name] = entry

  if not args.no_torch:
    import torch  # pylint: disable=import-outside-toplevel
    import torch_crnn  # pylint: disable=import-outside-toplevel
    from crnn_jax.data import preprocess  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(threads)
    model = jax_rec.backend.model
    torch_model = torch_crnn.CRNN(model.num_classes, tuple(model.conv_channels),
                                  model.batch_norm_layout, model.lstm_hidden, model.lstm_layers)
    torch_crnn.load_flax_variables(torch_model, jax_rec.backend.variables)
    torch_model.eval()

    def torch_read(count, batch):
      """The Recognizer's batching (sorted by width, each batch padded to its widest)."""
      order = sorted(range(count), key=lambda i: arrays[i].shape[1])
      out = [""] * count
      for start in range(0, count, batch):
        idx = order[start:start + batch]
        chunk = [arrays[i] for i in idx]
        images = torch.from_numpy(preprocess.pad_to_width(chunk, max(a.shape[1] for a in chunk)))
        with torch.inference_mode():
          logits = torch_model(images.permute(0, 3, 1, 2)).permute(1, 0, 2).numpy()
        widths = np.array([a.shape[1] for a in chunk], np.int32)
        ids, _ = greedy.best_reading(logits, widths // 4 + 1)
        for i, labels in zip(idx, greedy.collapse(ids)):
          out[i] = jax_rec.charset.decode(labels)
      return out

    entry = {}
    for batch in (1, 64):
      count = len(arrays) if batch == 64 else min(len(arrays), args.single_images)
      torch_read(count, batch)
      entry[f"batch {batch}"] = _median_ms(lambda c=count, b=batch: torch_read(c, b), count,
                                           args.repeats)
    entry["agree"] = float(np.mean([a == b for a, b in zip(torch_read(len(arrays), 64),
                                                           reference)]))
    results["pytorch"] = entry

  if args.rapidocr:
    import cv2  # pylint: disable=import-outside-toplevel
    from rapidocr import RapidOCR  # pylint: disable=import-outside-toplevel
    from rapidocr.ch_ppocr_rec import TextRecInput  # pylint: disable=import-outside-toplevel
    crops = [cv2.imread(str(p)) for p in paths]
    entry = {}
    for batch in (1, 64):
      engine = RapidOCR(params={"EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                                "Rec.rec_batch_num": batch})
      recognizer = engine._load_rec_model()  # pylint: disable=protected-access
      count = len(crops) if batch == 64 else min(len(crops), args.single_images)
      run = lambda r=recognizer, count=count, batch=batch: [
          r(TextRecInput(img=crops[i:i + batch])) for i in range(0, count, batch)]
      run()
      entry[f"batch {batch}"] = _median_ms(run, count, args.repeats)
    results["rapidocr"] = entry
  return results


def markdown(runs: dict, cpu: str) -> str:
  lines = [f"CPU: {cpu}", "",
           "| system | threads | batch 1: ms/image | x PyTorch | batch 64: ms/image | x PyTorch "
           "| strings = JAX's |", "|---|---:|---:|---:|---:|---:|---:|"]
  for threads, results in sorted(runs.items()):
    torch_entry = results.get("pytorch", {})
    for system in SYSTEMS:
      if system not in results:
        continue
      entry, cells = results[system], []
      for batch in ("batch 1", "batch 64"):
        ms = entry[batch]
        ratio = torch_entry.get(batch, 0) / ms if torch_entry else 0
        cells += [f"{ms:.2f}", f"{ratio:.2f}" if ratio else "-"]
      agree = f"{100 * entry['agree']:.1f}%" if "agree" in entry else "-"
      lines.append(f"| {system} | {threads} | " + " | ".join(cells) + f" | {agree} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--weights", default="scene_en", help="shipped model or weights dir")
  parser.add_argument("--int8", default="", help="int8 .onnx file of the same model")
  parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder of crops")
  parser.add_argument("--images", type=int, default=640, help="images timed at batch 64")
  parser.add_argument("--single-images", type=int, default=100,
                      help="images timed one at a time")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--rapidocr", action="store_true", help="also RapidOCR (PyPI rapidocr)")
  parser.add_argument("--output", help="write the results as JSON")
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)

  if args.worker:
    print(json.dumps(worker(args)))
    return 0
  cpu = machine.describe().line()
  print(cpu, file=sys.stderr)
  runs = {}
  for threads in args.threads:
    cpus = sorted(os.sched_getaffinity(0))
    if threads > len(cpus):
      print(f"only {len(cpus)} CPUs: skipping {threads} threads", file=sys.stderr)
      continue
    child = [sys.executable, __file__, "--worker", "--threads", str(threads),
             "--weights", args.weights, "--data", args.data, "--images", str(args.images),
             "--single-images", str(args.single_images), "--repeats", str(args.repeats)]
    child += (["--int8", args.int8] if args.int8 else []) + (
        ["--no-torch"] if args.no_torch else []) + (["--rapidocr"] if args.rapidocr else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    load = machine.format_load(machine.load_average())
    print(f"{threads} thread(s), load {load} ...", file=sys.stderr, flush=True)
    result = subprocess.run(child, env=env, capture_output=True, text=True, check=False,
                            preexec_fn=lambda t=threads, c=cpus: os.sched_setaffinity(0, c[:t]))
    if result.returncode:
      print(result.stderr[-3000:], file=sys.stderr)
      return 1
    runs[threads] = json.loads(result.stdout.strip().splitlines()[-1])
  print(markdown(runs, cpu))
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(dict(cpu=cpu, runs=runs), indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
