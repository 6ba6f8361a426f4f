"""Model weights shipped inside the package, and the writer that makes them from a checkpoint.

A weights directory holds:
  config.json        the training config (model layout, charset, input resizing);
  variables.msgpack  {'params', 'batch_stats'} serialized by `flax.serialization`, floating
                     arrays stored as bfloat16 (or float32) to keep the file small;
  info.json          where it came from: the run's name (never a machine's path), checkpoint
                     step, dtype, the SHA-256 of variables.msgpack;
  calibration.json   optional: confidence maps per decoder (`crnn_jax.calibration`);
  MODEL_CARD.md      the shipped models' provenance, evaluation and limits.

The package ships `scene_en` (configs/scene_en.py, seven stages on the scene level: the
full-size CRNN, 62 case-sensitive characters, trained on the renderer's photograph-like 'scene'
level from `synth_en`; its MODEL_CARD.md lists them), used by `crnn-jax predict` and
`Recognizer.from_pretrained()` when no checkpoint is given, and `synth_en` (configs/synth_en.py:
clean print only, three stages, the starting point of `scene_en`). Write one with

  crnn-jax export --checkpoint RUN --format weights --output crnn_jax/weights/NAME

A name may be pinned to the file it meant: `synth_en@sha256:5b88ce6888c9` is the shipped
`synth_en` only while the SHA-256 of its variables.msgpack starts with those hex digits (at
least 8), and an error otherwise, so that a recipe's starting weights cannot change under it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import serialization

WEIGHTS_ROOT = pathlib.Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "scene_en"
CONFIG_FILE = "config.json"  # A weights directory's config, named as a run's (run_files).
VARIABLES_FILE = "variables.msgpack"
INFO_FILE = "info.json"
MODEL_CARD_FILE = "MODEL_CARD.md"
DTYPES = ("bfloat16", "float32")
PIN = "@sha256:"  # NAME@sha256:HEX, see `resolve`.


def available() -> list[str]:
  """Names of the weights shipped with the package."""
  if not WEIGHTS_ROOT.is_dir():
    return []
  return sorted(p.name for p in WEIGHTS_ROOT.iterdir() if (p / VARIABLES_FILE).is_file())


def resolve(name_or_dir: str | pathlib.Path = DEFAULT_MODEL) -> pathlib.Path:
  """The directory of shipped weights `name`, or `name_or_dir` itself if it is a directory.

  `NAME@sha256:HEX` (a shipped name or a directory) also checks that the SHA-256 of the
  weights' variables.msgpack starts with HEX.

  Raises:
    FileNotFoundError: neither a shipped name nor a weights directory.
    ValueError: a pin whose hash is not the file's, or is malformed.
  """
  name_or_dir, pin = split_pin(name_or_dir)
  path = pathlib.Path(name_or_dir).expanduser()
  if not (path / VARIABLES_FILE).is_file():
    path = WEIGHTS_ROOT / str(name_or_dir)
    if not (path / VARIABLES_FILE).is_file():
      raise FileNotFoundError(
          f"no weights {str(name_or_dir)!r}: not a directory with {VARIABLES_FILE}, nor one of "
          f"the shipped models {available()}")
  if pin:
    actual = sha256_file(path / VARIABLES_FILE)
    if not actual.startswith(pin):
      raise ValueError(
          f"weights {str(name_or_dir)!r} were pinned to sha256 {pin}..., but {path / VARIABLES_FILE} "
          f"has sha256 {actual}: they are other weights than the ones pinned (shipped weights "
          f"replaced since?). Pass the weights meant, e.g. a checkpoint of the earlier stage's "
          f"run, or the file from the commit that shipped them.")
  return path


def split_pin(name_or_dir: str | pathlib.Path) -> tuple[str | pathlib.Path, str]:
  """(`name_or_dir` without its `@sha256:HEX` pin, HEX in lower case or '' if none).

  Raises:
    ValueError: a pin that is not 8 to 64 hex digits.
  """
  if not isinstance(name_or_dir, str) or PIN not in name_or_dir:
    return name_or_dir, ""
  name, pin = name_or_dir.rsplit(PIN, 1)
  pin = pin.lower()
  if not 8 <= len(pin) <= 64 or any(c not in "0123456789abcdef" for c in pin):
    raise ValueError(f"weights {name_or_dir!r}: the pin after {PIN!r} must be 8 to 64 hex "
                     f"digits of the SHA-256 of {VARIABLES_FILE}")
  return name, pin


def sha256_file(path: str | pathlib.Path) -> str:
  """SHA-256 (hex) of a file's bytes."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def is_machine_path(value: Any) -> bool:
  """Whether `value` is a string naming a place on one machine: an absolute path or `~`."""
  return isinstance(value, str) and (os.path.isabs(value) or value.startswith("~")
                                     or bool(pathlib.PureWindowsPath(value).drive))


def portable(value: Any) -> Any:
  """`value`, with a machine path (`is_machine_path`) reduced to its last part (a run's name)."""
  if is_machine_path(value):
    return pathlib.PurePath(value.rstrip("/\\")).name or value
  return value


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
    info: extra provenance written to info.json; string values that are machine paths
      (absolute, or from `~`) are written as their last part, e.g. the run's directory name.

  Returns:
    The directory.
  """
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  variables = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
  data = serialization.msgpack_serialize(_cast(jax.device_get(variables), dtype))
  (directory / VARIABLES_FILE).write_bytes(data)
  (directory / CONFIG_FILE).write_text(config.to_json(indent=2) + "\n")
  info = {"dtype": dtype, **{k: portable(v) for k, v in (info or {}).items()},
          "variables_sha256": hashlib.sha256(data).hexdigest()}
  (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
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
