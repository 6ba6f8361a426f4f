"""Model weights shipped inside the package, and the writer that makes them from a checkpoint.

A weights directory holds:
  config.json        the training config (model layout, charset, input resizing);
  variables.msgpack  {'params', 'batch_stats'} serialized by `flax.serialization`, floating
                     arrays stored as bfloat16 (or float32) to keep the file small;
  info.json          where it came from (checkpoint step, dtype, accuracy notes).

The package ships `scene_en` (configs/synth_en_scene*.py, five stages: the full-size CRNN, 62
case-sensitive characters, trained on the renderer's photograph-like 'scene' level from
`synth_en`), used by
`crnn-jax predict` and `Recognizer.from_pretrained()` when no checkpoint is given, and
`synth_en` (configs/synth_en*.py: clean print only, the starting point of `scene_en`). Write one
with

  crnn-jax export --checkpoint RUN --format weights --output crnn_jax/weights/NAME
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import serialization

from crnn_jax import run_files

WEIGHTS_ROOT = pathlib.Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "scene_en"
CONFIG_FILE = run_files.CONFIG_FILE  # A weights directory's config, named as a run's.
VARIABLES_FILE = "variables.msgpack"
INFO_FILE = "info.json"
DTYPES = ("bfloat16", "float32")


def available() -> list[str]:
  """Names of the weights shipped with the package."""
  if not WEIGHTS_ROOT.is_dir():
    return []
  return sorted(p.name for p in WEIGHTS_ROOT.iterdir() if (p / VARIABLES_FILE).is_file())


def resolve(name_or_dir: str | pathlib.Path = DEFAULT_MODEL) -> pathlib.Path:
  """The directory of shipped weights `name`, or `name_or_dir` itself if it is a directory.

  Raises:
    FileNotFoundError: neither a shipped name nor a weights directory.
  """
  path = pathlib.Path(name_or_dir).expanduser()
  if (path / VARIABLES_FILE).is_file():
    return path
  shipped = WEIGHTS_ROOT / str(name_or_dir)
  if (shipped / VARIABLES_FILE).is_file():
    return shipped
  raise FileNotFoundError(
      f"no weights {str(name_or_dir)!r}: not a directory with {VARIABLES_FILE}, nor one of the "
      f"shipped models {available()}")


def _cast(tree: Any, dtype: str) -> Any:
  def cast(x):
    x = np.asarray(x)
    if jax.numpy.issubdtype(x.dtype, jax.numpy.floating):  # Includes bfloat16 (ml_dtypes).
      return x.astype(dtype)
    return x
  return jax.tree.map(cast, tree)


def save(directory: str | pathlib.Path, config: ml_collections.ConfigDict,
         variables: dict[str, Any], *, dtype: str = "bfloat16",
         info: dict[str, Any] | None = None) -> pathlib.Path:
  """Writes a weights directory.

  Args:
    directory: created if needed; existing weights files are replaced.
    config: the training config of the model.
    variables: {'params', 'batch_stats'} (arrays of any float dtype).
    dtype: storage dtype of floating arrays, 'bfloat16' or 'float32'.
    info: extra provenance written to info.json.

  Returns:
    The directory.
  """
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
  (directory / VARIABLES_FILE).write_bytes(
      serialization.msgpack_serialize(_cast(jax.device_get(variables), dtype)))
  (directory / CONFIG_FILE).write_text(config.to_json(indent=2) + "\n")
  (directory / INFO_FILE).write_text(json.dumps({"dtype": dtype, **(info or {})}, indent=2) + "\n")
  return directory


def load_config(name_or_dir: str | pathlib.Path = DEFAULT_MODEL) -> ml_collections.ConfigDict:
  """The training config stored with weights (see `load`)."""
  path = resolve(name_or_dir) / CONFIG_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found next to the weights")
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON: {e}") from e


def info(name_or_dir: str | pathlib.Path = DEFAULT_MODEL) -> dict[str, Any]:
  """The provenance stored with weights (info.json; empty if absent)."""
  path = resolve(name_or_dir) / INFO_FILE
  return json.loads(path.read_text()) if path.is_file() else {}


def load(name_or_dir: str | pathlib.Path = DEFAULT_MODEL
         ) -> tuple[ml_collections.ConfigDict, dict[str, Any]]:
  """Reads weights written by `save`.

  Args:
    name_or_dir: a shipped model name (see `available()`) or a weights directory.

  Returns:
    (config, variables): variables as float32 numpy arrays.

  Raises:
    FileNotFoundError: unknown name or missing files.
    ValueError: a file that cannot be parsed (its path is named).
  """
  weights_path = resolve(name_or_dir) / VARIABLES_FILE
  config = load_config(name_or_dir)
  try:
    variables = serialization.msgpack_restore(weights_path.read_bytes())
  except Exception as e:  # msgpack raises several types for corrupt data.
    raise ValueError(f"{weights_path} is not a flax msgpack file: {e}") from e
  return config, _cast(variables, "float32")


def export_checkpoint(workdir: str | pathlib.Path, output: str | pathlib.Path,
                      step: int | None = None, dtype: str = "bfloat16") -> pathlib.Path:
  """Writes the weights directory of a training run's checkpoint (the latest by default)."""
  from crnn_jax import run_files  # pylint: disable=import-outside-toplevel

  loaded = run_files.load_model(workdir, step)
  return save(output, loaded.config, loaded.variables, dtype=dtype,
              info={"checkpoint": str(workdir), "step": loaded.step})
