"""Fixtures of the dataset tests: small LMDBs, gt.txt folders and Synth90k trees with bad records.

Every dataset is written inside the test's tmp_path. Images are random grayscale noise whose
pixels the tests compare after a round trip; `expected` lists say what a reader should keep.
`dataset_config`, `take` and the other helpers below serve the tests that read such datasets
through `pipeline.train_dataset` (test_dataset_pipeline, test_iterators, test_transforms).
"""

import io
import pathlib

import lmdb
import numpy as np
import pytest
from PIL import Image

from configs import tiny
from crnn_jax.data import lmdb_io
from crnn_jax.data.charset import Charset


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


@pytest.fixture
def words_lmdb(tmp_path):
  rng = np.random.default_rng(5)
  widths = rng.integers(16, 400, size=64)
  return write_lmdb(tmp_path / "words", [(f"w{i}", int(w)) for i, w in enumerate(widths)])


@pytest.fixture
def bad_lmdb(tmp_path):
  """An LMDB of 12 declared records: 6 good ones and one of each kind of bad record.

  Returns (path, good, bad): good is [(0-based index, label, uint8 image)], bad maps the
  0-based index to the expected skip reason.
  """
  good, bad, entries = [], {}, {}

  def put(i, image=None, label=None):
    if image is not None:
      entries[f"image-{i + 1:09d}"] = image
    if label is not None:
      entries[f"label-{i + 1:09d}"] = label

  for i, label in [(0, "hello"), (2, "World"), (5, "a1b2"), (7, "Straße"), (8, "x"), (10, "ok")]:
    array = image_array(i, width=40 + 7 * i)
    put(i, encode(array), label.encode())
    good.append((i, label, array))
  put(1, b"this is not an image", b"garbage")
  bad[1] = "undecodable_image"
  put(3, encode(image_array(3))[:60], b"truncated")
  bad[3] = "undecodable_image"
  put(4, b"", b"zero")
  bad[4] = "empty_image"
  put(6, encode(image_array(6)), b"")
  bad[6] = "empty_label"
  put(9, encode(image_array(9)), b"\xff\xfebad")
  bad[9] = "invalid_utf8"
  put(11, encode(image_array(11)), None)  # Label key missing.
  bad[11] = "missing_key"
  # num-samples says 14: records 13 and 14 (0-based 12, 13) are absent.
  bad[12] = bad[13] = "missing_record"
  path = write_raw_lmdb(tmp_path / "lmdb" / "IIIT5k_3000", entries, num_samples=14)
  good.sort()
  return path, good, bad


@pytest.fixture
def gt_folder(tmp_path):
  """A folder with gt.txt: returns (path, good [(line, label, image)], bad {line: reason})."""
  root = tmp_path / "folder" / "mylines"
  (root / "img").mkdir(parents=True)
  lines, good, bad = [], [], {}
  for n, label in enumerate(["alpha", "Beta", "gamma delta", "Ünïcode", "7up"]):
    array = image_array(100 + n, width=30 + 10 * n, height=24)
    Image.fromarray(array).save(root / "img" / f"{n}.png")
    lines.append(f"img/{n}.png\t{label}".encode())
    good.append((len(lines), label, array))
  lines.insert(1, b"")  # Blank lines are ignored.
  good = [(ln + (ln >= 2), label, a) for ln, label, a in good]
  lines.append(b"img/missing.png\tghost")
  bad[len(lines)] = "missing_file"
  (root / "img" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  lines.append(b"img/junk.png\tjunk")
  bad[len(lines)] = "undecodable_image"
  lines.append(b"no_separator_here")
  bad[len(lines)] = "malformed_line"
  Image.fromarray(image_array(7)).save(root / "img" / "e.png")
  lines.append(b"img/e.png\t")
  bad[len(lines)] = "empty_label"
  lines.append(b"img/e.png\t\xc3\x28")
  bad[len(lines)] = "invalid_utf8"
  (root / "gt.txt").write_bytes(b"\r\n".join(lines) + b"\r\n")
  return root, good, bad


@pytest.fixture
def mjsynth_tree(tmp_path):
  """A Synth90k tree: returns (root, good [(label, image)] of annotation_train.txt, bad)."""
  root = tmp_path / "mjsynth" / "90kDICT32px"
  good, bad, lines = [], {}, []
  for n, word in enumerate(["MONIKER", "sweet", "Ab3"]):
    d = root / str(2000 + n) / "6"
    d.mkdir(parents=True)
    array = image_array(200 + n, width=50 + 5 * n, height=31)
    Image.fromarray(array).save(d / f"{n}_{word}_{4000 + n}.png")
    lines.append(f"./{2000 + n}/6/{n}_{word}_{4000 + n}.png {4000 + n}")
    good.append((word, array))
  (root / "2000" / "6" / "9_empty_1.jpg").write_bytes(b"")  # MJSynth has 0-byte files.
  lines.append("./2000/6/9_empty_1.jpg 1")
  bad[len(lines)] = "empty_image"
  lines.append("./2000/6/noword.jpg 2")
  bad[len(lines)] = "malformed_line"
  lines.append("./2001/6/5_GONE_7.jpg 7")
  bad[len(lines)] = "missing_file"
  (root / "annotation_train.txt").write_text("\n".join(lines) + "\n")
  (root / "annotation_val.txt").write_text(lines[1] + "\n")
  return root, good, bad


@pytest.fixture
def without_font_package(monkeypatch):
  """Makes font discovery see one package as not installed: `without_font_package(name)`.

  Discovery caches its pools, so the cache is emptied before and after the test.
  """
  from crnn_jax.data import fonts  # pylint: disable=import-outside-toplevel

  installed = fonts._package_dir  # pylint: disable=protected-access

  def hide(name):
    monkeypatch.setattr(fonts, "_package_dir",
                        lambda package: None if package == name else installed(package))
    fonts._discover.cache_clear()  # pylint: disable=protected-access

  yield hide
  fonts._discover.cache_clear()  # pylint: disable=protected-access
