"""Fixtures of the dataset tests: a small LMDB of words, and hiding a font package.

The LMDB is written inside the test's tmp_path. The plain helpers the dataset tests share
(noise images, LMDB writers, `dataset_config`, `take`, ...) are in tests/data_helpers.py; the
datasets with bad records (bad_lmdb, gt_folder, mjsynth_tree) are fixtures of tests/conftest.py,
as the CLI and training tests read them too.
"""

import numpy as np
import pytest

from tests.data_helpers import write_lmdb


@pytest.fixture
def words_lmdb(tmp_path):
  rng = np.random.default_rng(5)
  widths = rng.integers(16, 400, size=64)
  return write_lmdb(tmp_path / "words", [(f"w{i}", int(w)) for i, w in enumerate(widths)])


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
