"""Tests of the preemption watcher (crnn_jax/checkpointing.py) on one process.

The whole path (SIGTERM during training -> checkpoint -> exit 143 -> bit-exact resume) is
tests/test_resume.py's and, across two processes, tests/test_distributed.py's.
"""

import os
import signal

from crnn_jax import checkpointing


def test_sigterm_asks_to_stop_and_close_restores_the_handler():
  before = signal.getsignal(signal.SIGTERM)
  watcher = checkpointing.PreemptionWatcher()
  try:
    assert not watcher.reached(0)
    os.kill(os.getpid(), signal.SIGTERM)
    assert watcher.reached(1) and watcher.received
  finally:
    watcher.close()
  assert signal.getsignal(signal.SIGTERM) is before


def test_preempted_names_the_step_and_the_exit_status_is_sigterms():
  error = checkpointing.Preempted(7)
  assert error.step == 7 and "stopped at step 7" in str(error)
  assert checkpointing.PREEMPTED_EXIT_CODE == 128 + signal.SIGTERM
