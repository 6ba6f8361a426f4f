"""Inference speed with and without the TPS rectifier (model.rectifier 'tps'), greedy, batch 64.

  python benchmarks/rectifier.py                 # paper-size CRNN, 62 characters, batch 64
  python benchmarks/rectifier.py --repeats 3 --images 256 --json out.json

Two cases, each timed for both models in the same process, alternating within every repeat
(which model goes first alternates too); medians over the repeats, after one warm-up run:

  fixed   one padded batch of 64 images at 32 x 100, forward and greedy decoding on device
          (the `Recognizer`'s own jitted program), ms per image.
  mixed   a stream of keep-ratio images of widths 8..256 (aspect ratios as in
          benchmarks/speed.py) through `Recognizer.recognize_preprocessed` at batch 64 with
          greedy decoding: sorting, padding, the model and the host-side collapse, ms per image.

Both models share the CRNN's random weights; the rectifier is at its initialization (the
identity), which costs what a trained one costs: the same localization network, grid and
sampling run whatever the weights. The issue's target is at most 1.3x the plain model's time
per image. Report the machine line (benchmarks/machine.py: CPU model, CPUs, flags, load) and the
load after with the figures (the script prints them): other processes on the cores slow both
models, and the ratio is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))
if str(ROOT / "benchmarks") not in sys.path:
  sys.path.insert(0, str(ROOT / "benchmarks"))

import machine  # pylint: disable=wrong-import-position

MODELS = {
    "paper": dict(conv_channels=(64, 128, 256, 256, 512, 512, 512), lstm_hidden=256),
    "quickstart": dict(conv_channels=(16, 32, 64, 64, 128, 128, 128), lstm_hidden=64),
}
CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # scene_en's 62.


def _parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", choices=sorted(MODELS), default="paper")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--images", type=int, default=256, help="images in the mixed stream")
  parser.add_argument("--repeats", type=int, default=5, help="timed runs per case and model")
  parser.add_argument("--cases", default="fixed,mixed", help="comma-separated subset")
  parser.add_argument("--json", type=pathlib.Path, default=None, help="also write results here")
  return parser.parse_args(argv)


def mixed_stream(rng, count):
  """`count` float32 `[32, w]` images, keep-ratio widths 8..256 (as benchmarks/speed.py's)."""
  import numpy as np
  widths = np.clip(np.round(32 * np.exp(rng.normal(np.log(3.5), 0.55, count))), 8, 256)
  return [rng.uniform(-1, 1, (32, int(w))).astype(np.float32) for w in widths]


def build(model_name: str):
  """(plain Recognizer, rectifier Recognizer) sharing the CRNN's weights."""
  import jax
  import jax.numpy as jnp
  from crnn_jax import inference
  from crnn_jax.text.charset import Charset
  from crnn_jax.models import crnn

  charset = Charset(CHARS)
  plain = crnn.CRNN(num_classes=charset.num_classes, **MODELS[model_name])
  tps = plain.clone(rectifier="tps")
  variables = tps.init(jax.random.key(0), jnp.zeros((1, 32, 100, 1)), jnp.array([100]))
  plain_variables = {c: {k: v for k, v in tree.items() if k != "rectifier"}
                     for c, tree in variables.items()}
  return tuple(inference.Recognizer.from_model(m, v, charset, decoder="greedy",
                                               compilation_cache=False)
               for m, v in ((plain, plain_variables), (tps, variables)))


def _time(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def interleaved(fns, repeats: int) -> list[float]:
  """Median seconds of each of `fns`, alternating their order every repeat (one warm-up)."""
  for fn in fns:
    fn()
  times = [[] for _ in fns]
  for r in range(repeats):
    order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
    for i in order:
      times[i].append(_time(fns[i]))
  return [statistics.median(t) for t in times]


def main(argv=None) -> dict:
  args = _parse_args(argv)
  import jax
  import numpy as np

  plain, tps = build(args.model)
  described = machine.describe()
  results = {"model": args.model, "batch": args.batch, **described.as_dict(), "cases": {}}
  cases = args.cases.split(",")
  if "fixed" in cases:
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (args.batch, 32, 100, 1)).astype(np.float32)
    widths = np.full(args.batch, 100, np.int32)

    def fixed(reader):
      return lambda: jax.block_until_ready(reader.best_paths(images, widths))

    secs = interleaved([fixed(plain), fixed(tps)], args.repeats)
    results["cases"]["fixed"] = [1000 * s / args.batch for s in secs]
  if "mixed" in cases:
    arrays = mixed_stream(np.random.default_rng(1), args.images)

    def mixed(reader):
      return lambda: reader.recognize_preprocessed(arrays, args.batch)

    secs = interleaved([mixed(plain), mixed(tps)], args.repeats)
    results["cases"]["mixed"] = [1000 * s / args.images for s in secs]
  results["loadavg_after"] = [round(x, 2) for x in machine.load_average()]
  print(f"{described.line()} before, {machine.format_load(results['loadavg_after'])} after")
  print(f"{'case':8s} {'plain ms/img':>13s} {'tps ms/img':>11s} {'ratio':>6s}")
  for case, (a, b) in results["cases"].items():
    print(f"{case:8s} {a:13.2f} {b:11.2f} {b / a:6.2f}")
  if args.json:
    args.json.write_text(json.dumps(results, indent=2) + "\n")
  return results


if __name__ == "__main__":
  main()
