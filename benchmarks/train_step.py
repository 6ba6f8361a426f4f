"""Train-step throughput: images per second and the share of the machine's peak FLOP/s.

  python benchmarks/train_step.py                                   # CPU: 1 and 8 devices
  python benchmarks/train_step.py --config configs/quickstart.py --batch-sizes 32 64
  python benchmarks/train_step.py --dtypes float32 bfloat16 --batch-sizes 64 256 1024  # GPU

For every (device count, activation dtype, global batch size) the step is the one training
runs: `train_lib.train_step` jitted over a `data` mesh with the batch sharded, the state
replicated (or sharded with --shard-params) and donated, on a fixed random batch of 32xW
images with random labels. Reported per case:

  step_ms     median wall time of a step (after compilation and warm-up).
  images/s    global batch / step time.
  GFLOP/step  XLA's cost analysis of the compiled step (`jit(...).lower(...).compile()
              .cost_analysis()['flops']`: 2 per multiply-add of convolutions and matrix
              products, 1 per elementwise operation), per device times the device count.
  TFLOP/s     GFLOP/step / step time.
  peak        the machine's peak, measured: the best FLOP/s of large square matrix products
              (2 n^3 flops) in the case's dtype on one device, before and after the cases
              (the larger is kept: on a shared machine a busy moment lowers it), times the
              device count on accelerators. On CPU the simulated devices share the same
              cores, so the peak is the whole machine's.
  % peak      TFLOP/s / peak.

On CPU the devices are simulated (`--xla_force_host_platform_device_count`, set here before
JAX starts): 8 devices on 2 cores measure the partitioning overhead, not a speed-up. On GPU
the real devices are used; bfloat16 cases run activations in bfloat16 (parameters, optimizer
state, LSTM cell state, log-softmax and CTC in float32).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))


def _parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="configs/default.py",
                      help="config file (model, optimizer, image size)")
  parser.add_argument("--devices", type=int, nargs="+", default=None,
                      help="device counts (default: 1 and 8 on CPU, 1 and all on GPU/TPU)")
  parser.add_argument("--dtypes", nargs="+", default=None,
                      help="activation dtypes (default: float32 on CPU, float32 bfloat16 "
                      "on accelerators)")
  parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                      help="global batch sizes (default: 64 on CPU; 64 256 1024 elsewhere)")
  parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
  parser.add_argument("--warmup", type=int, default=2, help="untimed steps per case")
  parser.add_argument("--shard-params", action="store_true", help="FSDP-sharded state")
  parser.add_argument("--cpu-devices", type=int, default=8,
                      help="simulated CPU devices (ignored on accelerators)")
  parser.add_argument("--json", help="also write the results to this file")
  return parser.parse_args(argv)


def _load_config(path: str):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location("bench_config", ROOT / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per program.
    analysis = analysis[0]
  return float(analysis.get("flops", 0.0))


def measure_peak(dtype, device, sizes) -> float:
  """Best FLOP/s of `n x n` matrix products on `device`, over the sizes."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  best = 0.0
  for n in sizes:
    a = jax.device_put(jnp.ones((n, n), dtype), device)
    b = jax.device_put(jnp.ones((n, n), dtype), device)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    times = []
    for _ in range(10):
      start = time.perf_counter()
      matmul(a, b).block_until_ready()
      times.append(time.perf_counter() - start)
    best = max(best, 2 * n**3 / min(times))
  return best


def _random_batch(config, batch_size: int, num_classes: int, seed: int = 0):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import transforms  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  width = transforms.max_width(config.data)
  max_label = transforms.max_label_length(config.data)
  lengths = rng.integers(1, min(10, max_label) + 1, batch_size).astype(np.int32)
  labels = rng.integers(1, num_classes, (batch_size, max_label)).astype(np.int32)
  labels[np.arange(max_label)[None, :] >= lengths[:, None]] = 0
  return dict(
      image=rng.uniform(-1, 1, (batch_size, config.data.height, width, 1)).astype(np.float32),
      width=np.full((batch_size,), width, np.int32),
      label=labels,
      label_length=lengths,
      mask=np.ones((batch_size,), bool),
      dropped=np.zeros((batch_size,), np.int32),
  )


