"""Tests of benchmarks/real_crops.py: reading gt.txt folders and scoring under the protocol."""

import numpy as np
import pytest
from PIL import Image

from crnn_jax.evaluation import protocol


def test_score_strips_counts_altered_and_thresholds(real_crops):
  labels = ["CHANGE!!", "Hotel", "703/04", "!!", "pub"]
  texts = ["change", "HOTEL", "70304", "x", ""]
  confidences = [0.95, 0.6, 0.3, 0.9, 0.8]
  result = real_crops.score(labels, texts, confidences, protocol.STANDARD)
  assert result["count"] == 4 and result["skipped"] == 1  # '!!' has no character left.
  assert result["altered"] == 2 and result["correct"] == 3
  assert result["accuracy"] == pytest.approx(0.75)
  assert result["empty"] == 1 and result["empty_confident"] == 1
  at = result["by_threshold"]
  assert at["0.5"] == pytest.approx(dict(coverage=0.75, accuracy=2 / 3))
  assert at["0.9"] == pytest.approx(dict(coverage=0.25, accuracy=1.0))
  case = real_crops.score(labels, texts, confidences, protocol.CASE_SENSITIVE)
  assert case["correct"] == 1  # Only '70304': 'change' is not 'CHANGE', 'HOTEL' not 'Hotel'.


def test_read_folder_and_markdown(real_crops, tmp_path):
  folder = tmp_path / "set"
  folder.mkdir()
  Image.fromarray(np.full((20, 40), 200, np.uint8)).save(folder / "a.png")
  (folder / "gt.txt").write_text("a.png\tShop!\nmissing.png\tgone\n")
  items = real_crops.read_folder(folder)  # The missing file is named on stderr and skipped.
  assert items == [(folder / "a.png", "Shop!")]
  row = real_crops.score(["Shop!"], ["shop"], [0.8], protocol.STANDARD)
  results = {"sys": dict(seconds_per_image=0.01, datasets={"set": dict(
      standard=row, case_sensitive=real_crops.score(["Shop!"], ["shop"], [0.8],
                                                    protocol.CASE_SENSITIVE))})}
  table = real_crops.markdown(results)
  assert "| sys | set | 1 | 1 | 100.0 | 0.0 | 0 (0) | 100.0 / 100 |" in table


def test_accuracy_by_aspect_band(real_crops):
  assert real_crops.aspect_band(1.0) == "0-2" and real_crops.aspect_band(3.0) == "2-3.125"
  assert real_crops.aspect_band(6.0) == "6+" and real_crops.aspect_band(40.0) == "6+"
  table = real_crops.by_aspect(["ab", "Long-word", "x!", "!!"], ["ab", "longwrd", "y", "z"],
                               [1.5, 7.0, 1.0, 3.0], protocol.STANDARD)
  assert list(table) == ["0-2", "2-3.125", "3.125-4.5", "4.5-6", "6+"]
  assert table["0-2"] == dict(count=2, accuracy=0.5)  # '!!' has nothing left and not counted.
  assert table["6+"] == dict(count=1, accuracy=0.0) and table["2-3.125"]["count"] == 0
  results = {"sys": dict(datasets={"set": dict(by_aspect=table)})}
  assert "| sys | set | 50.0 (2) | 0.0 (0) | 0.0 (0) | 0.0 (0) | 0.0 (1) |" in (
      real_crops.aspect_markdown(results))
