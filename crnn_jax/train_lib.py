"""Training and evaluation loop: `train_and_evaluate(config, workdir)`.

The train step is a pure function `train_step(state, batch, rng) -> (state, metrics)`, jitted
over a device mesh with explicit shardings: the batch split along `data`, the state replicated
(or sharded FSDP-style with `config.shard_params`) and donated. Its metrics are per-step device
scalars, fetched only at log and checkpoint steps. Periodic evaluation is an
`evaluation.evaluators.SplitEvaluator` on the run's held-out split.

A run writes into its workdir (process 0 alone, except the checkpoints, which orbax
coordinates across processes):

  config.json      the resolved config, rewritten at every start.
  run_info.json    package versions, devices, mesh and start step, rewritten at every start.
  train_log.jsonl  one JSON line per train step (loss, gradient/update/parameter norms,
                   learning rate, skipped); a resumed run first drops the lines after its
                   checkpoint, so the file matches an unbroken run's.
  tensorboard/     summaries at log and eval steps.
  checkpoints/     orbax checkpoints of the state and the data iterator, saved together.

Faults: SIGTERM (preemption) saves a checkpoint at the current step and raises
`checkpointing.Preempted`.
`config.max_consecutive_bad_steps` non-finite steps in a row save the last good state and raise
`TooManyBadSteps`. A killed run loses only the steps since its last complete checkpoint.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import pathlib
import time
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from crnn_jax import checkpointing, distributed, optim, sharding, visualize
from crnn_jax import run_files
from crnn_jax.data import pipeline
from crnn_jax.data import transforms
from crnn_jax.text.charset import Charset
from crnn_jax.evaluation import evaluators
from crnn_jax.models import warm_start
from crnn_jax.ops import ctc


class TooManyBadSteps(RuntimeError):
  """Too many consecutive steps had a non-finite loss or gradient."""


class TrainState(train_state.TrainState):
  """Parameters, optimizer state and BatchNorm statistics."""

  batch_stats: Any = None


def _root_keys(seed: int) -> tuple[jax.Array, jax.Array]:
  """The initialization key and the training key of a run."""
  init_rng, train_rng = jax.random.split(jax.random.key(seed))
  return init_rng, train_rng


def _init_variables(model: nn.Module, height: int, width: int, rng: jax.Array):
  images = jnp.zeros((1, height, width, 1), jnp.float32)
  return model.init(rng, images, jnp.array([width], jnp.int32), train=False)


def create_train_state(config, model: nn.Module, rng: jax.Array, mesh=None,
                       shard_params: bool = False) -> TrainState:
  """Initializes the model and optimizer (from `config.seed`-derived `rng`).

  Parameters and optimizer state are float32 whatever `config.model.dtype` (the activation
  dtype) is.

  Args:
    config: the run's config.
    model: the CRNN.
    rng: the initialization key (on the mesh's devices when `mesh` is given).
    mesh: if given, the state is created directly with its shardings over the mesh
      (`sharding.state_sharding`); otherwise on the default device.
    shard_params: shard the state over the mesh (FSDP) instead of replicating it.
  """
  static = (model, config.data.height, transforms.max_width(config.data))
  out_shardings = None
  if mesh is not None:
    shapes = jax.eval_shape(functools.partial(_init_variables, *static), rng)
    out_shardings = sharding.state_sharding(shapes, mesh, shard_params)
  # One program (op by op, initialization compiles a program per operation), cached for equal
  # models (flax modules compare by value).
  variables = jax.jit(_init_variables, static_argnums=(0, 1, 2),
                      out_shardings=out_shardings)(*static, rng)
  wrong = {jax.tree_util.keystr(path): str(x.dtype)
           for path, x in jax.tree_util.tree_leaves_with_path(variables["params"])
           if x.dtype != jnp.float32}
  if wrong:
    raise ValueError(f"parameters must be float32 (mixed precision keeps them so): {wrong}")
  tx = optim.make_optimizer(config.optimizer, config.num_train_steps, config.batch_size)
  state = TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                            batch_stats=variables.get("batch_stats", {}))
  if mesh is not None:  # The optimizer state follows its parameters' shardings.
    state = jax.device_put(state, sharding.state_sharding(state, mesh, shard_params))
  return state


def shape_mismatches(tree_a, tree_b, names: tuple[str, str] = ("a", "b")) -> list[str]:
  """The leaves two variable trees disagree on, as 'path: NAME_A shape, NAME_B shape' lines.

  A path only one tree has shows 'absent' for the other; an empty list means the same paths
  with the same shapes. Used to check loaded or converted weights against a model's tree.
  """
  shapes_a, shapes_b = ({jax.tree_util.keystr(path): tuple(np.shape(x))
                         for path, x in jax.tree_util.tree_leaves_with_path(tree)}
                        for tree in (tree_a, tree_b))
  return [f"{path}: {names[0]} {shapes_a.get(path, 'absent')}, "
          f"{names[1]} {shapes_b.get(path, 'absent')}"
          for path in sorted(shapes_a.keys() | shapes_b.keys())
          if shapes_a.get(path) != shapes_b.get(path)]


def load_initial_weights(state: TrainState, weights: str, charset: Charset,
                         mode: str = "exact") -> TrainState:
  """`state` with the parameters and BatchNorm statistics of trained weights (fine-tuning).

  The optimizer state and the step are left as they are (a fresh run). Each loaded array takes
  the sharding of the array it replaces.

  Args:
    state: a freshly created train state.
    weights: a training workdir (its latest checkpoint), a shipped model name or a weights
      directory (`crnn_jax.pretrained`).
    charset: the run's alphabet; in mode 'exact' it must equal the one the weights were
      trained with.
    mode: 'exact' (same alphabet and model), 'partial' (copy what fits: another alphabet's
      shared characters, arrays of the same shape) or 'subset' (partial, and leading slices
      of wider arrays); see `crnn_jax.models.warm_start`. What was left fresh is logged.

  Raises:
    ValueError: an unknown mode; in mode 'exact', another alphabet, or parameters of other
      names or shapes (the first few named).
  """
  if mode not in warm_start.MODES:
    raise ValueError(f"init_weights_mode must be one of {warm_start.MODES}, got {mode!r}")
  path = pathlib.Path(weights).expanduser()
  if (path / run_files.CONFIG_FILE).is_file() and checkpointing.checkpoint_dir(path).is_dir():
    model = run_files.load_model(workdir=path)
    config_file = path / run_files.CONFIG_FILE
  else:
    from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
    model = run_files.load_model(weights=weights)
    config_file = pretrained.resolve(weights) / pretrained.CONFIG_FILE
  variables = model.variables
  theirs = model.charset
  ours = {"params": state.params, "batch_stats": state.batch_stats}
  if mode != "exact":
    variables, report = warm_start.transfer(
        jax.device_get(ours), variables, mode=mode, run_chars=charset.chars,
        weights_chars=theirs.chars)
    _log("init_weights %s (mode %s): %s", weights, mode, report.summary())
    loaded = jax.device_put(variables, jax.tree.map(lambda x: x.sharding, ours))
    return state.replace(params=loaded["params"], batch_stats=loaded["batch_stats"])
  if (theirs.chars, theirs.fold_case) != (charset.chars, charset.fold_case):
    only_run = "".join(sorted(set(charset.chars) - set(theirs.chars)))[:40]
    only_weights = "".join(sorted(set(theirs.chars) - set(charset.chars)))[:40]
    raise ValueError(
        f"init_weights {weights!r} were trained on another alphabet: {len(theirs.chars)} "
        f"characters (fold_case {theirs.fold_case}) against this run's {len(charset.chars)} "
        f"(fold_case {charset.fold_case}); only in the run: {only_run!r}, only in the weights: "
        f"{only_weights!r}{' (same set, other order)' if not only_run + only_weights else ''}. "
        f"Set text.charset and text.fold_case as in {config_file}, or "
        f"init_weights_mode='partial' to copy what fits")
  differences = shape_mismatches(ours, variables, names=("run", "weights"))
  if differences:
    raise ValueError(
        f"init_weights {weights!r} do not fit this run's model ({len(differences)} arrays "
        f"differ; set config.model as in the weights' config, or init_weights_mode='partial' "
        f"or 'subset'): " + "; ".join(differences[:5]))
  variables = jax.tree.map(lambda x, like: np.asarray(x, like.dtype), variables, ours)
  loaded = jax.device_put(variables, jax.tree.map(lambda x: x.sharding, ours))
  return state.replace(params=loaded["params"], batch_stats=loaded["batch_stats"])


def _tree_where(cond, new, old):
  return jax.tree.map(lambda n, o: jnp.where(cond, n, o), new, old)


def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array | None = None
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimization step.

  Args:
    state: the train state.
    batch: device arrays `image [B, 32, W, 1]`, `width [B]`, `label [B, L]`,
      `label_length [B]`, `mask [B]`, `dropped [B]`.
    rng: the run's training key; the step's key, `fold_in(rng, state.step)`, is the model's
      'dropout' stream (unused by the CRNN, ready for stochastic layers or augmentation).

  Returns:
    The new state (unchanged but for the step counter if the loss or gradients are not finite)
    and a dict of scalar metrics of this step: `loss_sum` (over feasible samples),
    `num_feasible`, `num_infeasible`, `num_dropped`, `num_skipped_steps` (0 or 1), and the
    global norms `grad_norm` (as computed, maybe non-finite), `update_norm` (0 when skipped)
    and `param_norm` (after the step).
  """
  rngs = {"dropout": jax.random.fold_in(rng, state.step)} if rng is not None else None

  def loss_fn(params):
    (logits, lengths), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"], batch["width"],
        train=True, mutable=["batch_stats"], rngs=rngs)
    # Mixed precision: whatever the activation dtype, log-softmax and CTC run in float32.
    out = ctc.ctc_loss(logits.astype(jnp.float32), lengths, batch["label"],
                       batch["label_length"], batch["mask"])
    return out["loss"], (out, updates["batch_stats"])

  (loss, (out, new_batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  # Non-finite gradients must not reach the optimizer state either: zero them, then keep the
  # old state.
  grads = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
  updates, new_opt_state = state.tx.update(grads, state.opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)
  new_state = state.replace(
      step=state.step + 1,
      params=_tree_where(finite, new_params, state.params),
      opt_state=_tree_where(finite, new_opt_state, state.opt_state),
      batch_stats=_tree_where(finite, new_batch_stats, state.batch_stats),
  )
  metrics = dict(
      loss_sum=jnp.where(finite, out["per_sample"].sum(), 0.0),
      num_feasible=jnp.where(finite, out["num_feasible"], 0),
      num_infeasible=out["num_infeasible"],
      num_dropped=batch["dropped"].sum(),
      num_skipped_steps=(~finite).astype(jnp.int32),
      grad_norm=grad_norm,
      update_norm=jnp.where(finite, optax.tree.norm(updates), 0.0),
      param_norm=optax.tree.norm(new_state.params),
  )
  if "skipped" in batch:  # Dataset sources: bad records skipped before each sample, per reason.
    metrics["skipped_records"] = batch["skipped"].sum(axis=0)
  return new_state, metrics


def inference_state(model: run_files.LoadedModel) -> TrainState:
  """An opened model (`run_files.load_model`) as a TrainState without optimizer, for the
  evaluators (`evaluation.evaluators`)."""
  return TrainState(step=model.step, apply_fn=model.module.apply,
                    params=model.variables["params"], tx=None, opt_state=None,
                    batch_stats=model.variables["batch_stats"])


def _log(msg: str, *args) -> None:
  """absl INFO logging from process 0 only."""
  if jax.process_index() == 0:
    logging.info(msg, *args)


logging.ABSLLogger.register_frame_to_skip(__file__, _log.__name__)


def _log_eval_grid(writer, evaluator: evaluators.SplitEvaluator, examples,
                    step: int) -> None:
  """Writes a TensorBoard picture of the first validation images with prediction and truth."""
  if not evaluator.batches or not examples:
    return
  first = {k: v[evaluator.rows] for k, v in evaluator.batches[0].items()}  # The examples' rows.
  keep = np.asarray(first["mask"], bool)
  n = min(len(examples), int(keep.sum()))
  visualize.log_eval_examples(
      writer, first["image"][keep][:n], [e[0] for e in examples[:n]],
      [e[1] for e in examples[:n]], step, widths=first["width"][keep][:n],
      confidences=[e[2] for e in examples[:n]])


def _summary_writer(workdir: pathlib.Path):
  if jax.process_index() != 0:
    return None
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  return SummaryWriter(str(workdir / "tensorboard"))


def _format_metrics(values: dict[str, float]) -> str:
  return ", ".join(f"{k} {v:.4g}" for k, v in values.items())


def eta_seconds(step: int, first_step: int, total_steps: int, elapsed: float) -> float | None:
  """Seconds left at the mean pace of this process since `first_step` (evaluations and
  checkpoints included); None before the first step is done."""
  done = step - first_step
  if done <= 0 or elapsed <= 0:
    return None
  return (total_steps - step) * elapsed / done


def format_duration(seconds: float | None) -> str:
  """'1h05m', '12m30s', '45s' (or '?' for None)."""
  if seconds is None or not math.isfinite(seconds):
    return "?"
  seconds = max(0, int(round(seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m"
  return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _finite_or_none(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


class StepLog:
  """Per-step metrics: fetched from the devices in groups, one JSON line per step.

  `add` keeps a step's device metrics without waiting for them; `flush` fetches the pending
  ones, appends their lines to `train_log.jsonl` (process 0) and tracks runs of consecutive
  skipped steps; `summary` averages the steps flushed since the last summary.
  """

  def __init__(self, path: pathlib.Path | None, first_step: int, lr_fn,
               max_consecutive_bad_steps: int = 0):
    """Opens the log, dropping lines after `first_step` (left by a killed run).

    Args:
      path: the JSON-lines file, or None to write nothing (processes other than 0).
      first_step: the step the run starts from (0 or the restored checkpoint's step).
      lr_fn: step (1-based) -> learning rate.
      max_consecutive_bad_steps: a run of this many skipped steps sets `tripped` (0: never).
    """
    self.path = path
    self.lr_fn = lr_fn
    self.max_bad = max_consecutive_bad_steps
    self.pending: list[tuple[int, dict]] = []
    self.window: list[dict] = []
    self.consecutive_bad = 0
    self.bad_since = 0
    self.tripped: tuple[int, int] | None = None  # (first, last) step of the bad run.
    if path is not None:
      kept = []
      if path.exists():
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= first_step]
      path.write_text("".join(line + "\n" for line in kept))

  def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
    self.pending.append((step, metrics))

  def flush(self) -> None:
    if not self.pending:
      return
    steps = [s for s, _ in self.pending]
    values = jax.device_get([m for _, m in self.pending])
    self.pending = []
    records = []
    for step, m in zip(steps, values):
      skipped = bool(m["num_skipped_steps"])
      feasible = int(m["num_feasible"])
      records.append(dict(
          step=step,
          loss=None if skipped or not feasible else float(m["loss_sum"]) / feasible,
          grad_norm=_finite_or_none(m["grad_norm"]),
          update_norm=None if skipped else float(m["update_norm"]),
          param_norm=float(m["param_norm"]),
          learning_rate=self.lr_fn(step),
          feasible=feasible,
          infeasible=int(m["num_infeasible"]),
          dropped=int(m["num_dropped"]),
          skipped=skipped,
      ))
      if "skipped_records" in m:
        records[-1]["skipped_records"] = {
            reason: int(n) for reason, n in zip(transforms.SKIP_REASONS, m["skipped_records"]) if n}
      if skipped:
        self.consecutive_bad += 1
        if self.consecutive_bad == 1:
          self.bad_since = step
        if self.max_bad and self.consecutive_bad >= self.max_bad and self.tripped is None:
          self.tripped = (self.bad_since, step)
      else:
        self.consecutive_bad = 0
    self.window.extend(records)
    if self.path is not None:
      with self.path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))

  def summary(self) -> dict[str, float]:
    """Averages over the steps since the last summary (flush first)."""
    window, self.window = self.window, []
    good = [r for r in window if not r["skipped"]]
    skipped_records = collections.Counter()
    for r in window:
      skipped_records.update(r.get("skipped_records", {}))
    feasible = sum(r["feasible"] for r in good)
    mean = lambda key: float(np.mean([r[key] for r in good])) if good else float("nan")
    return dict(
        loss=sum(r["loss"] * r["feasible"] for r in good if r["loss"] is not None)
        / max(feasible, 1),
        grad_norm=mean("grad_norm"),
        update_norm=mean("update_norm"),
        param_norm=window[-1]["param_norm"] if window else float("nan"),
        learning_rate=window[-1]["learning_rate"] if window else float("nan"),
        infeasible_labels=sum(r["infeasible"] for r in window),
        dropped_labels=sum(r["dropped"] for r in window),
        skipped_steps=sum(r["skipped"] for r in window),
        **{f"skipped_records/{reason}": n for reason, n in sorted(skipped_records.items())},
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains (resuming from the latest checkpoint in `workdir`) and evaluates.

  Returns:
    The final evaluation metrics.

  Raises:
    checkpointing.Preempted: after SIGTERM, once the checkpoint at the current step is saved.
    TooManyBadSteps: after `config.max_consecutive_bad_steps` consecutive non-finite steps,
      once the last good state is saved.
  """
  distributed.initialize(config.get("distributed"))
  checkpointing.quiet_orbax_info()  # Our lines and real warnings only (`--verbosity=1`: all).
  # Installed first: a SIGTERM during start-up (restore, compilation) stops the run after its
  # first step instead of killing it.
  watcher = checkpointing.PreemptionWatcher()
  try:
    return _train_and_evaluate(config, pathlib.Path(workdir), watcher)
  finally:
    watcher.close()


def _train_and_evaluate(config, workdir: pathlib.Path,
                        watcher: checkpointing.PreemptionWatcher):
  """`train_and_evaluate` once the distributed runtime and the SIGTERM handler are set up."""
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  charset = Charset.from_config(config.text)
  model = run_files.build_module(config)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  data_index, data_count = sharding.process_batch_slice(config.batch_size, mesh)
  shard_params = bool(config.get("shard_params", False))

  # Every random number derives from config.seed: the initialization key and the training key
  # that each step folds its step number into.
  replicated = sharding.replicated(mesh)
  init_rng, train_rng = jax.jit(_root_keys, static_argnums=0,
                                out_shardings=(replicated, replicated))(config.seed)
  state = create_train_state(config, model, init_rng, mesh, shard_params)
  state_shardings = sharding.state_sharding(state, mesh, shard_params)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  _log("CRNN with %s parameters, %d classes, mesh %s, %s activations%s", f"{num_params:,}",
       charset.num_classes, dict(mesh.shape), config.model.dtype,
       ", sharded parameters" if shard_params else "")

  data = pipeline.train_dataset(config, charset, process_index=data_index,
                                process_count=data_count)
  data_iter = iter(data)
  manager = checkpointing.make_manager(workdir, max_to_keep=config.keep_checkpoints)
  if manager.all_steps():
    restored, _ = checkpointing.restore_newest_readable(
        manager, workdir, state, data_iter, log=lambda m: logging.warning("%s", m))
    state = restored
    _log("Resumed from step %d of %s", int(jax.device_get(state.step)), workdir)
  elif config.get("init_weights"):
    state = load_initial_weights(state, config.init_weights, charset,
                                 mode=config.get("init_weights_mode", "exact"))
    _log("Initialized from the weights %s", config.init_weights)
  first_step = int(jax.device_get(state.step))
  if is_main:
    run_files.save_config(config, workdir)
    run_files.save_run_info(run_files.run_info(config, mesh, first_step), workdir)

  evaluator = evaluators.SplitEvaluator(config, charset, mesh,
                                         state_shardings=state_shardings)
  p_train_step = jax.jit(
      train_step,
      in_shardings=(state_shardings, sharding.batch_sharded(mesh), replicated),
      out_shardings=(state_shardings, replicated),
      donate_argnums=0)
  schedule = optim.learning_rate_schedule(config.optimizer, config.num_train_steps,
                                          config.batch_size)
  step_log = StepLog(workdir / run_files.TRAIN_LOG_FILE if is_main else None, first_step,
                     functools.partial(optim.learning_rate_at, schedule, config.optimizer),
                     config.get("max_consecutive_bad_steps", 0))
  writer = _summary_writer(workdir)

  def save(step: int, force: bool = False) -> None:
    if manager.latest_step() != step:
      checkpointing.save(manager, state, data_iter, force=force)

  last_log_time, last_log_step = time.perf_counter(), first_step
  start_time = last_log_time
  eval_metrics = {}
  try:
    for step in range(first_step + 1, config.num_train_steps + 1):
      batch = sharding.device_batch(pipeline.owned_batch(next(data_iter)), mesh)
      state, metrics = p_train_step(state, batch, train_rng)
      step_log.add(step, metrics)
      is_last = step == config.num_train_steps
      preempted = watcher.reached(step) and not is_last
      log_now = step % config.log_every_steps == 0 or is_last
      save_now = step % config.checkpoint_every_steps == 0 or is_last or preempted
      # Checkpoint steps flush the step log too, so a resumed run's log has no gap.
      if log_now or save_now:
        step_log.flush()

      if log_now:
        summary = step_log.summary()
        now = time.perf_counter()
        summary["images_per_second"] = ((step - last_log_step) * config.batch_size
                                        / (now - last_log_time))
        last_log_time, last_log_step = now, step
        eta = eta_seconds(step, first_step, config.num_train_steps, now - start_time)
        _log("step %d/%d: %s, eta %s", step, config.num_train_steps, _format_metrics(summary),
             format_duration(eta))
        if writer:
          for k, v in summary.items():
            writer.add_scalar(f"train/{k}", v, step)

      if step_log.tripped:
        first_bad, last_bad = step_log.tripped
        save(step, force=True)
        manager.wait_until_finished()
        raise TooManyBadSteps(
            f"steps {first_bad}-{last_bad}: {last_bad - first_bad + 1} consecutive steps with a "
            f"non-finite loss or gradient (config.max_consecutive_bad_steps="
            f"{config.max_consecutive_bad_steps}). Their updates were skipped, so the "
            f"checkpoint saved at step {step} holds the last good parameters and optimizer "
            f"state. Check the data, lower the learning rate or clip the gradients, then rerun "
            f"to resume from it; see {workdir / run_files.TRAIN_LOG_FILE}.")

      if (step % config.eval_every_steps == 0 or is_last) and not preempted:
        eval_metrics, examples = evaluator.run(state, config.num_sample_predictions)
        _log("eval at step %d: %s", step, _format_metrics(eval_metrics))
        if writer:
          for k, v in eval_metrics.items():
            writer.add_scalar(f"eval/{k}", v, step)
          _log_eval_grid(writer, evaluator, examples, step)
          writer.flush()
        if is_last:
          for pred, target, conf in examples:
            _log("  %s %-20r target %-20r confidence %.3f",
                 "ok " if pred == target else "BAD", pred, target, conf)

      if save_now:
        save(step, force=is_last or preempted)
      if preempted:
        manager.wait_until_finished()
        _log("SIGTERM: saved the checkpoint of step %d in %s; stopping", step, workdir)
        raise checkpointing.Preempted(step)
  finally:
    manager.wait_until_finished()
    manager.close()
    if writer:
      writer.close()
    data_iter.close()  # Stops grain's worker processes and frees their prefetched batches.

  if not eval_metrics and first_step >= config.num_train_steps:
    eval_metrics, _ = evaluator.run(state)
    _log("already trained to step %d; eval: %s", first_step, _format_metrics(eval_metrics))
  return eval_metrics
