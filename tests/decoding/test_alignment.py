"""Tests of crnn_jax/decoding/alignment.py (and the frame geometry of crnn.frame_columns)."""

import itertools

import numpy as np
import pytest

from crnn_jax.text.charset import Charset
from crnn_jax.decoding import alignment
from crnn_jax.decoding import greedy
from crnn_jax.models import crnn

CHARSET = Charset("abc")


def test_frame_columns_and_char_spans():
  assert crnn.frame_columns(0, 0, 100) == (0, 2)
  assert crnn.frame_columns(3, 5, 100) == (10, 22)
  assert crnn.frame_columns(25, 25, 100) == (98, 100)
  # 'a' 'a' merged, blank, 'a', 'b' 'b', 'c': the runs are the characters.
  assert alignment.char_spans([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [(1, 0, 1), (1, 3, 3), (2, 4, 5),
                                                            (3, 8, 8)]
  assert alignment.frame_path([1, 1, 0, 2, 0], CHARSET) == "aa-b-"


def _brute_force_alignment(log_probs, labels):
  best, best_path = -np.inf, None
  for path in itertools.product(range(log_probs.shape[1]), repeat=log_probs.shape[0]):
    if greedy.collapse_path(path) == list(labels):
      score = log_probs[np.arange(len(path)), path].sum()
      if score > best:
        best, best_path = score, path
  return best, best_path


@pytest.mark.parametrize("labels", [(1,), (1, 1), (1, 2, 3), (2, 2, 1), (), (1, 1, 1, 1)])
def test_best_alignment_is_the_viterbi_path(labels):
  rng = np.random.default_rng(len(labels))
  for _ in range(3):
    log_probs = greedy.log_softmax(rng.normal(size=(6, 4)) * 2).astype(np.float64)
    best, expected = _brute_force_alignment(log_probs, labels)
    path = alignment.best_alignment(log_probs, labels)
    if expected is None:
      assert path is None
      continue
    assert greedy.collapse_path(path) == list(labels)
    assert log_probs[np.arange(6), path].sum() == pytest.approx(best)
  assert alignment.best_alignment(np.zeros((3, 4)), (1, 1, 1)) is None  # Needs 5 frames.
