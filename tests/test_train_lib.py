"""Training: the train step learns, guards against non-finite values, and runs resume exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from crnn_jax import checkpointing, train_lib
from crnn_jax.data import pipeline
from crnn_jax.data.charset import Charset
from crnn_jax.decoding import greedy
from crnn_jax.models import crnn


def _setup(config):
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  state = train_lib.create_train_state(config, model, jax.random.key(config.seed))
  return charset, model, state


def _device(batch):
  return {k: jnp.asarray(v) for k, v in batch.items() if k != "text"}


def _fixed_batch(config, charset, size):
  ds = pipeline.train_dataset(config, charset)
  batch = next(iter(ds))
  assert batch["image"].shape == (size, 32, 100, 1)
  return batch


def test_a_few_steps_lower_the_loss():
  config = tiny.get_config()
  config.optimizer.learning_rate = 3e-3
  charset, _, state = _setup(config)
  batches = [_device(b) for b, _ in zip(pipeline.train_dataset(config, charset), range(2))]
  step = jax.jit(train_lib.train_step)
  losses = []
  for i in range(30):
    state, metrics = step(state, batches[i % 2])
    losses.append(float(metrics["loss_sum"] / metrics["num_feasible"]))
  assert int(state.step) == 30
  assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses


def test_overfits_a_small_fixed_batch_to_full_accuracy():
  config = tiny.get_config()
  config.optimizer.learning_rate = 3e-3
  charset, _, state = _setup(config)
  host_batch = _fixed_batch(config, charset, config.batch_size)
  batch = _device(host_batch)
  step = jax.jit(train_lib.train_step)
  eval_step = jax.jit(train_lib.eval_step)
  for i in range(300):
    state, _ = step(state, batch)
    if i % 50 == 49:
      ids, _ = eval_step(state, batch)
      predictions = [charset.decode(s) for s in greedy.collapse(np.asarray(ids))]
      if predictions == list(host_batch["text"]):
        break
  assert predictions == list(host_batch["text"])


def test_non_finite_loss_does_not_update_parameters():
  config = tiny.get_config()
  charset, _, state = _setup(config)
  batch = _device(_fixed_batch(config, charset, config.batch_size))
  batch["image"] = batch["image"].at[0, 0, 0, 0].set(jnp.nan)
  new_state, metrics = jax.jit(train_lib.train_step)(state, batch)
  assert int(metrics["num_skipped_steps"]) == 1
  assert int(new_state.step) == 1
  jax.tree.map(np.testing.assert_array_equal, new_state.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, new_state.opt_state, state.opt_state)
  jax.tree.map(np.testing.assert_array_equal, new_state.batch_stats, state.batch_stats)


def test_infeasible_and_dropped_labels_are_counted_not_averaged():
  config = tiny.get_config()
  charset, _, state = _setup(config)
  batch = _fixed_batch(config, charset, config.batch_size)
  batch["label"][0, :] = 1  # 26 identical characters need 51 frames > 26.
  batch["label_length"][0] = 26
  batch["mask"][1] = False
  batch["dropped"][1] = 1
  _, metrics = jax.jit(train_lib.train_step)(state, _device(batch))
  assert int(metrics["num_infeasible"]) == 1
  assert int(metrics["num_dropped"]) == 1
  assert int(metrics["num_feasible"]) == config.batch_size - 2
  assert float(metrics["loss_sum"]) / int(metrics["num_feasible"]) < 1000


def test_resumed_run_equals_unbroken_run(tmp_path):
  config = tiny.get_config()
  straight = train_lib.train_and_evaluate(config, str(tmp_path / "straight"))
  assert straight["count"] == config.data.eval_size

  # Train 2 steps, stop, then run again with the full length: it resumes from step 2.
  half = tiny.get_config()
  half.num_train_steps = 2
  train_lib.train_and_evaluate(half, str(tmp_path / "resumed"))
  resumed = train_lib.train_and_evaluate(config, str(tmp_path / "resumed"))

  step_a, vars_a = checkpointing.restore_variables(tmp_path / "straight")
  step_b, vars_b = checkpointing.restore_variables(tmp_path / "resumed")
  assert step_a == step_b == 4
  jax.tree.map(np.testing.assert_array_equal, vars_a, vars_b)
  assert resumed == straight
  assert (tmp_path / "straight" / "config.json").is_file()
  assert train_lib.load_config(tmp_path / "straight").model.lstm_hidden == 32


def test_batch_size_must_divide_over_devices():
  from crnn_jax import sharding  # pylint: disable=g-import-not-at-top
  mesh = sharding.make_mesh()
  sharding.check_batch_size(8 * mesh.devices.size, mesh)
  if mesh.devices.size > 1:
    with pytest.raises(ValueError, match="does not divide"):
      sharding.check_batch_size(mesh.devices.size + 1, mesh)
