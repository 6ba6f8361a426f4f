"""Progress bars on a real terminal: `crnn-jax eval --data DIR` run under a pseudo-terminal.

The other progress tests replace sys.stderr with a fake terminal; these give the command a
pty, as `script -qec "crnn-jax eval --data DIR" /dev/null` does. A pty nobody sized reports
0 x 0, which tqdm took for a terminal without rows: it drew no bar at all.
"""

import fcntl
import os
import pathlib
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN_CLI = "import sys; from crnn_jax import cli; sys.exit(cli.main())"


def _run_in_pty(args, size=None, timeout=300):
  """(exit status, everything the command wrote) of the CLI with a pty as its terminal."""
  master, slave = os.openpty()
  if size is not None:
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
  if size is None:
    assert tuple(os.get_terminal_size(slave)) == (0, 0)  # What `script ... /dev/null` gives.
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  env.pop("COLUMNS", None)
  env.pop("LINES", None)
  proc = subprocess.Popen([sys.executable, "-c", RUN_CLI, *args], stdin=slave, stdout=slave,
                          stderr=slave, cwd=ROOT, env=env, close_fds=True)
  os.close(slave)
  output, deadline = b"", time.monotonic() + timeout
  try:
    while time.monotonic() < deadline:
      ready, _, _ = select.select([master], [], [], 1.0)
      if ready:
        try:
          chunk = os.read(master, 65536)
        except OSError:  # EIO: the command exited and closed the terminal.
          break
        if not chunk:
          break
        output += chunk
      elif proc.poll() is not None:
        break
    else:
      proc.kill()
      pytest.fail(f"timed out; output so far: {output[-2000:]!r}")
  finally:
    os.close(master)
  return proc.wait(timeout=30), output.decode("utf-8", "replace")


@pytest.fixture
def three_images(tmp_path):
  folder = tmp_path / "lines"
  folder.mkdir()
  for i in range(3):
    Image.fromarray(np.full((32, 60 + 20 * i), 255, np.uint8)).save(folder / f"{i}.png")
  (folder / "gt.txt").write_text("".join(f"{i}.png\tword\n" for i in range(3)))
  return folder


@pytest.mark.slow
@pytest.mark.parametrize("size", [None, (100, 30)], ids=["unsized", "100x30"])
def test_eval_data_draws_a_progress_bar_on_a_terminal(tiny_workdir, three_images, size):
  status, output = _run_in_pty(["eval", "--checkpoint", str(tiny_workdir), "--data",
                                str(three_images), "--decoder", "greedy"], size)
  assert status == 0, output[-3000:]
  assert "| Total |" in output.replace("**", "")  # The table, on the same terminal.
  bars = [line for line in output.split("\r") if "3/3" in line and "%|" in line]
  assert bars, f"no finished progress bar in {output[-3000:]!r}"
  if size is not None:  # Drawn to the terminal's width.
    assert max(len(line.rstrip("\n")) for line in bars) <= size[0]


@pytest.mark.slow
def test_quiet_draws_no_bar_on_a_terminal(tiny_workdir, three_images):
  status, output = _run_in_pty(["eval", "--checkpoint", str(tiny_workdir), "--data",
                                str(three_images), "--decoder", "greedy", "--quiet"])
  assert status == 0, output[-3000:]
  assert "%|" not in output
