"""Shared test fixtures: a fake terminal, the tiny workdir, and datasets with bad records.

Plain helper functions live in helper modules, not here: tests/deploy_helpers.py (tiny configs,
workdirs with random weights, text-like images) and tests/data_helpers.py (noise images, LMDB
writers, dataset configs).
"""

import os
import sys

# Tests import the `configs` and `train` packages from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# XLA's optimization passes cost much of the suite's compile time, and no test measures speed
# (benchmarks/ do): compile with most of them off, here and in the subprocesses tests start,
# as flax's examples do in their tests. CRNN_JAX_TEST_OPTIMIZED=1 keeps them on.
if not os.environ.get("CRNN_JAX_TEST_OPTIMIZED"):
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import contextlib  # pylint: disable=g-import-not-at-top,wrong-import-position
import io  # pylint: disable=g-import-not-at-top,wrong-import-position

from PIL import Image  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from tests.data_helpers import (  # pylint: disable=g-import-not-at-top,wrong-import-position
    encode, image_array, write_raw_lmdb)


class _Terminal(io.StringIO):
  """A stderr that says it is a terminal, so progress bars are drawn into it."""

  def isatty(self):
    return True


@pytest.fixture
def terminal_stderr(monkeypatch):
  """`with terminal_stderr() as stderr:` runs the block with sys.stderr a fake terminal;
  `stderr.getvalue()` is what was drawn."""

  @contextlib.contextmanager
  def replaced():
    terminal = _Terminal()
    with monkeypatch.context() as patch:
      patch.setattr(sys, "stderr", terminal)
      yield terminal

  return replaced


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
  """A workdir of the tiny CRNN with random (untrained) weights, made once for the session.

  It is what training writes (config.json of `deploy_helpers.tiny_config()` and a step-0
  checkpoint of `deploy_helpers.make_workdir(..., seed=3)`), so Recognizer, export and the CLI
  load it like a real one. Every test that asks for it gets the same directory: tests must not
  write into it. A test that needs to change a workdir copies it into its own tmp_path first:
  `workdir = shutil.copytree(tiny_workdir, tmp_path / "run")`.
  """
  import deploy_helpers  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  return deploy_helpers.make_workdir(tmp_path_factory.mktemp("tiny_workdir") / "run", seed=3)


# Datasets with bad records, written inside the test's tmp_path: the dataset tests (tests/data/),
# `crnn-jax data` (tests/cli/test_data.py) and training on such a dataset read them. `good` lists
# say what a reader should keep, `bad` maps a record to the reason it is skipped.


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
  from crnn_jax.synth import fonts  # pylint: disable=import-outside-toplevel

  installed = fonts._package_dir  # pylint: disable=protected-access

  def hide(name):
    monkeypatch.setattr(fonts, "_package_dir",
                        lambda package: None if package == name else installed(package))
    fonts._discover.cache_clear()  # pylint: disable=protected-access

  yield hide
  fonts._discover.cache_clear()  # pylint: disable=protected-access
