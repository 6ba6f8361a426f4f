"""Shared test fixtures."""

import os
import sys

# Tests import the `configs` and `train` packages from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# XLA's optimization passes cost much of the suite's compile time, and no test measures speed
# (benchmarks/ do): compile with most of them off, here and in the subprocesses tests start,
# as flax's examples do in their tests. CRNN_JAX_TEST_OPTIMIZED=1 keeps them on.
if not os.environ.get("CRNN_JAX_TEST_OPTIMIZED"):
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import contextlib  # pylint: disable=g-import-not-at-top,wrong-import-position
import io  # pylint: disable=g-import-not-at-top,wrong-import-position

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


class _Terminal(io.StringIO):
  """A stderr that says it is a terminal, so progress bars are drawn into it."""

  def isatty(self):
    return True


@pytest.fixture
def terminal_stderr(monkeypatch):
  """`with terminal_stderr() as stderr:` runs the block with sys.stderr a fake terminal;
  `stderr.getvalue()` is what was drawn."""

  @contextlib.contextmanager
  def replaced():
    terminal = _Terminal()
    with monkeypatch.context() as patch:
      patch.setattr(sys, "stderr", terminal)
      yield terminal

  return replaced
