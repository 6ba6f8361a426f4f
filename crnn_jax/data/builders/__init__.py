"""TFDS builders of text-line datasets (no TensorFlow needed) and `build`, which runs one.

  crnn_lmdb       LMDB databases (crnn.pytorch / deep-text-recognition-benchmark format)
  crnn_mjsynth    the Synth90k folder layout
  crnn_folder     images + gt.txt
  crnn_synthetic  pre-rendered synthetic text

Output: `DATA_DIR/crnn_<kind>/<NAME>/1.0.0/` with ArrayRecord shards, readable with
`tfds.builder_from_directory(...).as_data_source()` and by the input pipeline
(`config.data.source = 'arrayrecord'`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tempfile
from typing import Any

from crnn_jax.data.builders import base
from crnn_jax.data.builders.folder import CrnnFolder
from crnn_jax.data.builders.lmdb import CrnnLmdb
from crnn_jax.data.builders.mjsynth import CrnnMjsynth
from crnn_jax.data.builders.synthetic import CrnnSynthetic
from crnn_jax.data.builders.synthetic import SyntheticConfig

BUILDERS = {"lmdb": CrnnLmdb, "mjsynth": CrnnMjsynth, "folder": CrnnFolder,
            "synthetic": CrnnSynthetic}
TextLineConfig = base.TextLineConfig


@dataclasses.dataclass
class BuildResult:
  """What a build wrote."""

  directory: pathlib.Path  # The dataset directory (holding dataset_info.json).
  name: str
  split: str
  report: Any  # records.SkipReport
  notes: list[str]


def build(kind: str, data_dir: str | os.PathLike, *, name: str = "",
          overwrite: bool = False, progress: bool = False, **options) -> BuildResult:
  """Runs the `kind` builder and writes ArrayRecord shards under `data_dir`.

  Args:
    kind: 'lmdb', 'mjsynth', 'folder' or 'synthetic'.
    data_dir: the TFDS data directory.
    name: the dataset (config) name; default: the first input's directory name, or
      `synthetic_<seed>`.
    overwrite: rebuild if the dataset exists (otherwise that is an error).
    progress: show a progress bar on a terminal (see `crnn_jax.progress`).
    **options: fields of `TextLineConfig` (or `SyntheticConfig`), e.g. `paths=(...)`.

  Returns:
    The BuildResult.

  Raises:
    FileNotFoundError: an input does not exist or holds no dataset.
    FileExistsError: the dataset was already built (and not `overwrite`).
    ValueError: no record is usable, or bad options.
  """
  if kind not in BUILDERS:
    raise ValueError(f"unknown builder {kind!r} (available: {', '.join(BUILDERS)})")
  cls = BUILDERS[kind]
  paths = tuple(str(p) for p in options.pop("paths", ()) or ())
  for path in paths:
    if not pathlib.Path(path).exists():
      raise FileNotFoundError(f"input {path} does not exist")
  if not name:
    if kind == "synthetic":
      name = f"synthetic_{options.get('seed', 0)}"
    elif paths:
      first = pathlib.Path(paths[0])
      name = first.name if first.is_dir() else first.parent.name
    else:
      name = "default"
  config_cls = SyntheticConfig if kind == "synthetic" else TextLineConfig
  config = config_cls(name=base.config_name(name), paths=paths, **options)
  builder = cls(config=config, data_dir=str(data_dir))
  directory = pathlib.Path(builder.data_dir)
  if (directory / "dataset_info.json").is_file():
    if not overwrite:
      raise FileExistsError(f"{directory} already exists (use --overwrite to rebuild)")
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(directory)
    builder = cls(config=config, data_dir=str(data_dir))
  builder.show_progress = progress
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as downloads:
    manual = paths[0] if paths else downloads
    builder.download_and_prepare(
        file_format="array_record", download_dir=downloads,
        download_config=tfds.download.DownloadConfig(manual_dir=manual))
  return BuildResult(directory=directory, name=config.name, split=config.split,
                     report=builder.report, notes=list(builder.notes))
