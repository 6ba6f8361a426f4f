"""Preemption and crashes: a run killed (SIGKILL) and stopped (SIGTERM) resumes bit-exactly.

20 steps straight must equal: a run SIGKILLed after its step-5 checkpoint (an incomplete
checkpoint directory is then planted, as a kill during a save leaves one), a resume stopped by
SIGTERM (it checkpoints the current step and exits with status 143), and a resume to step 20:
identical parameters and an identical per-step log (`train_log.jsonl`).

The runs are `python -m train.main` subprocesses sharing a persistent compilation cache.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from crnn_jax import checkpointing, run_files, train_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 20
FLAGS = (f"--config.num_train_steps={STEPS}", "--config.log_every_steps=3",
         "--config.checkpoint_every_steps=5", "--config.eval_every_steps=20",
         "--config.data.eval_size=16", "--config.keep_checkpoints=10")
TIMEOUT = 300


class _Run:
  """A `python -m train.main` subprocess of the tiny config, its output in a file."""

  def __init__(self, workdir: pathlib.Path, cache: pathlib.Path, name: str):
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    self.output_path = workdir.parent / f"{name}.output"
    with self.output_path.open("wb") as output:
      self.proc = subprocess.Popen(
          [sys.executable, "-m", "train.main", "--config", "configs/tiny.py", "--workdir",
           str(workdir), *FLAGS], cwd=ROOT, env=env, stdout=output, stderr=output)

  def wait(self) -> int:
    """The exit status (negative: killed by that signal); kills the run after TIMEOUT."""
    try:
      return self.proc.wait(timeout=TIMEOUT)
    finally:
      if self.proc.poll() is None:
        self.proc.kill()
        self.proc.wait()

  def wait_for(self, condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
      if self.proc.poll() is not None:
        raise AssertionError(f"the run ended (status {self.proc.returncode}) before {what}:\n"
                             f"{self.output[-3000:]}")
      if time.monotonic() > deadline:
        raise AssertionError(f"timed out waiting for {what}")
      time.sleep(0.02)

  def signal_and_wait(self, condition, what: str, signum: int) -> int:
    try:
      self.wait_for(condition, what)
      self.proc.send_signal(signum)
    finally:
      status = self.wait()
    return status

  @property
  def output(self) -> str:
    return self.output_path.read_text()


def _log_steps(workdir: pathlib.Path) -> list[int]:
  path = workdir / run_files.TRAIN_LOG_FILE
  if not path.exists():
    return []
  return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def _latest_checkpoint(workdir: pathlib.Path) -> int | None:
  with checkpointing.make_manager(workdir, read_only=True) as manager:
    return manager.latest_step()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.getbasetemp() / "jax_compilation_cache"


@pytest.mark.slow
def test_killed_and_preempted_run_resumes_bit_exactly(tmp_path, cache):
  straight = tmp_path / "straight"
  run = _Run(straight, cache, "straight")
  assert run.wait() == 0, run.output[-3000:]

  # SIGKILL as soon as the step-5 checkpoint is complete.
  resumed = tmp_path / "resumed"
  run = _Run(resumed, cache, "killed")
  status = run.signal_and_wait(lambda: (resumed / "checkpoints" / "5").is_dir(), "checkpoint 5",
                               signal.SIGKILL)
  assert status == -signal.SIGKILL, run.output[-3000:]
  killed_at = _latest_checkpoint(resumed)
  assert killed_at is not None and killed_at < STEPS
  # What a kill during a save leaves behind: a temporary directory with a partial checkpoint.
  # It must be ignored (restoring from it would fail: it has no state item).
  partial = resumed / "checkpoints" / f"{killed_at + 4}.orbax-checkpoint-tmp-1700000000"
  shutil.copytree(resumed / "checkpoints" / str(killed_at), partial)
  shutil.rmtree(partial / checkpointing.STATE_ITEM)
  assert _latest_checkpoint(resumed) == killed_at

  # Resume, and SIGTERM as soon as it has restored the checkpoint: it trains a step (at least),
  # checkpoints it and stops.
  run = _Run(resumed, cache, "preempted")
  status = run.signal_and_wait(lambda: f"Resumed from step {killed_at} " in run.output,
                               "the resume", signal.SIGTERM)
  assert status == checkpointing.PREEMPTED_EXIT_CODE, run.output[-3000:]
  assert "SIGTERM: stopped at step" in run.output
  stopped_at = _latest_checkpoint(resumed)
  assert killed_at < stopped_at < STEPS
  assert _log_steps(resumed) == list(range(1, stopped_at + 1))

  run = _Run(resumed, cache, "finished")
  assert run.wait() == 0, run.output[-3000:]
  info = json.loads((resumed / run_files.RUN_INFO_FILE).read_text())
  assert info["start_step"] == stopped_at

  step_a, vars_a = checkpointing.restore_variables(straight)
  step_b, vars_b = checkpointing.restore_variables(resumed)
  assert step_a == step_b == STEPS
  jax.tree.map(np.testing.assert_array_equal, vars_a, vars_b)
  log_a = (straight / run_files.TRAIN_LOG_FILE).read_text()
  assert _log_steps(straight) == list(range(1, STEPS + 1))
  assert (resumed / run_files.TRAIN_LOG_FILE).read_text() == log_a


@pytest.mark.slow
def test_damaged_latest_checkpoint_resumes_from_the_newest_readable(tmp_path, cache):
  first = tmp_path / "first"
  run = _Run(first, cache, "first")
  assert run.wait() == 0, run.output[-3000:]
  damaged = tmp_path / "damaged"
  shutil.copytree(first, damaged)
  (damaged / "checkpoints" / str(STEPS) / checkpointing.STATE_ITEM / "_METADATA").write_bytes(b"")
  run = _Run(damaged, cache, "rerun")
  assert run.wait() == 0, run.output[-3000:]
  assert f"checkpoint step {STEPS} is unreadable" in run.output
  assert f"Resumed from step {STEPS - 5} " in run.output
  assert (damaged / checkpointing.DAMAGED_DIR / str(STEPS)).is_dir()  # Kept aside.
  # Steps 16-20 trained again from step 15 give the same parameters (bit-exact resume).
  step_a, vars_a = checkpointing.restore_variables(first)
  step_b, vars_b = checkpointing.restore_variables(damaged)
  assert step_a == step_b == STEPS
  jax.tree.map(np.testing.assert_array_equal, vars_a, vars_b)
