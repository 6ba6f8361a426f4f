"""Helpers for the dataset tests: noise images, small LMDBs and configs that read them.

Images are random grayscale noise whose pixels the tests compare after a round trip.
`dataset_config`, `take` and the other helpers below serve the tests that read such datasets
through `pipeline.train_dataset` (tests/data/test_dataset_pipeline.py, test_iterators.py,
test_transforms.py). The fixtures that write datasets with bad records are in tests/conftest.py.
"""

import io
import pathlib

import lmdb
import numpy as np
from PIL import Image

from configs import tiny
from crnn_jax.data import lmdb_io
from crnn_jax.text.charset import Charset


def image_array(seed: int, width: int = 60, height: int = 32) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=fmt)
  return buffer.getvalue()


def write_raw_lmdb(path: pathlib.Path, entries: dict, num_samples) -> pathlib.Path:
  """An LMDB with exactly these keys (bytes or str -> bytes) and num-samples (None: absent)."""
  path.mkdir(parents=True, exist_ok=True)
  env = lmdb.open(str(path), map_size=1 << 26)
  with env.begin(write=True) as txn:
    for key, value in entries.items():
      txn.put(key.encode() if isinstance(key, str) else key, value)
    if num_samples is not None:
      txn.put(b"num-samples", str(num_samples).encode())
  env.close()
  return path


def write_lmdb(path, items):
  """Writes [(label, width)] records of height-32 noise; returns the path."""
  with lmdb_io.LmdbWriter(path) as writer:
    for i, (label, width) in enumerate(items):
      writer.add(encode(image_array(i, width=width)), label)
  return path


def dataset_config(paths, **data):
  config = tiny.get_config()
  config.data.source = "auto"
  config.data.train_paths = tuple(str(p) for p in paths)
  for key, value in data.items():
    setattr(config.data, key, value)
  return config


def charset_of(config):
  return Charset.from_config(config.text)


def take(dataset, n):
  it = iter(dataset)
  return [next(it) for _ in range(n)]


def masked_texts(batch):
  return [t for t, m in zip(batch["text"], batch["mask"]) if m]


def assert_same_batch(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
