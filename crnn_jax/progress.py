"""Progress bars for long commands (tqdm), on stderr and only when it is a terminal.

Every long command (`predict` on many files, `eval --data`, `data build`, `data to-lmdb`,
`data heldout-set`) shows a bar with a rate and an ETA; `--quiet` turns it off, and so does
output to a file or a pipe (logs stay clean).
"""

from __future__ import annotations

import sys
from typing import Iterable

from tqdm import tqdm


def enabled(quiet: bool = False, stream=None) -> bool:
  """Whether bars are shown: not `quiet` and the stream (default stderr) is a terminal."""
  stream = sys.stderr if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return not quiet and bool(isatty and isatty())


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
        unit: str = "img", quiet: bool = False, **kwargs) -> tqdm:
  """A tqdm bar on stderr (see `enabled`); a disabled bar still iterates and counts."""
  return tqdm(iterable, total=total, desc=desc or None, unit=unit, file=sys.stderr,
              disable=not enabled(quiet), dynamic_ncols=True, mininterval=0.5, **kwargs)
