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


def test_totals_add_up_and_travel_as_a_vector():
  score = evaluation.RecognitionMetrics()
  score.update(["hello", "wor", "", "abc"], ["hello", "world", "x", "abd"],
               [0.9, 0.5, 0.1, 0.7])
  result = score.result()
  assert result["count"] == 4 and result["word_accuracy"] == 0.25
  # NED: 0, 2/5, 1, 1/3.
  assert result["one_minus_ned"] == pytest.approx(1 - (0 + 0.4 + 1 + 1 / 3) / 4)
  assert result["mean_confidence"] == pytest.approx(0.55)
  again = evaluation.RecognitionMetrics.from_vector(score.as_vector())
  assert again == score and isinstance(again.count, int)
  both = evaluation.RecognitionMetrics()
  both.add(score)
  both.add(again)
  assert both.count == 8 and both.correct == 2 and both.result()["word_accuracy"] == 0.25
  assert both.result()["char_error_rate"] == score.result()["char_error_rate"]
  with pytest.raises(ValueError, match="totals"):
    evaluation.RecognitionMetrics.from_vector([1.0, 2.0])
  with pytest.raises(ValueError, match="confidences"):
    score.update(["a"], ["a"], [1.0, 0.5])
  with pytest.raises(ValueError):
    score.update(["a"], ["a", "b"], [1.0])
