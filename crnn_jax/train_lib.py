"""Training and evaluation loop: `train_and_evaluate(config, workdir)`.

The train step is a pure function `train_step(state, batch) -> (state, metrics)`, jitted over a
device mesh with the batch sharded along `data`, the state replicated and donated. Metrics are
summed on device and fetched only at log steps.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
from typing import Any

from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from crnn_jax import checkpointing, evaluation, optim, sharding
from crnn_jax.data import pipeline
from crnn_jax.data.charset import Charset
from crnn_jax.decoding import greedy
from crnn_jax.models import crnn
from crnn_jax.ops import ctc

CONFIG_FILE = "config.json"


class TrainState(train_state.TrainState):
  """Parameters, optimizer state and BatchNorm statistics."""

  batch_stats: Any = None


def create_train_state(config, model: nn.Module, rng: jax.Array) -> TrainState:
  """Initializes the model and optimizer (from `config.seed`-derived `rng`)."""
  height = config.data.height
  width = pipeline.max_width(config.data)
  images = jnp.zeros((1, height, width, 1), jnp.float32)
  variables = model.init(rng, images, jnp.array([width], jnp.int32), train=False)
  tx = optim.make_optimizer(config.optimizer, config.num_train_steps)
  return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats", {}))


def _tree_where(cond, new, old):
  return jax.tree.map(lambda n, o: jnp.where(cond, n, o), new, old)


def train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict]:
  """One optimization step.

  Args:
    state: the train state.
    batch: device arrays `image [B, 32, W, 1]`, `width [B]`, `label [B, L]`,
      `label_length [B]`, `mask [B]`, `dropped [B]`.

  Returns:
    The new state (unchanged but for the step counter if the loss or gradients are not finite)
    and a dict of scalar metric sums for this step.
  """

  def loss_fn(params):
    (logits, lengths), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"], batch["width"],
        train=True, mutable=["batch_stats"])
    out = ctc.ctc_loss(logits, lengths, batch["label"], batch["label_length"], batch["mask"])
    return out["loss"], (out, updates["batch_stats"])

  (loss, (out, new_batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  # Non-finite gradients must not reach the optimizer state either: zero them, then keep the
  # old state.
  grads = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
  updated = state.apply_gradients(grads=grads, batch_stats=new_batch_stats)
  new_state = updated.replace(
      params=_tree_where(finite, updated.params, state.params),
      opt_state=_tree_where(finite, updated.opt_state, state.opt_state),
      batch_stats=_tree_where(finite, updated.batch_stats, state.batch_stats),
  )
  metrics = dict(
      loss_sum=jnp.where(finite, out["per_sample"].sum(), 0.0),
      num_feasible=jnp.where(finite, out["num_feasible"], 0),
      num_infeasible=out["num_infeasible"],
      num_dropped=batch["dropped"].sum(),
      num_skipped_steps=(~finite).astype(jnp.int32),
      grad_norm_sum=jnp.where(finite, grad_norm, 0.0),
      param_norm=optax.tree.norm(new_state.params),
      steps=jnp.int32(1),
  )
  return new_state, metrics


def eval_step(state: TrainState, batch: dict[str, jax.Array]):
  """Inference on a batch: returns best-path ids `[B, T]` and confidences `[B]`."""
  logits, lengths = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                                   batch["image"], batch["width"], train=False)
  return greedy.best_path(logits, lengths)


def save_config(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  (workdir / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2) + "\n")


def load_config(workdir) -> ml_collections.ConfigDict:
  """The config a run wrote to its workdir."""
  path = pathlib.Path(workdir) / CONFIG_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: is {workdir} a crnn-jax training workdir?")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


class Evaluator:
  """Greedy-decoding evaluation on a held-out split, with the batches prepared once."""

  def __init__(self, config, charset: Charset, mesh, split: str = "eval",
               num_records: int | None = None):
    sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
    self.charset = charset
    self.mesh = mesh
    self.batches = list(pipeline.eval_batches(
        config, charset, split, num_records, process_index=jax.process_index(),
        process_count=jax.process_count()))
    self._step = jax.jit(eval_step)

  def run(self, state: TrainState, num_examples: int = 0):
    """Returns (metrics dict, list of (prediction, target, confidence) for the first examples)."""
    metrics = evaluation.RecognitionMetrics()
    examples = []
    for batch in self.batches:
      ids, conf = self._step(state, sharding.device_batch(batch, self.mesh))
      ids, conf = jax.device_get((ids, conf))
      mask = batch["mask"]
      preds = [self.charset.decode(s) for s in greedy.collapse(ids)]
      preds = [p for p, m in zip(preds, mask) if m]
      targets = [t for t, m in zip(batch["text"], mask) if m]
      confs = conf[mask]
      metrics.update(preds, targets, confs)
      examples.extend(zip(preds, targets, confs.tolist()))
    return metrics.result(), examples[:num_examples]


def _summary_writer(workdir: pathlib.Path):
  if jax.process_index() != 0:
    return None
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  return SummaryWriter(str(workdir / "tensorboard"))


def _format_metrics(values: dict[str, float]) -> str:
  return ", ".join(f"{k} {v:.4g}" for k, v in values.items())


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains (resuming from the latest checkpoint in `workdir`) and evaluates.

  Returns:
    The final evaluation metrics.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)

  state = create_train_state(config, model, jax.random.key(config.seed))
  state_shardings = sharding.state_sharding(state, mesh)
  state = jax.device_put(state, state_shardings)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info("CRNN with %s parameters, %d classes, mesh %s", f"{num_params:,}",
               charset.num_classes, dict(mesh.shape))

  data = pipeline.train_dataset(config, charset, process_index=jax.process_index(),
                                process_count=jax.process_count())
  data_iter = iter(data)
  manager = checkpointing.make_manager(workdir, max_to_keep=config.keep_checkpoints)
  if manager.latest_step() is not None:
    state = checkpointing.restore(manager, state, data_iter)
    logging.info("Resumed from step %d of %s", int(state.step), workdir)
  elif jax.process_index() == 0:
    save_config(config, workdir)

  evaluator = Evaluator(config, charset, mesh)
  p_train_step = jax.jit(
      train_step,
      in_shardings=(state_shardings, sharding.batch_sharded(mesh)),
      out_shardings=(state_shardings, sharding.replicated(mesh)),
      donate_argnums=0)
  writer = _summary_writer(workdir)
  schedule = optim.learning_rate_schedule(config.optimizer, config.num_train_steps)

  first_step = int(jax.device_get(state.step))
  acc = None
  last_log_time, last_log_step = time.perf_counter(), first_step
  eval_metrics = {}
  for step in range(first_step + 1, config.num_train_steps + 1):
    batch = sharding.device_batch(next(data_iter), mesh)
    state, metrics = p_train_step(state, batch)
    acc = metrics if acc is None else jax.tree.map(jnp.add, acc, metrics)
    is_last = step == config.num_train_steps

    if step % config.log_every_steps == 0 or is_last:
      sums = jax.device_get(acc)
      acc = None
      now = time.perf_counter()
      steps = int(sums["steps"])
      summary = dict(
          loss=float(sums["loss_sum"]) / max(int(sums["num_feasible"]), 1),
          grad_norm=float(sums["grad_norm_sum"]) / max(steps - int(sums["num_skipped_steps"]), 1),
          param_norm=float(sums["param_norm"]) / steps,
          learning_rate=float(schedule(step - 1)),
          images_per_second=(step - last_log_step) * config.batch_size / (now - last_log_time),
          infeasible_labels=int(sums["num_infeasible"]),
          dropped_labels=int(sums["num_dropped"]),
          skipped_steps=int(sums["num_skipped_steps"]),
      )
      last_log_time, last_log_step = now, step
      logging.info("step %d/%d: %s", step, config.num_train_steps, _format_metrics(summary))
      if writer:
        for k, v in summary.items():
          writer.add_scalar(f"train/{k}", v, step)

    if step % config.eval_every_steps == 0 or is_last:
      eval_metrics, examples = evaluator.run(state, config.num_sample_predictions)
      logging.info("eval at step %d: %s", step, _format_metrics(eval_metrics))
      if writer:
        for k, v in eval_metrics.items():
          writer.add_scalar(f"eval/{k}", v, step)
        writer.flush()
      if is_last:
        for pred, target, conf in examples:
          logging.info("  %s %-20r target %-20r confidence %.3f",
                       "ok " if pred == target else "BAD", pred, target, conf)

    if step % config.checkpoint_every_steps == 0 or is_last:
      checkpointing.save(manager, state, data_iter, force=is_last)

  manager.wait_until_finished()
  manager.close()
  if writer:
    writer.close()
  if not eval_metrics and first_step >= config.num_train_steps:
    eval_metrics, _ = evaluator.run(state)
    logging.info("already trained to step %d; eval: %s", first_step,
                 _format_metrics(eval_metrics))
  return eval_metrics
