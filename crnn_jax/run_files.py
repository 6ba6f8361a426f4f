"""A training run's files, for the training side and the deploy side alike.

  WORKDIR/config.json       the run's config (command-line overrides included)
  WORKDIR/run_info.json     versions, devices and mesh of the (last) start
  WORKDIR/train_log.jsonl   one line of metrics per step
  WORKDIR/checkpoints/      orbax checkpoints (`crnn_jax.checkpointing`)

Opening a model for inference or export reads these without importing the training module:
`load_model` is the one way to open a model, from a workdir's checkpoint or from weights (a
shipped name or a `crnn-jax export --format weights` directory).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import socket
import sys
import time
from typing import Any, NamedTuple

import ml_collections

CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"
TRAIN_LOG_FILE = "train_log.jsonl"


def save_config(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> None:
  """Writes `config` as WORKDIR/config.json."""
  (pathlib.Path(workdir) / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2) + "\n")


def save_run_info(info: dict[str, Any], workdir: str | pathlib.Path) -> None:
  """Writes `info` (see `run_info`) as WORKDIR/run_info.json."""
  (pathlib.Path(workdir) / RUN_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def run_info(config, mesh, start_step: int) -> dict[str, Any]:
  """Versions, devices and layout of this run, for `run_info.json` (`save_run_info`).

  Args:
    config: the run's config.
    mesh: its `jax.sharding.Mesh`.
    start_step: the step it starts (or resumes) at.
  """
  import jax  # pylint: disable=import-outside-toplevel
  from crnn_jax import optim  # pylint: disable=import-outside-toplevel
  versions = {"python": sys.version.split()[0]}
  for package in ("crnn-jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain",
                  "numpy", "ml-collections"):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  devices = [dict(id=d.id, process_index=d.process_index, platform=d.platform,
                  kind=d.device_kind, coords=list(getattr(d, "coords", []) or []))
             for d in mesh.devices.flat]
  k = optim.grad_accum_steps(config.optimizer)
  return dict(
      started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
      start_step=start_step,
      hostname=socket.gethostname(),
      argv=sys.argv,
      versions=versions,
      backend=jax.default_backend(),
      process_count=jax.process_count(),
      device_count=jax.device_count(),
      local_device_count=jax.local_device_count(),
      mesh={name: int(size) for name, size in mesh.shape.items()},
      devices=devices,
      batch_size=config.batch_size,
      per_device_batch_size=config.batch_size // mesh.devices.size,
      grad_accum_steps=k,
      effective_batch_size=config.batch_size * k,
      learning_rate=optim.base_learning_rate(config.optimizer, config.batch_size),
      shard_params=bool(config.get("shard_params", False)),
      dtype=config.model.dtype,
      xla_flags=os.environ.get("XLA_FLAGS", ""),
  )


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run wrote to its workdir."""
  path = pathlib.Path(workdir) / CONFIG_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path} not found: is {workdir} a crnn-jax training workdir?")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


class LoadedModel(NamedTuple):
  """A model opened by `load_model`."""

  config: ml_collections.ConfigDict  # The training config (text, model, data sections).
  variables: dict[str, Any]  # {'params', 'batch_stats'}, float32.
  step: int  # The checkpoint's step (weights: the step they were exported at, or 0).
  name: str  # The workdir, or 'weights NAME'.

  @property
  def charset(self):
    from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
    return Charset.from_config(self.config.text)

  @property
  def module(self):
    """The flax CRNN module of `config` (apply it to `variables`)."""
    return build_module(self.config)


def build_module(config: ml_collections.ConfigDict):
  """The flax CRNN module that a training config describes (its charset sets the classes)."""
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  from crnn_jax.models import crnn  # pylint: disable=import-outside-toplevel
  return crnn.from_config(config.model, Charset.from_config(config.text).num_classes)


def load_model(workdir: str | pathlib.Path = "", step: int | None = None,
               weights: str | pathlib.Path = "") -> LoadedModel:
  """Opens a model: a training workdir's checkpoint, or else weights.

  Args:
    workdir: a training workdir (config.json and checkpoints/); empty: load `weights`.
    step: with a workdir, the checkpoint step (default: the latest).
    weights: without a workdir, a shipped model name or a weights directory (default:
      `pretrained.DEFAULT_MODEL`).
  """
  if workdir:
    from crnn_jax import checkpointing  # pylint: disable=import-outside-toplevel
    config = load_config(workdir)
    step, variables = checkpointing.restore_variables(workdir, step)
    return LoadedModel(config, variables, int(step), str(workdir))
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
  name = weights or pretrained.DEFAULT_MODEL
  config, variables = pretrained.load(name)
  return LoadedModel(config, variables, int(pretrained.info(name).get("step", 0)),
                     f"weights {name}")


def export_checkpoint(workdir: str | pathlib.Path, output: str | pathlib.Path,
                      step: int | None = None, dtype: str = "bfloat16") -> pathlib.Path:
  """Writes the weights directory of a training run's checkpoint (the latest by default).

  info.json names the run by its directory's name (not its path on this machine) and step.
  """
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel

  loaded = load_model(workdir, step)
  return pretrained.save(output, loaded.config, loaded.variables, dtype=dtype,
                         info={"run": pathlib.Path(workdir).expanduser().resolve().name,
                               "step": loaded.step})