def run_case(config, num_devices: int, dtype: str, batch_size: int, args) -> dict:
  """Compiles and times one case; returns its figures."""
  import jax  # pylint: disable=g-import-not-at-top
  from crnn_jax import sharding, train_lib  # pylint: disable=g-import-not-at-top
  from crnn_jax.text.charset import Charset  # pylint: disable=g-import-not-at-top
  from crnn_jax.models import crnn  # pylint: disable=g-import-not-at-top

  config = config.copy_and_resolve_references()
  config.model.dtype = dtype
  config.batch_size = batch_size
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  mesh = sharding.make_mesh(num_devices)
  sharding.check_batch_size(batch_size, mesh)
  state = train_lib.create_train_state(config, model, jax.random.key(0), mesh, args.shard_params)
  shardings = sharding.state_sharding(state, mesh, args.shard_params)
  replicated = sharding.replicated(mesh)
  batch = jax.device_put(_random_batch(config, batch_size, charset.num_classes),
                         sharding.batch_sharded(mesh))
  rng = jax.device_put(jax.random.key(1), replicated)
  step = jax.jit(train_lib.train_step,
                 in_shardings=(shardings, sharding.batch_sharded(mesh), replicated),
                 out_shardings=(shardings, replicated), donate_argnums=0)
  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  flops = _flops(compiled) * num_devices  # The cost analysis counts one device's program.
  for _ in range(args.warmup):
    state, metrics = compiled(state, batch, rng)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(args.steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batch, rng)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  step_s = statistics.median(times)
  return dict(devices=num_devices, dtype=dtype, batch_size=batch_size,
              step_ms=1e3 * step_s, images_per_s=batch_size / step_s,
              gflop_per_step=flops / 1e9, tflops=flops / step_s / 1e12, compile_s=compile_s,
              skipped=int(metrics["num_skipped_steps"]))


def main(argv=None) -> int:
  args = _parse_args(argv)
  import crnn_jax  # pylint: disable=g-import-not-at-top,unused-import  # Sets the CPU XLA flags.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  # Simulated CPU devices; must be set before JAX starts its backends (no effect elsewhere).
  jax.config.update("jax_num_cpu_devices", args.cpu_devices)
  platform = jax.default_backend()
  on_cpu = platform == "cpu"
  devices = args.devices or ([1, 8] if on_cpu else sorted({1, jax.device_count()}))
  dtypes = args.dtypes or (["float32"] if on_cpu else ["float32", "bfloat16"])
  batch_sizes = args.batch_sizes or ([64] if on_cpu else [64, 256, 1024])
  config = _load_config(args.config)

  sizes = (1024, 2048) if on_cpu else (4096, 8192)
  peak_fn = lambda: {d: measure_peak(jnp.dtype(d), jax.devices()[0], sizes) for d in dtypes}
  peaks = peak_fn()
  device_kind = jax.devices()[0].device_kind
  print(f"{platform} ({device_kind}, {jax.device_count()} devices, {os.cpu_count()} CPUs), "
        f"config {args.config}, jax {jax.__version__}")
  header = ("devices", "dtype", "batch", "step_ms", "images/s", "GFLOP/step", "TFLOP/s",
            "% peak", "compile_s")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  results = []
  for n in devices:
    for dtype in dtypes:
      for batch_size in batch_sizes:
        results.append(run_case(config, n, dtype, batch_size, args))
  peaks = {d: max(p, q) for (d, p), q in zip(peaks.items(), peak_fn().values())}
  for r in results:
    peak = peaks[r["dtype"]] * (1 if on_cpu else r["devices"])
    r.update(peak_tflops=peak / 1e12, share_of_peak=r["tflops"] * 1e12 / peak,
             platform=platform, device_kind=device_kind)
    print(f"| {r['devices']} | {r['dtype']} | {r['batch_size']} | {r['step_ms']:.1f} | "
          f"{r['images_per_s']:.1f} | {r['gflop_per_step']:.1f} | {r['tflops']:.4f} | "
          f"{100 * r['share_of_peak']:.1f}% | {r['compile_s']:.1f} |")
  for dtype, peak in peaks.items():
    print(f"measured peak of one device, {dtype} matmul: {peak / 1e12:.3f} TFLOP/s")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
