"""A training run's files, for the training side and the deploy side alike.

  WORKDIR/config.json       the run's config (command-line overrides included)
  WORKDIR/run_info.json     versions, devices and mesh of the (last) start
  WORKDIR/train_log.jsonl   one line of metrics per step
  WORKDIR/checkpoints/      orbax checkpoints (`crnn_jax.checkpointing`)

Opening a model for inference or export reads these without importing the training module.
"""

from __future__ import annotations

import json
import pathlib

import ml_collections

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"
TRAIN_LOG_FILE = "train_log.jsonl"


def save_config(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> None:
  """Writes `config` as WORKDIR/config.json."""
  (pathlib.Path(workdir) / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2) + "\n")


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run wrote to its workdir."""
  path = pathlib.Path(workdir) / CONFIG_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: is {workdir} a crnn-jax training workdir?")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def load_model_config(workdir, weights: str = "") -> ml_collections.ConfigDict:
  """The config of a training workdir, or (without one) of shipped weights / a weights dir."""
  if workdir:
    return load_config(workdir)
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
  return pretrained.load_config(weights or pretrained.DEFAULT_MODEL)
