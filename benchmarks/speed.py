"""CRNN speed, JAX vs PyTorch, on the same inputs in one process.

  pip install -e '.[bench]'  # PyTorch, for the comparison
  python benchmarks/speed.py                    # paper-size CRNN, batch 64
  python benchmarks/speed.py --model quickstart --repeats 10
  python benchmarks/speed.py --steps 300        # plus a 300-step memory-growth check

Cases (batch 64 unless --batch):
  train fixed    one training step (forward, CTC loss, backward, Adam) on 32x100 images.
  train bucket   the same on a keep-ratio batch: widths 65..128 padded to the 128 bucket.
  infer fixed    forward and greedy decoding (to class ids, collapsed on the host) at 32x100.
  infer mixed    a stream of keep-ratio images of widths 8..256: JAX through
                 `crnn_jax.inference.Recognizer` (sorted, batched, widths rounded up to
                 multiples of 32, one compiled program per width), PyTorch on the same
                 padded batches; both decode greedily (best path).
  infer mixed lm the same stream through the Recognizer with the lm decoder (prefix beam
                 search rescored by the character language model; the default of English
                 models), against the same Recognizer decoding greedily: what the language
                 model costs. JAX only (PyTorch has no such decoder).
  split train    where a training step's time goes, at 32x100: the conv stack forward and
                 backward (BatchNorm on batch statistics, parameter gradients) and the two
                 BiLSTM layers with their projections forward and backward (parameter and
                 input gradients), each timed alone, loss = sum of squares of the output.
  split infer    the same two parts, forward only, inference mode.

The two frameworks alternate within each repeat (which one goes first alternates too) and the
medians over the repeats are reported, after warm-up; JAX's compile time is reported
separately. Both run with the same number of threads (--threads, default: the CPUs this
process may use): `torch.set_num_threads` and XLA's CPU thread pool, which takes its size from
the process's CPU affinity (set here with `os.sched_setaffinity` when --threads is smaller).
Peak memory (RSS) of a training run is measured in a fresh subprocess per framework, which
trains for --steps steps and also reports the RSS after the first and the last step.
PyTorch processes every image at the padded width of its batch (no masking), as CRNN code in
PyTorch does; JAX masks the padding, so its results do not depend on it.

Run it on an otherwise idle machine and report the machine line (benchmarks/machine.py: CPU
model, CPUs, flags, load) and the load after, both printed, with the figures: when other
processes compete for the cores, PyTorch's OpenMP threads (which busy-wait at barriers) slow
down several times more than XLA's thread pool, and the ratio swings in JAX's favour.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
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
NUM_CLASSES = 37  # Blank + the 36 lower-case alphanumerics of configs/default.py.
MIXED_IMAGES = 512  # Images in the mixed-width inference stream.
WIDTH_STEP = 32  # Recognizer's default rounding of batch widths.


def _parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--model", choices=sorted(MODELS), default="paper")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--width", type=int, default=100, help="width of the fixed-size cases")
  parser.add_argument("--repeats", type=int, default=20, help="timed runs per case")
  parser.add_argument("--warmup", type=int, default=5, help="untimed runs per case")
  parser.add_argument("--threads", type=int, default=None,
                      help="threads for both frameworks (default: all CPUs of this process)")
  parser.add_argument("--cases", help="comma-separated subset of the cases",
                      default="train_fixed,train_bucket,infer_fixed,infer_mixed,"
                              "infer_mixed_lm,split_train,split_infer")
  parser.add_argument("--steps", type=int, default=20,
                      help="train steps of the memory runs (RSS at the first and last step)")
  parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
  parser.add_argument("--json", type=pathlib.Path, default=None, help="also write results here")
  parser.add_argument("--memory-child", choices=["jax", "torch"], help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def _set_threads(threads: int | None) -> int:
  """Restricts this process to `threads` CPUs (before JAX starts); returns the count."""
  cpus = sorted(os.sched_getaffinity(0))
  if threads and threads < len(cpus):
    os.sched_setaffinity(0, cpus[:threads])
    cpus = cpus[:threads]
  return len(cpus)


# --- Inputs -------------------------------------------------------------------


def _labels(rng, frames, batch, max_len=10):
  """Random feasible labels: `[B, L]` ids in 1..36 and `[B]` lengths <= frames // 2."""
  import numpy as np
  lengths = np.minimum(rng.integers(1, max_len + 1, batch), np.maximum(frames // 2, 1))
  labels = np.zeros((batch, max_len), np.int32)
  for i, n in enumerate(lengths):
    labels[i, :n] = rng.integers(1, NUM_CLASSES, n)
  return labels, lengths.astype(np.int32)


def make_train_batch(rng, batch, widths, padded_width):
  """A training batch: images `[B, 32, W, 1]` zero beyond each width, labels, lengths."""
  import numpy as np
  images = np.zeros((batch, 32, padded_width, 1), np.float32)
  for i, w in enumerate(widths):
    images[i, :, :w] = rng.uniform(-1, 1, (32, w, 1))
  labels, label_lengths = _labels(rng, np.asarray(widths) // 4 + 1, batch)
  return dict(image=images, width=np.asarray(widths, np.int32), label=labels,
              label_length=label_lengths, mask=np.ones(batch, bool),
              dropped=np.zeros(batch, bool))


def mixed_stream(rng, count):
  """`count` float32 `[32, w]` images with keep-ratio widths (aspect ratio ~ lognormal)."""
  import numpy as np
  widths = np.clip(np.round(32 * np.exp(rng.normal(np.log(3.5), 0.55, count))), 8, 256)
  return [rng.uniform(-1, 1, (32, int(w))).astype(np.float32) for w in widths]


# --- JAX ------------------------------------------------------------------------


class JaxBench:
  """The project's own code paths: `train_lib.train_step` and `inference.Recognizer`."""

  def __init__(self, model_kwargs, batch_size):
    import jax
    import jax.numpy as jnp
    import optax
    from crnn_jax import inference, train_lib
    from crnn_jax.text.charset import ALPHANUMERIC_36, Charset
    from crnn_jax.decoding import greedy
    from crnn_jax.models import crnn

    self.jax, self.jnp, self.greedy = jax, jnp, greedy
    self.model = crnn.CRNN(num_classes=NUM_CLASSES, **model_kwargs)
    variables = self.model.init(jax.random.key(0), jnp.zeros((1, 32, 100, 1)),
                                jnp.array([100]), train=False)
    self.variables = variables
    # The train step donates its state: give it its own copy of the variables.
    own = jax.tree.map(jnp.copy, variables)
    self.state = train_lib.TrainState.create(
        apply_fn=self.model.apply, params=own["params"], tx=optax.adam(1e-3),
        batch_stats=own["batch_stats"])
    self._train_jit = jax.jit(train_lib.train_step, donate_argnums=0)
    self._predict_jit = jax.jit(self._predict_impl)
    self._train = self._predict = None  # Compiled for the current case's shapes.
    # Greedy, as PyTorch decodes: the Recognizer's default for English charsets is lm.
    self.recognizer = inference.Recognizer.from_model(self.model, variables,
                                                      Charset(ALPHANUMERIC_36),
                                                      width_step=WIDTH_STEP, decoder="greedy")
    self.lm_recognizer = inference.Recognizer.from_model(self.model, variables,
                                                         Charset(ALPHANUMERIC_36),
                                                         width_step=WIDTH_STEP, decoder="lm")
    self.batch_size = batch_size

  def _predict_impl(self, variables, images, widths):
    logits, lengths = self.model.apply(variables, images, widths, train=False)
    return self.greedy.best_path(logits, lengths)

  def compile_train(self, batch) -> float:
    """Compiles the train step for `batch`'s shapes; returns the seconds it took."""
    start = time.perf_counter()
    self._train = self._train_jit.lower(self.state, batch).compile()
    return time.perf_counter() - start

  def compile_predict(self, images, widths) -> float:
    start = time.perf_counter()
    self._predict = self._predict_jit.lower(self.variables, images, widths).compile()
    return time.perf_counter() - start

  def device_batch(self, batch):
    return {k: self.jnp.asarray(v) for k, v in batch.items()}

  def train_step(self, batch):
    self.state, metrics = self._train(self.state, batch)
    self.jax.block_until_ready(metrics["loss_sum"])

  def infer(self, images, widths):
    ids, conf = self.jax.device_get(self._predict(self.variables, images, widths))
    return self.greedy.collapse(ids), conf

  def infer_stream(self, arrays):
    return self.recognizer.recognize_preprocessed(arrays, self.batch_size)

  def infer_stream_lm(self, arrays):
    return self.lm_recognizer.recognize_preprocessed(arrays, self.batch_size)

  def parts(self, images, widths, train: bool):
    """Compiled `{"conv stack": fn, "BiLSTMs": fn}` for the split cases; fn() blocks."""
    jax, jnp = self.jax, self.jnp
    from crnn_jax.models import crnn
    model, variables = self.model, self.variables
    conv = crnn.ConvStack(model.conv_channels, crnn.BATCH_NORM_LAYOUTS[model.batch_norm_layout])
    conv_vars = {k: variables[k]["cnn"] for k in ("params", "batch_stats")}
    lengths = crnn.output_lengths(widths)

    def conv_out(params, images):
      out = conv.apply({**conv_vars, "params": params}, images, widths, train=train,
                       mutable=["batch_stats"] if train else False)
      return out[0] if train else out

    def rnn_out(params, features):
      for layer in range(model.lstm_layers):
        last = layer == model.lstm_layers - 1
        rnn = crnn.BidirectionalLSTM(model.lstm_hidden,
                                     model.num_classes if last else model.lstm_hidden)
        features = rnn.apply({"params": params[f"rnn{layer}"]}, features, lengths)
      return features

    features = conv_out(conv_vars["params"], images)[:, 0]
    rnn_params = {k: v for k, v in variables["params"].items() if k.startswith("rnn")}
    if train:
      squares = lambda f: lambda *args: jnp.sum(jnp.square(f(*args)))
      conv_fn = jax.jit(jax.grad(squares(conv_out)))
      rnn_fn = jax.jit(jax.grad(squares(rnn_out), argnums=(0, 1)))
    else:
      conv_fn, rnn_fn = jax.jit(conv_out), jax.jit(rnn_out)
    return {"conv stack": lambda: jax.block_until_ready(conv_fn(conv_vars["params"], images)),
            "BiLSTMs": lambda: jax.block_until_ready(rnn_fn(rnn_params, features))}


# --- PyTorch --------------------------------------------------------------------


class TorchBench:
  """benchmarks/torch_crnn.py with `torch.optim.Adam` and `F.ctc_loss`."""

  def __init__(self, model_kwargs, batch_size, threads):
    import torch
    import torch_crnn
    from crnn_jax.decoding import greedy

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    self.torch, self.greedy = torch, greedy
    self.model = torch_crnn.CRNN(NUM_CLASSES, **model_kwargs)
    self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
    self.batch_size = batch_size

  def device_batch(self, batch):
    import numpy as np
    t = self.torch
    labels = [batch["label"][i, :n] for i, n in enumerate(batch["label_length"])]
    return dict(image=t.from_numpy(batch["image"]).permute(0, 3, 1, 2).contiguous(),
                width=t.from_numpy(batch["width"]).long(),
                targets=t.from_numpy(np.concatenate(labels)).long(),
                label_length=t.from_numpy(batch["label_length"]).long())

  def train_step(self, batch):
    t = self.torch
    self.model.train()
    self.optimizer.zero_grad(set_to_none=True)
    log_probs = self.model(batch["image"]).log_softmax(-1)  # [T, B, K]
    loss = t.nn.functional.ctc_loss(log_probs, batch["targets"], batch["width"] // 4 + 1,
                                    batch["label_length"], blank=0, reduction="sum",
                                    zero_infinity=True) / log_probs.shape[1]
    loss.backward()
    self.optimizer.step()
    return loss.detach().item()

  def _decode(self, images, widths):
    t = self.torch
    with t.inference_mode():
      log_probs = self.model(images).log_softmax(-1)  # [T, B, K]
      best, ids = log_probs.max(-1)
      lengths = widths // 4 + 1
      real = t.arange(ids.shape[0])[:, None] < lengths[None, :]
      ids = t.where(real, ids, 0).T.numpy()
      conf = t.where(real, best, 0).sum(0).exp().numpy()
    return self.greedy.collapse(ids), conf

  def infer(self, images, widths):
    self.model.eval()
    return self._decode(images, widths)

  def parts(self, images, train: bool):
    """`{"conv stack": fn, "BiLSTMs": fn}` for the split cases, as `JaxBench.parts`."""
    t, model = self.torch, self.model
    model.train(train)  # BatchNorm on batch statistics when training.
    with t.no_grad():
      features = model.cnn(images).squeeze(2).permute(2, 0, 1).contiguous()  # [T, B, C]
    if not train:
      def forward(module, x):
        model.eval()
        with t.inference_mode():
          module(x)
      return {"conv stack": lambda: forward(model.cnn, images),
              "BiLSTMs": lambda: forward(model.rnn, features)}
    features.requires_grad_(True)

    def forward_backward(module, x):
      model.train()
      model.zero_grad(set_to_none=True)
      x.grad = None
      module(x).square().sum().backward()
    return {"conv stack": lambda: forward_backward(model.cnn, images),
            "BiLSTMs": lambda: forward_backward(model.rnn, features)}

  def infer_stream(self, arrays):
    """Recognizer's batching (sort by width, pad to a multiple of 32) in eager PyTorch."""
    import numpy as np
    from crnn_jax.data import preprocess
    self.model.eval()
    t = self.torch
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    out = [None] * len(arrays)
    for start in range(0, len(order), self.batch_size):
      idx = order[start:start + self.batch_size]
      width = -(-max(arrays[i].shape[1] for i in idx) // WIDTH_STEP) * WIDTH_STEP
      images = t.from_numpy(preprocess.pad_to_width([arrays[i] for i in idx], width))
      widths = t.from_numpy(np.array([arrays[i].shape[1] for i in idx]))
      ids, conf = self._decode(images.permute(0, 3, 1, 2), widths)
      for row, i in enumerate(idx):
        out[i] = (ids[row], float(conf[row]))
    return out


# --- Timing ---------------------------------------------------------------------


def _time(fn):
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def interleaved(jax_fn, torch_fn, repeats, warmup):
  """Medians (s) of `repeats` alternating runs of both functions after `warmup` runs each."""
  for _ in range(warmup):
    jax_fn()
    torch_fn()
  times = {"jax": [], "torch": []}
  for r in range(repeats):
    pair = [("jax", jax_fn), ("torch", torch_fn)]
    for name, fn in pair if r % 2 == 0 else pair[::-1]:
      times[name].append(_time(fn))
  return {k: statistics.median(v) for k, v in times.items()}, times


def _status_mb(field: str) -> float:
  """A `/proc/self/status` memory field in MB (VmRSS: now; VmHWM: peak of this process)."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024
  raise KeyError(field)


def _rss_mb() -> float:
  return _status_mb("VmRSS")


def memory_child(args) -> None:
  """Trains `args.steps` steps in this (fresh) process; prints RSS figures as JSON."""
  import numpy as np
  rng = np.random.default_rng(0)
  threads = _set_threads(args.threads)
  model_kwargs = MODELS[args.model]
  if args.memory_child == "jax":
    os.environ["CRNN_JAX_CACHE_DIR"] = "off"
    bench = JaxBench(model_kwargs, args.batch)
  else:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    bench = TorchBench(model_kwargs, args.batch, threads)
  batch = bench.device_batch(make_train_batch(rng, args.batch, [args.width] * args.batch,
                                              args.width))
  if args.memory_child == "jax":
    bench.compile_train(batch)
  bench.train_step(batch)
  rss = [_rss_mb()]  # After steps 1, N/4, N/2, 3N/4 and N.
  checkpoints = sorted({max(args.steps * k // 4, 1) for k in range(1, 5)})
  for step in range(2, args.steps + 1):
    bench.train_step(batch)
    if step in checkpoints:
      rss.append(_rss_mb())
  peak = _status_mb("VmHWM")  # Not ru_maxrss, which a child inherits from its parent.
  print(json.dumps(dict(first_mb=rss[0], last_mb=rss[-1], rss_mb=rss, peak_mb=peak,
                        steps=args.steps)))


def run_memory(args, framework):
  cmd = [sys.executable, __file__, "--memory-child", framework, "--model", args.model,
         "--batch", str(args.batch), "--width", str(args.width), "--steps", str(args.steps)]
  if args.threads:
    cmd += ["--threads", str(args.threads)]
  out = subprocess.run(cmd, check=True, capture_output=True, text=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
  args = _parse_args(argv)
  if args.memory_child:
    return memory_child(args)
  threads = _set_threads(args.threads)
  # An empty persistent compilation cache, so that compile times are those of a first run.
  os.environ["CRNN_JAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="crnn_jax_speed_cache_")
  import numpy as np
  import jax
  import torch

  cases = args.cases.split(",")
  model_kwargs = MODELS[args.model]
  jb = JaxBench(model_kwargs, args.batch)
  tb = TorchBench(model_kwargs, args.batch, threads)
  rng = np.random.default_rng(0)
  described = machine.describe()  # After _set_threads: its CPUs are those the benchmark uses.
  load_before = described.load
  rows, compile_s = [], {}
  batch, width = args.batch, args.width

  def add_row(case, images, medians):
    rows.append(dict(case=case, images=images, jax_s=medians["jax"], torch_s=medians["torch"]))
    print(f"  {case}: jax {medians['jax'] * 1e3:.0f} ms, torch {medians['torch'] * 1e3:.0f} ms,"
          f" ratio {medians['torch'] / medians['jax']:.2f}x", flush=True)

  def add_lm_row(case, images, lm_s, greedy_s):
    rows.append(dict(case=case, images=images, jax_s=lm_s, torch_s=None, jax_greedy_s=greedy_s))
    print(f"  {case}: jax lm {lm_s * 1e3:.0f} ms, jax greedy {greedy_s * 1e3:.0f} ms "
          f"(lm costs {lm_s / greedy_s:.2f}x)", flush=True)

  print(f"# {args.model} CRNN, batch {batch}, {threads} threads, jax {jax.__version__} "
        f"({jax.default_backend()}), torch {torch.__version__}", flush=True)
  print(f"# {described.line()}", flush=True)
  for case in cases:
    if case in ("train_fixed", "train_bucket"):
      if case == "train_fixed":
        widths, padded = [width] * batch, width
      else:
        widths, padded = list(rng.integers(65, 129, batch)), 128
      host = make_train_batch(rng, batch, widths, padded)
      jbatch, tbatch = jb.device_batch(host), tb.device_batch(host)
      compile_s[case] = jb.compile_train(jbatch)
      medians, _ = interleaved(lambda: jb.train_step(jbatch), lambda: tb.train_step(tbatch),
                               args.repeats, args.warmup)
      add_row(case, batch, medians)
    elif case == "infer_fixed":
      host = make_train_batch(rng, batch, [width] * batch, width)
      jimages, jwidths = jax.numpy.asarray(host["image"]), jax.numpy.asarray(host["width"])
      timages = torch.from_numpy(host["image"]).permute(0, 3, 1, 2).contiguous()
      twidths = torch.from_numpy(host["width"]).long()
      compile_s[case] = jb.compile_predict(jimages, jwidths)
      medians, _ = interleaved(lambda: jb.infer(jimages, jwidths),
                               lambda: tb.infer(timages, twidths), args.repeats, args.warmup)
      add_row(case, batch, medians)
    elif case == "infer_mixed":
      stream = mixed_stream(rng, MIXED_IMAGES)
      first = _time(lambda: jb.infer_stream(stream))  # Compiles one program per bucket.
      steady = _time(lambda: jb.infer_stream(stream))
      compile_s[case] = first - steady
      jax.clear_caches()  # A fresh process: programs now come from the persistent cache.
      compile_s[case + " (cached)"] = _time(lambda: jb.infer_stream(stream)) - steady
      medians, _ = interleaved(lambda: jb.infer_stream(stream), lambda: tb.infer_stream(stream),
                               max(args.repeats // 4, 3), 1)
      add_row(case, len(stream), medians)
    elif case == "infer_mixed_lm":
      stream = mixed_stream(rng, MIXED_IMAGES)
      jb.infer_stream_lm(stream)  # Compiles, and builds the language model (about 1 s).
      # `interleaved` alternates its two functions: here JAX lm ("jax") and JAX greedy.
      medians, _ = interleaved(lambda: jb.infer_stream_lm(stream),
                               lambda: jb.infer_stream(stream), max(args.repeats // 4, 3), 1)
      add_lm_row(case, len(stream), medians["jax"], medians["torch"])
    elif case in ("split_train", "split_infer"):
      train = case == "split_train"
      host = make_train_batch(rng, batch, [width] * batch, width)
      jparts = jb.parts(jax.numpy.asarray(host["image"]), jax.numpy.asarray(host["width"]),
                        train)
      tparts = tb.parts(torch.from_numpy(host["image"]).permute(0, 3, 1, 2).contiguous(), train)
      for part in jparts:
        medians, _ = interleaved(jparts[part], tparts[part], args.repeats, args.warmup)
        add_row(f"{case}: {part}", batch, medians)
    else:
      raise ValueError(f"unknown case {case!r}")

  memory = {}
  if not args.no_memory:
    for framework in ("jax", "torch"):
      memory[framework] = run_memory(args, framework)
  load_after = machine.load_average()

  print()
  print(f"{args.model} CRNN ({sum(model_kwargs['conv_channels'])} conv channels, LSTM "
        f"{model_kwargs['lstm_hidden']}), batch {batch}, {threads} threads; medians of "
        f"{args.repeats} runs (infer mixed: {max(args.repeats // 4, 3)} passes over "
        f"{MIXED_IMAGES} images); load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after.")
  print()
  print("| case | JAX ms | PyTorch ms | JAX images/s | PyTorch images/s | JAX / PyTorch |")
  print("|---|---:|---:|---:|---:|---:|")
  names = dict(train_fixed=f"train step, 32x{width}", train_bucket="train step, widths 65-128 "
               "in the 128 bucket", infer_fixed=f"inference, 32x{width}",
               infer_mixed=f"inference, {MIXED_IMAGES} mixed widths 8-256 (greedy)",
               infer_mixed_lm=f"inference, {MIXED_IMAGES} mixed widths 8-256, lm decoder "
               "(JAX only)")
  for part in ("conv stack", "BiLSTMs"):
    names[f"split_train: {part}"] = f"train split, 32x{width}: {part} forward + backward"
    names[f"split_infer: {part}"] = f"inference split, 32x{width}: {part} forward"
  for row in rows:
    if row["torch_s"] is None:  # The lm case: JAX lm, and the same stream greedy for scale.
      print(f"| {names[row['case']]} | {row['jax_s'] * 1e3:.0f} (greedy "
            f"{row['jax_greedy_s'] * 1e3:.0f}) | - | {row['images'] / row['jax_s']:.0f} | - | - |")
      continue
    print(f"| {names[row['case']]} | {row['jax_s'] * 1e3:.0f} | {row['torch_s'] * 1e3:.0f} | "
          f"{row['images'] / row['jax_s']:.0f} | {row['images'] / row['torch_s']:.0f} | "
          f"{row['torch_s'] / row['jax_s']:.2f}x |")
  print()
  print("JAX compile time (s, into an empty persistent cache; '(cached)': read back from it): " +
        ", ".join(f"{k} {v:.1f}" for k, v in compile_s.items()))
  if memory:
    print(f"Peak RSS of a {args.steps}-step training run (32x{width}, batch {batch}): " +
          "; ".join(f"{k} {v['peak_mb']:.0f} MB (RSS after steps 1, N/4, N/2, 3N/4, N: "
                    + ", ".join(f"{m:.0f}" for m in v["rss_mb"]) + " MB)"
                    for k, v in memory.items()))
  if args.json:
    args.json.write_text(json.dumps(dict(rows=rows, compile_s=compile_s, memory=memory,
                                         load=[load_before, load_after],
                                         machine=described.as_dict()), indent=2))


if __name__ == "__main__":
  main()
