"""Multi-process training through the real `jax.distributed` coordinator matches one process.

Two `python -m train.main` processes on localhost, each with 2 simulated CPU devices (gloo
collectives over TCP), train the tiny config for a few steps; one of them gets SIGTERM, both
must agree on a step, checkpoint it and exit with status 143 (JAX's preemption sync manager);
rerun, they finish. A single process with the same 4 devices and the same global batch must
give the same losses and final parameters.

The reference has the same device count on purpose: 1 and 4 devices reduce the gradients in a
different order, and over several steps max-pool near-ties (ReLU zeros) turn that float noise
into gradient differences of ~1e-4 (test_sharding compares 1 and 8 devices over one step).
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from crnn_jax import checkpointing, run_files

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 4
# SGD: Adam turns the float noise in (near-)zero gradients, e.g. of the biases before BatchNorm,
# into full-size updates, which would make the runs' parameters differ by the learning rate.
FLAGS = (f"--config.num_train_steps={STEPS}", "--config.log_every_steps=2",
         "--config.checkpoint_every_steps=100", "--config.eval_every_steps=100",
         "--config.data.eval_size=16", "--config.eval_batch_size=16",
         "--config.optimizer.name=sgd", "--config.optimizer.momentum=0.9",
         # Small enough that float rounding (a gloo all-reduce against an in-process sum) stays
         # within the tolerances below: at 0.02 it grew to 1e-4 relative by step 2 on an AVX2
         # AMD EPYC, and to 2% in the batch-norm statistics after 4 steps.
         "--config.optimizer.learning_rate=0.002")
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
  return [json.loads(line) for line in (workdir / run_files.TRAIN_LOG_FILE).open()]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.getbasetemp() / "jax_compilation_cache"


def _start_pair(workdir: pathlib.Path, tmp_path: pathlib.Path, cache: pathlib.Path, name: str
                ) -> list[subprocess.Popen]:
  port = _free_port()
  return [_start(workdir, tmp_path / f"{name}{i}.output", cache, devices=2, flags=(
      f"--config.distributed.coordinator_address=127.0.0.1:{port}",
      "--config.distributed.num_processes=2", f"--config.distributed.process_id={i}",
      "--config.distributed.initialization_timeout=120")) for i in range(2)]


@pytest.mark.slow
def test_two_processes_match_one_process_through_a_preemption(tmp_path, cache):
  single = tmp_path / "single"
  multi = tmp_path / "multi"
  procs = [_start(single, tmp_path / "single.output", cache, devices=4)]
  procs += _start_pair(multi, tmp_path, cache, "preempted")
  try:
    # SIGTERM to process 1 once both have joined the coordinator (process 0 built the model).
    deadline = time.monotonic() + TIMEOUT
    while "CRNN with" not in (tmp_path / "preempted0.output").read_text():
      assert all(p.poll() is None for p in procs[1:]), "a process ended early"
      assert time.monotonic() < deadline, "timed out waiting for the start"
      time.sleep(0.05)
    procs[2].send_signal(signal.SIGTERM)
  finally:
    statuses = _wait_all(procs)
  outputs = {name: (tmp_path / f"{name}.output").read_text()
             for name in ("single", "preempted0", "preempted1")}
  assert statuses[0] == 0, outputs["single"][-3000:]
  assert statuses[1:] == [checkpointing.PREEMPTED_EXIT_CODE] * 2, outputs["preempted1"][-3000:]
  stopped = [int(re.search(r"SIGTERM: stopped at step (\d+)", outputs[f"preempted{i}"])[1])
             for i in range(2)]
  assert stopped[0] == stopped[1] < STEPS  # Both processes stopped at the same step.

  statuses = _wait_all(_start_pair(multi, tmp_path, cache, "finished"))
  finished = [(tmp_path / f"finished{i}.output").read_text() for i in range(2)]
  assert statuses == [0, 0], finished[1][-3000:]
  assert f"Resumed from step {stopped[0]} " in finished[0]

  info = json.loads((multi / run_files.RUN_INFO_FILE).read_text())
  assert info["process_count"] == 2 and info["device_count"] == 4
  assert info["mesh"] == {"data": 4} and info["per_device_batch_size"] == 2
  assert sorted({d["process_index"] for d in info["devices"]}) == [0, 1]
  # Process 0 alone writes the log and the summaries.
  assert len(list((multi / "tensorboard").glob("events.out.tfevents.*"))) == 2  # 2 runs.
  log_single, log_multi = _log(single), _log(multi)
  assert [r["step"] for r in log_multi] == list(range(1, STEPS + 1))
  for a, b in zip(log_single, log_multi):
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5, err_msg=str(b))
    np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-5, err_msg=str(b))
    assert b["feasible"] == a["feasible"]
  assert f"eval at step {STEPS}: count 16," in finished[0]
  assert "eval at step" not in finished[1]  # Process 1 does not log.

  step_a, vars_a = checkpointing.restore_variables(single)
  step_b, vars_b = checkpointing.restore_variables(multi)
  assert step_a == step_b == STEPS
  assert not np.array_equal(vars_a["params"]["rnn1"]["projection"]["bias"], 0)  # It trained.
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(vars_a), jax.tree.leaves(vars_b)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7, err_msg=jax.tree_util.keystr(path))


def test_distributed_settings_come_from_the_config_then_the_environment(monkeypatch):
  from configs import default  # pylint: disable=g-import-not-at-top
  from crnn_jax import distributed  # pylint: disable=g-import-not-at-top
  for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(var, raising=False)
  config = default.get_config().distributed
  assert distributed.resolve(config) is None  # A single-process run: nothing to start.
  assert distributed.resolve(None) is None
  monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "10.0.0.1:1234")
  monkeypatch.setenv("JAX_NUM_PROCESSES", "4")
  monkeypatch.setenv("JAX_PROCESS_ID", "3")
  assert distributed.resolve(config) == dict(coordinator_address="10.0.0.1:1234",
                                             num_processes=4, process_id=3,
                                             initialization_timeout=300)
  config.coordinator_address = "host0:99"
  config.process_id = 0
  assert distributed.resolve(config)["coordinator_address"] == "host0:99"
  assert distributed.resolve(config)["process_id"] == 0
  assert distributed.resolve(config)["num_processes"] == 4
  config.initialize = "never"
  assert distributed.resolve(config) is None
  config.initialize = "sometimes"
  with pytest.raises(ValueError, match="distributed.initialize"):
    distributed.resolve(config)
  for var in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(var)
  config = default.get_config().distributed
  config.initialize = "always"  # Slurm, Open MPI...: JAX detects what is unset.
  assert distributed.resolve(config) == dict(coordinator_address=None, num_processes=None,
                                             process_id=None, initialization_timeout=300)
