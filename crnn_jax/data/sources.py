"""Random-access readers of text-line datasets on disk, and the detection of their kind.

Kinds of dataset a path may hold:

  arrayrecord  a dataset written by `crnn-jax data build` (TFDS ArrayRecord shards next to a
               `dataset_info.json`), or a directory above one or several of them;
  lmdb         an LMDB database (a directory with `data.mdb`) or a directory above several, in
               the format of crnn.pytorch / deep-text-recognition-benchmark;
  folder       a directory with `gt.txt` (`relative/path<TAB>label` lines) or such a file;
  mjsynth      the Synth90k layout: `annotation_{train,val,test}.txt` of `./2697/6/466_MONIKER_49537.jpg`
               lines, the label inside the file name, or one annotation file.

`open_dataset` returns a `DatasetSource`: `len()` and `source[i]` give raw records (see
`records`). Sources hold no open files or big Python objects, so they pickle quickly to grain
worker processes. Missing or empty datasets raise `FileNotFoundError` / `ValueError` at once.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import pathlib
from typing import Any, Sequence

import numpy as np

from crnn_jax.data import lmdb_io
from crnn_jax.data import records

KINDS = ("arrayrecord", "lmdb", "folder", "mjsynth")
GT_FILE = "gt.txt"
DATASET_INFO = "dataset_info.json"
MJSYNTH_ANNOTATIONS = {"train": "annotation_train.txt", "val": "annotation_val.txt",
                       "validation": "annotation_val.txt", "test": "annotation_test.txt"}
_MAX_DEPTH = 4  # How deep dataset detection looks below a path.


class LineTable:
  """The non-blank lines of a text file, kept as one bytes object and numpy offsets."""

  def __init__(self, data: bytes):
    self.data = data
    buffer = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buffer == ord("\n")).astype(np.int64)
    if data and not data.endswith(b"\n"):
      ends = np.append(ends, np.int64(len(data)))
    starts = np.zeros_like(ends)
    starts[1:] = ends[:-1] + 1
    # Drop a CR at the end of a line, then blank lines.
    nonempty = ends > starts
    cr = np.zeros(len(ends), bool)
    cr[nonempty] = buffer[ends[nonempty] - 1] == ord("\r")
    ends = ends - cr
    keep = ends > starts
    self.starts, self.ends = starts[keep], ends[keep]
    # 1-based line numbers of the kept lines, for messages.
    self.line_numbers = np.flatnonzero(keep).astype(np.int64) + 1

  def __len__(self) -> int:
    return len(self.starts)

  def __getitem__(self, index: int) -> bytes:
    return self.data[self.starts[index]:self.ends[index]]


class DatasetSource:
  """A dataset as raw records (grain `RandomAccessDataSource` protocol).

  Attributes:
    name: the dataset's name (its directory name, or the built dataset's config name).
    path: where it lies.
    kind: one of `KINDS` (or 'synthetic').
    notes: warnings found while opening it (for example a missing `num-samples`).
  """

  name: str
  path: str
  kind: str
  notes: tuple[str, ...] = ()

  def __len__(self) -> int:
    raise NotImplementedError

  def __getitem__(self, index: int) -> dict[str, Any]:
    raise NotImplementedError

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self.path!r}, kind={self.kind!r}, records={len(self)})"


class ConcatSource(DatasetSource):
  """Several sources one after the other."""

  def __init__(self, parts: Sequence[Any], *, name: str, path: str, kind: str,
               notes: Sequence[str] = ()):
    self.parts = list(parts)
    self.name, self.path, self.kind = name, path, kind
    self.notes = tuple(notes)
    self._ends = np.cumsum([len(p) for p in self.parts]).tolist()

  def __len__(self) -> int:
    return self._ends[-1] if self._ends else 0

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range [0, {len(self)}) in {self.path}")
    part = bisect.bisect_right(self._ends, index)
    start = self._ends[part - 1] if part else 0
    return self.parts[part][index - start]


class LmdbSource(ConcatSource):
  """Every LMDB database found at a path, concatenated in sorted path order."""

  def __init__(self, path: str | os.PathLike, name: str | None = None):
    path = pathlib.Path(path)
    dirs = lmdb_io.find_lmdb_dirs(path)
    if not dirs:
      raise FileNotFoundError(f"no LMDB database (data.mdb) under {path}")
    readers = []
    for d in dirs:
      rel = d.relative_to(path).as_posix() if d != path else d.name
      readers.append(lmdb_io.LmdbReader(d, name=rel))
    notes = [r.note for r in readers if r.note]
    super().__init__(readers, name=name or path.name, path=str(path), kind="lmdb", notes=notes)


class FolderSource(DatasetSource):
  """Images listed in a `gt.txt` of `relative/path<TAB>label` lines.

  A line without a TAB is split at its first space; a line with neither is skipped as
  `malformed_line`. Paths are relative to the directory of the file.
  """

  kind = "folder"

  def __init__(self, path: str | os.PathLike, name: str | None = None):
    path = pathlib.Path(path)
    gt = path if path.is_file() else path / GT_FILE
    if not gt.is_file():
      raise FileNotFoundError(f"no {GT_FILE} in {path}")
    self.root = gt.parent
    self.gt_name = gt.name
    self.path = str(path)
    self.name = name or self.root.name
    self.lines = LineTable(gt.read_bytes())
    self.notes = ()

  def __len__(self) -> int:
    return len(self.lines)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range [0, {len(self)}) in {self.path}")
    line = self.lines[index]
    key = f"{self.gt_name}:{int(self.lines.line_numbers[index])}"
    sep = b"\t" if b"\t" in line else b" "
    rel, _, label = line.partition(sep)
    try:
      rel_path = rel.decode("utf-8").strip()
    except UnicodeDecodeError:
      rel_path = ""
    if not _ or not rel_path:
      return dict(key=key, image=None, label=None, missing=records.MALFORMED_LINE,
                  detail=f"line {line[:60]!r} is not path<TAB>label")
    key = f"{key}:{rel_path}"
    return _file_record(self.root / rel_path, key, label)


def _file_record(file: pathlib.Path, key: str, label) -> dict:
  """The raw record of an image file named by an annotation line (MISSING_FILE if unreadable)."""
  try:
    image = file.read_bytes()
  except OSError:
    return dict(key=key, image=None, label=label, missing=records.MISSING_FILE,
                detail=f"no file {file}")
  return dict(key=key, image=image, label=label)


class MJSynthSource(DatasetSource):
  """The Synth90k (MJSynth) layout: labels come from the file names of an annotation file.

  `./2697/6/466_MONIKER_49537.jpg 49537` is image `2697/6/466_MONIKER_49537.jpg` with label
  `MONIKER` (what lies between the first and the last underscore).
  """

  kind = "mjsynth"

  def __init__(self, path: str | os.PathLike, split: str = "train", name: str | None = None):
    path = pathlib.Path(path)
    if path.is_file():
      annotation = path
    else:
      split = split or "train"
      if split not in MJSYNTH_ANNOTATIONS:
        raise ValueError(f"MJSynth split must be one of {sorted(MJSYNTH_ANNOTATIONS)}, "
                         f"got {split!r}")
      annotation = path / MJSYNTH_ANNOTATIONS[split]
      if not annotation.is_file() and (path / "imlist.txt").is_file() and split == "train":
        annotation = path / "imlist.txt"
      if not annotation.is_file():
        raise FileNotFoundError(f"no MJSynth annotation file {annotation.name} in {path}")
    self.root = annotation.parent
    self.annotation = annotation.name
    self.path = str(path)
    self.name = name or (path.name if path.is_dir() else annotation.stem)
    self.lines = LineTable(annotation.read_bytes())
    self.notes = ()

  def __len__(self) -> int:
    return len(self.lines)

  @staticmethod
  def label_of(file_name: str) -> str | None:
    stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    parts = stem.split("_")
    return "_".join(parts[1:-1]) if len(parts) >= 3 else None

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} out of range [0, {len(self)}) in {self.path}")
    line = self.lines[index]
    try:
      rel = line.split()[0].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
      rel = ""
    key = f"{self.annotation}:{int(self.lines.line_numbers[index])}"
    label = self.label_of(rel) if rel else None
    if not label:
      return dict(key=key, image=None, label=None, missing=records.MALFORMED_LINE,
                  detail=f"line {line[:60]!r} has no NUMBER_LABEL_NUMBER.ext file name")
    key = f"{key}:{rel}"
    return _file_record(self.root / rel, key, label)


class _ArrayRecordPart:
  """One split of one built dataset, read with `tfds` without decoding the images."""

  def __init__(self, directory: pathlib.Path, split: str):
    self.directory = str(directory)
    self.split = split
    self._source = None
    self._len = len(self._data_source())

  def _data_source(self):
    if self._source is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      builder = tfds.builder_from_directory(self.directory)
      self._source = builder.as_data_source(
          split=self.split, decoders={"image": tfds.decode.SkipDecoding()})
    return self._source

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict[str, Any]:
    example = self._data_source()[int(index)]
    key = example.get("key", b"")
    key = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
    return dict(key=key or f"{self.directory}:{index}", image=example["image"],
                label=example["text"])

  def __getstate__(self):
    state = self.__dict__.copy()
    state["_source"] = None  # Reopened lazily in each process.
    return state


def find_arrayrecord_dirs(path: str | os.PathLike) -> list[pathlib.Path]:
  """Built dataset directories (holding dataset_info.json) at or below `path`.

  Of several versions of one dataset (`.../name/1.0.0`, `.../name/1.1.0`) only the newest
  is returned.
  """
  path = pathlib.Path(path)
  if (path / DATASET_INFO).is_file():
    return [path]
  found = [pathlib.Path(root) for root, _, files in _walk(path) if DATASET_INFO in files]
  newest: dict[pathlib.Path, pathlib.Path] = {}
  for d in sorted(found):
    if ".incomplete" in d.name or d.name.startswith("incomplete"):
      continue
    key = d.parent
    if key not in newest or _version(d.name) > _version(newest[key].name):
      newest[key] = d
  return sorted(newest.values())


def _version(name: str) -> tuple[int, ...]:
  try:
    return tuple(int(x) for x in name.split("."))
  except ValueError:
    return (-1,)


def _walk(path: pathlib.Path, max_depth: int = _MAX_DEPTH):
  """os.walk limited to `max_depth` levels below `path`."""
  base = len(path.parts)
  for root, dirs, files in os.walk(path, followlinks=True):
    dirs.sort()
    if len(pathlib.Path(root).parts) - base >= max_depth:
      dirs[:] = []
    yield root, dirs, files


def built_dataset_name(directory: pathlib.Path) -> str:
  """The name of a built dataset: its config directory (`.../crnn_lmdb/NAME/1.0.0`)."""
  return directory.parent.name if _version(directory.name) != (-1,) else directory.name


class ArrayRecordSource(ConcatSource):
  """One split of every dataset built by `crnn-jax data build` found at a path."""

  def __init__(self, path: str | os.PathLike, split: str = "", name: str | None = None):
    path = pathlib.Path(path)
    dirs = find_arrayrecord_dirs(path)
    if not dirs:
      raise FileNotFoundError(f"no built dataset ({DATASET_INFO}) under {path}")
    parts = [_ArrayRecordPart(d, _pick_split(d, split)) for d in dirs]
    default_name = built_dataset_name(dirs[0]) if len(dirs) == 1 else path.name
    super().__init__(parts, name=name or default_name, path=str(path), kind="arrayrecord")


def _pick_split(directory: pathlib.Path, split: str) -> str:
  import json  # pylint: disable=g-import-not-at-top
  info = json.loads((directory / DATASET_INFO).read_text())
  splits = [s["name"] for s in info.get("splits", [])]
  if split:
    if split not in splits:
      raise ValueError(f"{directory} has no split {split!r} (splits: {', '.join(splits)})")
    return split
  if len(splits) == 1:
    return splits[0]
  for candidate in ("test", "validation", "val", "train"):
    if candidate in splits:
      return candidate
  raise ValueError(f"{directory}: choose a split among {', '.join(splits)}")


def detect_kind(path: str | os.PathLike) -> str:
  """The kind of dataset at `path` (see the module docstring).

  Raises:
    FileNotFoundError: the path does not exist or holds no dataset.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"dataset path {path} does not exist")
  if path.is_file():
    if path.name.startswith("annotation") or path.name == "imlist.txt":
      return "mjsynth"
    return "folder"
  if (path / DATASET_INFO).is_file():
    return "arrayrecord"
  if lmdb_io.is_lmdb_dir(path):
    return "lmdb"
  if (path / GT_FILE).is_file():
    return "folder"
  if any((path / f).is_file() for f in ("annotation_train.txt", "annotation_test.txt",
                                        "annotation_val.txt", "imlist.txt")):
    return "mjsynth"
  for _, _, files in _walk(path):
    if DATASET_INFO in files:
      return "arrayrecord"
    if "data.mdb" in files:
      return "lmdb"
    if GT_FILE in files:
      return "folder"
  empty = " (an empty directory)" if not any(path.iterdir()) else ""
  raise FileNotFoundError(
      f"no dataset found at {path}{empty}: expected a dataset built by `crnn-jax data build` "
      f"({DATASET_INFO}), LMDB databases (data.mdb), a folder with {GT_FILE}, or the MJSynth "
      "layout (annotation_train.txt)")


