"""Fixtures of the dataset tests: a small LMDB of words.

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
