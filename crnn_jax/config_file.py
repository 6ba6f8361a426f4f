"""Loading a config file (a Python file with `get_config()`) outside `train.main`'s flags.

Config variants import their parents as `from configs import default`, so the directory above
the file's folder is put on `sys.path` while the file runs, as it is for `python -m train.main`
from the repository root.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import ml_collections


def load(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """`get_config()` of a config file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file has no `get_config` function.
  """
  path = pathlib.Path(path).expanduser().resolve()
  if not path.is_file():
    raise FileNotFoundError(f"config file {str(path)!r} does not exist")
  root = str(path.parent.parent)
  added = root not in sys.path
  if added:
    sys.path.insert(0, root)
  try:
    spec = importlib.util.spec_from_file_location(f"crnn_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    if added:
      sys.path.remove(root)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"config file {str(path)!r} has no get_config() function")
  return module.get_config()