def find_gt_folders(path: pathlib.Path) -> list[pathlib.Path]:
  if path.is_file() or (path / GT_FILE).is_file():
    return [path]
  return sorted(pathlib.Path(root) for root, _, files in _walk(path) if GT_FILE in files)


def open_dataset(path: str | os.PathLike, kind: str = "auto", split: str = "",
                 name: str | None = None) -> DatasetSource:
  """Opens the dataset at `path` (all databases / built datasets below it, concatenated).

  Args:
    path: a dataset path (see the module docstring).
    kind: one of `KINDS`, or 'auto' to detect it.
    split: the split of a built dataset (default: its only split, else test, validation,
      train), or the MJSynth annotation (train, val or test; default train).
    name: the dataset's name (default: from the path).

  Returns:
    A random-access source of raw records.

  Raises:
    FileNotFoundError: the path does not exist or holds no dataset of that kind.
    ValueError: it holds no record at all, or the kind or split is unknown.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"dataset path {path} does not exist")
  kind = detect_kind(path) if kind in ("auto", "", None) else kind
  if kind == "arrayrecord":
    source = ArrayRecordSource(path, split, name)
  elif kind == "lmdb":
    source = LmdbSource(path, name)
  elif kind == "folder":
    folders = find_gt_folders(path)
    if not folders:
      raise FileNotFoundError(f"no {GT_FILE} at or below {path}")
    if len(folders) == 1:
      source = FolderSource(folders[0], name or (path.name if path.is_dir() else None))
    else:
      source = ConcatSource([FolderSource(f) for f in folders], name=name or path.name,
                            path=str(path), kind="folder")
  elif kind == "mjsynth":
    source = MJSynthSource(path, split or "train", name)
  else:
    raise ValueError(f"unknown dataset kind {kind!r} (available: auto, {', '.join(KINDS)})")
  if len(source) == 0:
    raise ValueError(f"dataset {path} ({kind}) holds no records")
  return source


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
  """One evaluation dataset found under a path."""

  name: str
  path: str
  kind: str


def find_datasets(path: str | os.PathLike, kind: str = "auto") -> list[DatasetEntry]:
  """The separate datasets at or below `path`: each LMDB database, built dataset or gt folder.

  Used by evaluation, where `evaluation/` of deep-text-recognition-benchmark (one LMDB per
  benchmark) gives one row per benchmark.
  """
  path = pathlib.Path(path)
  kind = detect_kind(path) if kind in ("auto", "", None) else kind
  if kind == "lmdb":
    dirs = lmdb_io.find_lmdb_dirs(path)
    return [DatasetEntry(d.name if d != path else path.name, str(d), kind) for d in dirs]
  if kind == "arrayrecord":
    dirs = find_arrayrecord_dirs(path)
    return [DatasetEntry(built_dataset_name(d), str(d), kind) for d in dirs]
  if kind == "folder":
    folders = find_gt_folders(path)
    return [DatasetEntry((f.parent if f.is_file() else f).name, str(f), kind) for f in folders]
  return [DatasetEntry(path.name if path.is_dir() else path.stem, str(path), kind)]


class SyntheticRecords(DatasetSource):
  """The built-in renderer as raw records (for `data build synthetic`)."""

  kind = "synthetic"

  def __init__(self, source):
    self.source = source
    self.name = f"synthetic_seed{source.seed}"
    self.path = "synthetic"
    self.notes = ()

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.source[index]
    return dict(key=f"synthetic/{int(index)}", image=record["image"], label=record["text"])
