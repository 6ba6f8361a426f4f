"""Multi-process training through the real `jax.distributed` coordinator matches one process.

Two `python -m train.main` processes on localhost, each with 2 simulated CPU devices (gloo
collectives over TCP), train the tiny config for a few steps; a single process with the same 4
devices and the same global batch must give the same losses and final parameters.

The reference has the same device count on purpose: 1 and 4 devices reduce the gradients in a
different order, and over several steps max-pool near-ties (ReLU zeros) turn that float noise
into gradient differences of ~1e-4 (test_sharding compares 1 and 8 devices over one step).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from crnn_jax import checkpointing, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 4
# SGD: Adam turns the float noise in (near-)zero gradients, e.g. of the biases before BatchNorm,
# into full-size updates, which would make the runs' parameters differ by the learning rate.
FLAGS = (f"--config.num_train_steps={STEPS}", "--config.log_every_steps=2",
         "--config.checkpoint_every_steps=4", "--config.eval_every_steps=4",
         "--config.data.eval_size=16", "--config.eval_batch_size=16",
         "--config.optimizer.name=sgd", "--config.optimizer.momentum=0.9",
         "--config.optimizer.learning_rate=0.02")
TIMEOUT = 300


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(workdir: pathlib.Path, output: pathlib.Path, cache: pathlib.Path,
           devices: int = 1, flags=()) -> subprocess.Popen:
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_COMPILATION_CACHE_DIR=str(cache),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  with output.open("wb") as out:
    return subprocess.Popen(
        [sys.executable, "-m", "train.main", "--config", "configs/tiny.py", "--workdir",
         str(workdir), *FLAGS, *flags], cwd=ROOT, env=env, stdout=out, stderr=out)


def _wait_all(procs: list[subprocess.Popen]) -> list[int]:
  """Exit statuses; whatever still runs after TIMEOUT (or on an error) is killed."""
  try:
    return [p.wait(timeout=TIMEOUT) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()


def _log(workdir: pathlib.Path) -> list[dict]:
  return [json.loads(line) for line in (workdir / train_lib.TRAIN_LOG_FILE).open()]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.getbasetemp() / "jax_compilation_cache"


def test_two_processes_match_one_process(tmp_path, cache):
  single = tmp_path / "single"
  port = _free_port()
  multi = tmp_path / "multi"
  procs = [_start(single, tmp_path / "single.output", cache, devices=4)]
  procs += [_start(multi, tmp_path / f"process{i}.output", cache, devices=2, flags=(
      f"--config.distributed.coordinator_address=127.0.0.1:{port}",
      "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}",
      "--config.distributed.initialization_timeout=120")) for i in range(2)]
  statuses = _wait_all(procs)
  outputs = [(tmp_path / f"{name}.output").read_text()
             for name in ("single", "process0", "process1")]
  for status, output in zip(statuses, outputs):
    assert status == 0, output[-3000:]

  info = json.loads((multi / train_lib.RUN_INFO_FILE).read_text())
  assert info["process_count"] == 2 and info["device_count"] == 4
  assert info["mesh"] == {"data": 4} and info["per_device_batch_size"] == 2
  assert sorted({d["process_index"] for d in info["devices"]}) == [0, 1]
  # Process 0 alone writes the log and the summaries.
  assert len(list((multi / "tensorboard").glob("events.out.tfevents.*"))) == 1
  log_single, log_multi = _log(single), _log(multi)
  assert [r["step"] for r in log_multi] == list(range(1, STEPS + 1))
  for a, b in zip(log_single, log_multi):
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5, err_msg=str(b))
    np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-5, err_msg=str(b))
    assert b["feasible"] == a["feasible"]
  assert "eval at step 4: count 16," in outputs[1]
  assert "eval at step" not in outputs[2]  # Process 1 does not log.

  step_a, vars_a = checkpointing.restore_variables(single)
  step_b, vars_b = checkpointing.restore_variables(multi)
  assert step_a == step_b == STEPS
  assert not np.array_equal(vars_a["params"]["rnn1"]["projection"]["bias"], 0)  # It trained.
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(vars_a), jax.tree.leaves(vars_b)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7, err_msg=jax.tree_util.keystr(path))
