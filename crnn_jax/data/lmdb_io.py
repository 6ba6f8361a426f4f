"""LMDB text-line datasets in the format of crnn.pytorch and deep-text-recognition-benchmark.

One LMDB database (a directory holding `data.mdb`) stores

  num-samples   the number of records N, as ASCII digits;
  image-%09d    encoded image bytes (PNG, JPEG, ...) of record i, 1 <= i <= N;
  label-%09d    its UTF-8 label.

`LmdbReader` gives 0-based random access to the raw records of one database (see
`records`), opening the environment lazily in each process so readers can be sent to grain
worker processes. `LmdbWriter` writes the same format.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Iterable

import lmdb

from crnn_jax.data import records

NUM_SAMPLES_KEY = b"num-samples"
MAP_SIZE = 1 << 30  # Initial map size of a written database; it doubles when full.


def image_key(index: int) -> bytes:
  """The key of the image of 1-based record `index`."""
  return b"image-%09d" % index


def label_key(index: int) -> bytes:
  """The key of the label of 1-based record `index`."""
  return b"label-%09d" % index


def is_lmdb_dir(path: str | os.PathLike) -> bool:
  return (pathlib.Path(path) / "data.mdb").is_file()


def find_lmdb_dirs(path: str | os.PathLike) -> list[pathlib.Path]:
  """`path` if it is an LMDB database, else every database below it, in sorted order."""
  path = pathlib.Path(path)
  if is_lmdb_dir(path):
    return [path]
  found = []
  for root, dirs, files in os.walk(path, followlinks=True):
    dirs.sort()
    if "data.mdb" in files:
      found.append(pathlib.Path(root))
  return sorted(found)


# Read-only environments of this process, by real path: py-lmdb refuses to open one database
# twice in a process, and readers of the same database (training and evaluation) share it.
_ENVIRONMENTS: dict[tuple[int, str], lmdb.Environment] = {}


def _open(path: pathlib.Path) -> lmdb.Environment:
  key = (os.getpid(), os.path.realpath(path))
  env = _ENVIRONMENTS.get(key)
  if env is None:
    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                    max_readers=512)
    _ENVIRONMENTS[key] = env
  return env


class LmdbReader:
  """0-based random access to the raw records of one LMDB database.

  Attributes:
    path: the database directory.
    name: a short name used in record keys (default: the directory name).
    num_samples: `num-samples` (or, when that key is missing or invalid, the highest label
      index present).
    note: a warning about the database (missing `num-samples`), or ''.
  """

  def __init__(self, path: str | os.PathLike, name: str | None = None):
    self.path = pathlib.Path(path)
    if not is_lmdb_dir(self.path):
      raise FileNotFoundError(f"{self.path} is not an LMDB database (no data.mdb)")
    self.name = name or self.path.name
    self._env = None
    self._pid = None
    self.note = ""
    with self._environment().begin() as txn:
      raw = txn.get(NUM_SAMPLES_KEY)
      try:
        self.num_samples = int(raw.decode("ascii").strip()) if raw is not None else None
      except (UnicodeDecodeError, ValueError):
        self.num_samples = None
      if self.num_samples is None or self.num_samples < 0:
        self.num_samples = self._count_labels(txn)
        self.note = (f"{self.path}: key num-samples is missing or invalid ({raw!r}); using the "
                     f"highest label index, {self.num_samples}")

  @staticmethod
  def _count_labels(txn) -> int:
    highest = 0
    cursor = txn.cursor()
    if cursor.set_range(b"label-"):
      for key in cursor.iternext(keys=True, values=False):
        if not key.startswith(b"label-"):
          break
        try:
          highest = max(highest, int(key[len(b"label-"):]))
        except ValueError:
          continue
    return highest

  def _environment(self) -> lmdb.Environment:
    if self._env is None or self._pid != os.getpid():
      self._env = _open(self.path)
      self._pid = os.getpid()
    return self._env

  def __len__(self) -> int:
    return self.num_samples

  def key(self, index: int) -> str:
    return f"{self.name}/{index + 1:09d}"

  def __getitem__(self, index: int) -> dict[str, Any]:
    """The raw record of 0-based `index` (stored under key index + 1)."""
    index = int(index)
    if not 0 <= index < self.num_samples:
      raise IndexError(f"record {index} out of range [0, {self.num_samples}) in {self.path}")
    with self._environment().begin() as txn:
      image = txn.get(image_key(index + 1))
      label = txn.get(label_key(index + 1))
    record = dict(key=self.key(index), image=image, label=label)
    if image is None and label is None:
      record.update(missing=records.MISSING_RECORD,
                    detail=f"num-samples is {self.num_samples} but record {index + 1} is absent")
    elif image is None or label is None:
      absent = image_key(index + 1) if image is None else label_key(index + 1)
      record.update(missing=records.MISSING_KEY, detail=f"no key {absent.decode()}")
    return record

  def __getstate__(self):
    state = self.__dict__.copy()
    state["_env"] = None  # Environments cannot be pickled; each process opens its own.
    state["_pid"] = None
    return state

  def __repr__(self) -> str:
    return f"LmdbReader({str(self.path)!r}, num_samples={self.num_samples})"


class LmdbWriter:
  """Writes records 1, 2, ... of a new LMDB database; `num-samples` is written on close.

  Use as a context manager:

    with LmdbWriter(path) as writer:
      writer.add(png_bytes, "label")
  """

  def __init__(self, path: str | os.PathLike, *, commit_every: int = 1000,
               map_size: int = MAP_SIZE):
    self.path = pathlib.Path(path)
    if is_lmdb_dir(self.path):
      raise FileExistsError(f"{self.path} already holds an LMDB database")
    self.path.mkdir(parents=True, exist_ok=True)
    self._map_size = map_size
    self._env = lmdb.open(str(self.path), map_size=map_size, subdir=True, meminit=False)
    self._pending: list[tuple[bytes, bytes]] = []
    self._commit_every = commit_every
    self.count = 0

  def add(self, image: bytes, label: str) -> None:
    self.count += 1
    self._pending.append((image_key(self.count), bytes(image)))
    self._pending.append((label_key(self.count), label.encode("utf-8")))
    if len(self._pending) >= 2 * self._commit_every:
      self._flush()

  def _flush(self, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    items = self._pending + list(extra)
    while True:
      try:
        with self._env.begin(write=True) as txn:
          for key, value in items:
            txn.put(key, value)
        break
      except lmdb.MapFullError:
        self._map_size *= 2
        self._env.set_mapsize(self._map_size)
    self._pending = []

  def close(self) -> None:
    if self._env is None:
      return
    self._flush([(NUM_SAMPLES_KEY, str(self.count).encode("ascii"))])
    self._env.sync()
    self._env.close()
    self._env = None

  def __enter__(self) -> "LmdbWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
