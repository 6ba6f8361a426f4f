"""Sharded steps on 8 simulated CPU devices agree with 1 device for the same global batch.

XLA_FLAGS=--xla_force_host_platform_device_count=8 must be set before JAX starts, so the
device work runs in a subprocess: this file run as a script (`python tests/test_sharding.py
OUT_DIR`) takes one train step (SGD) on 1 device, on 8 devices with replicated parameters and on
8 devices with sharded parameters, and saves the results; the tests compare them. (Evaluation
over a multi-device, multi-process mesh is covered by test_distributed.)
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUM_DEVICES = 8
RUNS = ("one", "eight", "eight_fsdp")


def _worker(out_dir: pathlib.Path) -> None:
  """Runs the steps and saves `<run>.npz` files and `info.npz` under out_dir."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from crnn_jax import sharding, train_lib  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from crnn_jax.text.charset import Charset  # pylint: disable=g-import-not-at-top
  from crnn_jax.models import crnn  # pylint: disable=g-import-not-at-top

  assert jax.device_count() == NUM_DEVICES, jax.devices()
  config = tiny.get_config()
  config.batch_size = 16
  config.optimizer.update(name="sgd", momentum=0.0, learning_rate=0.1, grad_clip_norm=0.0)
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  init_state = jax.device_get(train_lib.create_train_state(config, model, jax.random.key(0)))
  host_batch = next(iter(pipeline.train_dataset(config, charset)))
  rng = jax.random.key(1)
  info = {}
  for name, num_devices, shard_params in (("one", 1, False), ("eight", NUM_DEVICES, False),
                                          ("eight_fsdp", NUM_DEVICES, True)):
    mesh = sharding.make_mesh(num_devices)
    # min_size 256: shard the tiny model's larger kernels too.
    shardings = sharding.state_sharding(init_state, mesh, shard_params, min_size=256)
    state = jax.device_put(init_state, shardings)
    batch = sharding.device_batch(host_batch, mesh)
    step = jax.jit(train_lib.train_step,
                   in_shardings=(shardings, sharding.batch_sharded(mesh),
                                 sharding.replicated(mesh)),
                   out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=0)
    hlo = step.lower(state, batch, rng).compile().as_text()
    new_state, metrics = step(state, batch, rng)
    info[f"{name}_sharded_leaves"] = sum(
        not x.sharding.is_fully_replicated for x in jax.tree.leaves(new_state.params))
    info[f"{name}_image_shards"] = len(batch["image"].addressable_shards)
    info[f"{name}_has_all_reduce"] = "all-reduce" in hlo
    info[f"{name}_donated"] = state.params["cnn"]["conv0"]["kernel"].is_deleted()
    flat = {"loss": np.float64(metrics["loss_sum"]) / int(metrics["num_feasible"])}
    for prefix, tree in (("params", new_state.params), ("batch_stats", new_state.batch_stats),
                         ("init", init_state.params)):
      for path, x in jax.tree_util.tree_leaves_with_path(tree):
        flat[prefix + jax.tree_util.keystr(path)] = np.asarray(x)
    np.savez(out_dir / f"{name}.npz", **flat)

  # A global batch that does not divide over the devices fails at start-up, before training.
  config.batch_size = 12
  try:
    train_lib.train_and_evaluate(config, str(out_dir / "workdir"))
  except ValueError as e:
    info["bad_batch_error"] = str(e)
  np.savez(out_dir / "info.npz", **info)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  out = tmp_path_factory.mktemp("sharding")
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             XLA_FLAGS=f"--xla_force_host_platform_device_count={NUM_DEVICES}")
  proc = subprocess.run([sys.executable, __file__, str(out)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=400)
  assert proc.returncode == 0, proc.stderr[-4000:]
  runs = {name: dict(np.load(out / f"{name}.npz")) for name in RUNS}
  return runs, dict(np.load(out / "info.npz"))


@pytest.mark.slow
def test_the_steps_ran_sharded(results):
  _, info = results
  assert info["one_image_shards"] == 1
  assert info["eight_image_shards"] == info["eight_fsdp_image_shards"] == NUM_DEVICES
  assert info["eight_has_all_reduce"]  # Gradients (and BatchNorm statistics) are reduced.
  assert info["eight_sharded_leaves"] == 0
  assert info["eight_fsdp_sharded_leaves"] >= 5
  assert info["one_donated"] and info["eight_donated"]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["eight", "eight_fsdp"])
def test_eight_devices_match_one(results, run):
  runs, _ = results
  one, other = runs["one"], runs[run]
  assert other.keys() == one.keys()
  np.testing.assert_allclose(other["loss"], one["loss"], rtol=1e-5)
  # Per-device BatchNorm statistics would change both the loss and the running statistics.
  for key in one:
    if key.startswith("batch_stats"):
      np.testing.assert_allclose(other[key], one[key], rtol=1e-4,
                                 atol=1e-4 * np.abs(one[key]).max(), err_msg=key)
  params = [key for key in one if key.startswith("params")]
  updates_one = {k: one[k] - one["init" + k[len("params"):]] for k in params}
  updates = {k: other[k] - one["init" + k[len("params"):]] for k in params}
  largest = max(np.abs(u).max() for u in updates_one.values())
  for key in params:
    # Elements whose gradient is a sum that cancels (biases before BatchNorm have zero
    # gradient) carry float noise: their tolerance is relative to the largest update.
    np.testing.assert_allclose(other[key], one[key], rtol=1e-4, atol=1e-4 * largest,
                               err_msg=key)
  # The SGD update itself (all parameters together) agrees to 1e-4.
  difference = np.sqrt(sum(np.sum((updates[k] - updates_one[k]) ** 2) for k in params))
  norm = np.sqrt(sum(np.sum(u ** 2) for u in updates_one.values()))
  assert difference <= 1e-4 * norm, (difference, norm)
  assert not np.array_equal(runs["one"]["params['rnn1']['projection']['bias']"], 0)


@pytest.mark.slow
def test_batch_that_does_not_divide_fails_at_start(results):
  _, info = results
  message = str(info["bad_batch_error"])
  assert "batch_size=12 does not divide by the 8 devices" in message


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  _worker(pathlib.Path(sys.argv[1]))
