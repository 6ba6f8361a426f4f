"""Config files (Python files with `get_config()`): loading, and checking command-line overrides.

Config variants import their parents as `from configs import default`, so the directory above
the file's folder is put on `sys.path` while the file runs, as it is for `python -m train.main`
from the repository root.
"""

from __future__ import annotations

import difflib
import importlib.util
import pathlib
import sys

import ml_collections


def load(path: str | pathlib.Path) -> ml_collections.ConfigDict:
  """`get_config()` of a config file; `FILE.py:ARG` calls `get_config(ARG)`.

  The argument form is config_flags' (`--config configs/scene_en.py:stage=9`), e.g. a stage
  of a staged recipe.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file has no `get_config` function.
  """
  path, sep, arg = str(path).partition(".py:")
  path = pathlib.Path(path + ".py" if sep else path).expanduser().resolve()
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
  return module.get_config(arg) if sep else module.get_config()


def _arg_value(argv: list[str], name: str) -> str | None:
  for i, arg in enumerate(argv):
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
  return None


def override_errors(config: ml_collections.ConfigDict, argv: list[str]) -> list[str]:
  """One line per `--config.a.b=value` argument that names no field of `config`.

  Each line names the bad argument, the first unknown part of its path and the nearest valid
  names at that level (difflib), e.g.
  `--config.optimizr.lr: 'optimizr' is not a config field; did you mean: optimizer?`.
  """
  errors = []
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    path = arg[len("--config."):].split("=", 1)[0]
    node = config
    parts = path.split(".")
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = ".".join(parts[:depth])
        if isinstance(node, ml_collections.ConfigDict):
          options = sorted(node.keys())
          near = difflib.get_close_matches(part, options, n=3, cutoff=0.5)
          near += [o for o in options if o not in near and (  # 'lr' -> learning_rate.
              "".join(w[:1] for w in o.split("_")) == part or o.startswith(part))]
          hint = (f"did you mean: {', '.join(near)}?" if near
                  else f"fields{' of ' + where if where else ''}: {', '.join(options)}")
          errors.append(f"--config.{path}: {part!r} is not a config field"
                        f"{' of ' + where if where else ''}; {hint}")
        else:
          errors.append(f"--config.{path}: {where!r} is a value, not a group of fields")
        break
      node = node[part]
  return errors


def check_command_line(argv: list[str]) -> list[str]:
  """`override_errors` for a training command line (`--config FILE --config.x=...`).

  Returns the error lines; empty when the config file is absent or cannot be loaded (the
  flag parser reports that) or every override names a field.
  """
  path = _arg_value(argv, "config")
  if not path or not any(a.startswith("--config.") for a in argv):
    return []
  try:
    config = load(path)
  except Exception:  # pylint: disable=broad-except  # Reported by the flag parser.
    return []
  return override_errors(config, argv)
