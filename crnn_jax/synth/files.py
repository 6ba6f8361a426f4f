"""User directories of input files (fonts, background images): found recursively, sorted."""

from __future__ import annotations

import pathlib
from typing import Sequence


def files_in_directory(directory: str | pathlib.Path, suffixes: Sequence[str], *,
                       kind: str, noun: str) -> list[pathlib.Path]:
  """Every file under `directory` (recursive) whose suffix is one of `suffixes`, sorted.

  Args:
    directory: the user's directory.
    suffixes: lower-case suffixes with the dot, e.g. ('.ttf', '.otf').
    kind: what the directory is for, in messages ('fonts', 'backgrounds').
    noun: what the files are, in messages ('font files', 'images').

  Raises:
    FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
    ValueError: it holds no such file.
  """
  directory = pathlib.Path(directory).expanduser()
  if not directory.exists():
    raise FileNotFoundError(f"{kind} directory {str(directory)!r} does not exist")
  if not directory.is_dir():
    raise NotADirectoryError(f"{kind} directory {str(directory)!r} is not a directory")
  found = sorted(p for p in directory.rglob("*")
                 if p.is_file() and p.suffix.lower() in suffixes)
  if not found:
    raise ValueError(f"{kind} directory {str(directory)!r} holds no {noun} "
                     f"({', '.join(suffixes)})")
  return found
