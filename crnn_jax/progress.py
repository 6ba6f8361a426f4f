"""Progress bars for long commands (tqdm), on stderr and only when it is a terminal.

Every long command (`predict` on many files, `eval --data`, `data build`, `data to-lmdb`,
`data heldout-set`) shows a bar with a rate and an ETA; `--quiet` turns it off, and so does
output to a file or a pipe (logs stay clean).

A terminal that reports no size (0 x 0: a pseudo-terminal nobody sized, e.g. under
`script -qec CMD /dev/null`, or some CI runners) gets a bar of `$COLUMNS` or 80 columns on
`$LINES` or 24 rows: tqdm would otherwise take it for a terminal of no rows and draw nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from tqdm import tqdm


def enabled(quiet: bool = False, stream=None) -> bool:
  """Whether bars are shown: not `quiet` and the stream (default stderr) is a terminal."""
  stream = sys.stderr if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return not quiet and bool(isatty and isatty())


DEFAULT_SIZE = (80, 24)  # Columns and rows of a terminal that reports no size.


def terminal_size(stream=None) -> tuple[int, int]:
  """(columns, rows) the terminal of `stream` (default stderr) reports; 0 for what it does
  not report."""
  stream = sys.stderr if stream is None else stream
  try:
    size = os.get_terminal_size(stream.fileno())
  except (AttributeError, OSError, ValueError):  # No file descriptor, or not a terminal.
    return 0, 0
  return size.columns, size.lines


def _environ_int(name: str, default: int) -> int:
  try:
    value = int(os.environ.get(name, ""))
  except ValueError:
    return default
  return value if value > 0 else default


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
        unit: str = "img", quiet: bool = False, **kwargs) -> tqdm:
  """A tqdm bar on stderr (see `enabled`); a disabled bar still iterates and counts.

  The bar follows the terminal's width; a terminal of unknown size gets `$COLUMNS` x `$LINES`
  or DEFAULT_SIZE (see the module docstring).
  """
  shown = enabled(quiet)
  columns, rows = terminal_size()
  if shown and not (columns and rows):
    kwargs.setdefault("ncols", columns or _environ_int("COLUMNS", DEFAULT_SIZE[0]))
    kwargs.setdefault("nrows", rows or _environ_int("LINES", DEFAULT_SIZE[1]))
  else:
    kwargs.setdefault("dynamic_ncols", True)
  return tqdm(iterable, total=total, desc=desc or None, unit=unit, file=sys.stderr,
              disable=not shown, mininterval=0.5, **kwargs)
