"""Recognition metrics."""

import pytest

from crnn_jax import evaluation


def test_normalized_edit_distance_icdar2019():
  assert evaluation.normalized_edit_distance("abc", "abc") == 0.0
  assert evaluation.normalized_edit_distance("", "") == 0.0
  assert evaluation.normalized_edit_distance("abd", "abc") == pytest.approx(1 / 3)
  assert evaluation.normalized_edit_distance("ab", "abcd") == pytest.approx(2 / 4)
  assert evaluation.normalized_edit_distance("", "xyz") == 1.0


def test_running_metrics():
  metrics = evaluation.RecognitionMetrics()
  metrics.update(["Hello", "world", "xx"], ["hello", "world", "abcd"], [0.5, 1.0, 0.0])
  result = metrics.result()
  assert result["count"] == 3
  assert result["word_accuracy"] == pytest.approx(1 / 3)
  assert result["word_accuracy_ignore_case"] == pytest.approx(2 / 3)
  assert result["one_minus_ned"] == pytest.approx(1 - (1 / 5 + 0 + 1) / 3)
  assert result["char_error_rate"] == pytest.approx((1 + 0 + 4) / 14)
  assert result["mean_confidence"] == pytest.approx(0.5)
  with pytest.raises(ValueError):
    metrics.update(["a"], [])
