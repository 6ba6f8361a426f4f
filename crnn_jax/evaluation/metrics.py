"""Recognition metrics: word accuracy, normalized edit distance (ICDAR 2019), character error rate.

`RecognitionMetrics` accumulates predictions and ground truths on the host; it is the one
accumulator of every evaluation (the evaluators of `evaluators.py`: training's periodic
evaluation, decoder comparisons and `crnn-jax eval --data` under a `protocol`; their processes
add up `as_vector()`). Edit distances come from the `editdistance` package.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import editdistance


def normalized_edit_distance(prediction: str, target: str) -> float:
  """ICDAR 2019 normalized edit distance: d(p, t) / max(|p|, |t|) (0 when both are empty)."""
  longest = max(len(prediction), len(target))
  return editdistance.eval(prediction, target) / longest if longest else 0.0


@dataclasses.dataclass
class RecognitionMetrics:
  """Running totals over evaluated samples."""

  count: int = 0
  correct: int = 0  # Exact, case-sensitive matches.
  correct_ignore_case: int = 0
  sum_ned: float = 0.0  # Sum of normalized edit distances.
  char_errors: int = 0  # Sum of edit distances.
  target_chars: int = 0  # Sum of target lengths.
  sum_confidence: float = 0.0

  def update(self, predictions: Iterable[str], targets: Iterable[str],
             confidences: Iterable[float] | None = None) -> None:
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
      raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    confidences = list(confidences) if confidences is not None else [0.0] * len(targets)
    if len(confidences) != len(targets):
      raise ValueError(f"{len(confidences)} confidences for {len(targets)} targets")
    for pred, target, conf in zip(predictions, targets, confidences):
      self.count += 1
      self.correct += pred == target
      self.correct_ignore_case += pred.lower() == target.lower()
      self.sum_ned += normalized_edit_distance(pred, target)
      self.char_errors += editdistance.eval(pred, target)
      self.target_chars += len(target)
      self.sum_confidence += float(conf)

  def add(self, other: "RecognitionMetrics") -> None:
    """Adds another accumulator's totals (another dataset, or another host's share)."""
    for field in dataclasses.fields(self):
      setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

  def as_vector(self) -> list[float]:
    """The totals as numbers, in field order (for an all-reduce across hosts)."""
    return [float(getattr(self, field.name)) for field in dataclasses.fields(self)]

  @classmethod
  def from_vector(cls, vector) -> "RecognitionMetrics":
    """The inverse of `as_vector` (integer fields rounded)."""
    fields = dataclasses.fields(cls)
    if len(vector) != len(fields):
      raise ValueError(f"expected {len(fields)} totals, got {len(vector)}")
    return cls(**{f.name: (int(round(v)) if f.type in ("int", int) else float(v))
                  for f, v in zip(fields, vector)})

  def result(self) -> dict[str, float]:
    """Metrics as fractions in [0, 1] (`one_minus_ned` is the ICDAR 2019 score)."""
    n = max(self.count, 1)
    return dict(
        count=self.count,
        word_accuracy=self.correct / n,
        word_accuracy_ignore_case=self.correct_ignore_case / n,
        one_minus_ned=1.0 - self.sum_ned / n,
        char_error_rate=self.char_errors / max(self.target_chars, 1),
        mean_confidence=self.sum_confidence / n,
    )
