"""Tests for crnn_jax.decoding.beam (CTC prefix beam search) against brute force."""

import itertools

import numpy as np
import pytest

from crnn_jax.text.charset import Charset
from crnn_jax.decoding import beam
from crnn_jax.decoding.beam import prefix_beam_search


def _best_path(log_probs, lengths):
  """Reference best-path decoding: argmax per frame, collapse repeats, drop blanks."""
  out = []
  for b in range(log_probs.shape[0]):
    path = np.argmax(log_probs[b, : lengths[b]], axis=-1).tolist()
    ids = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
    out.append(tuple(ids))
  return out


def _collapse(path):
  return tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))


def _all_labellings(log_probs):
  """log p(l | y) of every labelling l, summing all K^T alignments. log_probs: [T, K]."""
  frames, num_classes = log_probs.shape
  paths = np.array(list(itertools.product(range(num_classes), repeat=frames)))
  path_scores = log_probs[np.arange(frames), paths].sum(axis=1)
  totals = {}
  for path, score in zip(paths.tolist(), path_scores.tolist()):
    label = _collapse(path)
    totals[label] = np.logaddexp(totals.get(label, -np.inf), score)
  return totals


def _random_log_probs(rng, shape, scale=2.0):
  logits = rng.normal(size=shape) * scale
  return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def _peaked_log_probs(rng, batch, frames, num_classes):
  """Tables where each frame's top class has probability in [0.9, 0.99)."""
  probs = rng.dirichlet(np.ones(num_classes - 1), size=(batch, frames))
  top = rng.uniform(0.9, 0.99, size=(batch, frames))
  winner = rng.integers(0, num_classes, size=(batch, frames))
  out = np.empty((batch, frames, num_classes))
  for b, t in np.ndindex(batch, frames):
    rest = probs[b, t] * (1 - top[b, t])
    out[b, t] = np.insert(rest, winner[b, t], top[b, t])
  return np.log(out)


@pytest.mark.parametrize("seed", range(40))
def test_width_one_equals_best_path(seed):
  # Width-1 prefix search compares summed prefix probabilities, not single paths, so it can
  # differ from best path (see test_width_one_can_beat_best_path); with a dominant class
  # (p >= 0.9) at every frame the two provably agree.
  rng = np.random.default_rng(seed)
  batch, frames, num_classes = 5, int(rng.integers(1, 30)), int(rng.integers(2, 12))
  log_probs = _peaked_log_probs(rng, batch, frames, num_classes).astype(np.float32)
  lengths = rng.integers(0, frames + 1, size=batch)
  for b in range(batch):  # Garbage in the padding frames.
    log_probs[b, lengths[b]:] = rng.normal(size=(frames - lengths[b], num_classes)) * 50
  results = prefix_beam_search(log_probs, lengths, beam_width=1)
  assert [hyps[0][0] for hyps in results] == _best_path(log_probs, lengths)


def test_width_one_can_beat_best_path():
  # Best path: 'a' then 'b' -> "ab" (p = 0.28). Prefix "a" totals 0.42 after frame 2
  # ("a-" 0.245 + "aa" 0.175) and is kept; its exact probability is 0.495.
  probs = np.array([[[0.3, 0.7, 0.0], [0.35, 0.25, 0.4]]])
  log_probs = np.log(np.maximum(probs, 1e-30))
  assert _best_path(log_probs, [2]) == [(1, 2)]
  [[(ids, score)]] = prefix_beam_search(log_probs, np.array([2]), beam_width=1)
  assert ids == (1,)
  [[(ids, score)]] = prefix_beam_search(log_probs, np.array([2]), beam_width=5)
  assert ids == (1,) and score == pytest.approx(np.log(0.495), abs=1e-9)


@pytest.mark.parametrize(
    "probs",
    [
        [[0.6, 0.4]] * 3,  # "---" is the best path (0.216), but p("a") = 0.688.
        [[0.55, 0.4, 0.05]] * 3,
        [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.45, 0.25, 0.3]],
    ],
)
def test_finds_labelling_that_best_path_misses(probs):
  log_probs = np.log(np.array([probs], dtype=np.float32))
  assert _best_path(log_probs, [3]) == [()]
  truth = _all_labellings(log_probs[0].astype(np.float64))
  best_label = max(truth, key=truth.get)
  assert best_label == (1,)
  [[(ids, score)]] = prefix_beam_search(log_probs, np.array([3]), beam_width=4)
  assert ids == best_label
  assert score == pytest.approx(truth[best_label], abs=1e-5)


@pytest.mark.parametrize("seed", range(12))
def test_wide_beam_is_exact(seed):
  # With a beam wider than the number of labellings nothing is pruned: every labelling comes
  # back with its exact total probability, sorted.
  rng = np.random.default_rng(1000 + seed)
  frames, num_classes = int(rng.integers(1, 6)), int(rng.integers(2, 5))
  log_probs = _random_log_probs(rng, (1, frames, num_classes)).astype(np.float32)
  truth = _all_labellings(log_probs[0].astype(np.float64))
  width = num_classes ** frames
  [hyps] = prefix_beam_search(log_probs, np.array([frames]), beam_width=width, n_best=width)
  assert len(hyps) == len(truth)
  assert {ids for ids, _ in hyps} == set(truth)
  for ids, score in hyps:
    assert score == pytest.approx(truth[ids], abs=1e-5)
  scores = [s for _, s in hyps]
  assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("seed", range(6))
def test_n_best_ordering(seed):
  rng = np.random.default_rng(2000 + seed)
  log_probs = _random_log_probs(rng, (3, 12, 6), scale=1.5)
  lengths = np.array([12, 7, 1])
  many = prefix_beam_search(log_probs, lengths, beam_width=8, n_best=5)
  one = prefix_beam_search(log_probs, lengths, beam_width=8, n_best=1)
  for hyps, top in zip(many, one):
    assert 1 <= len(hyps) <= 5
    assert len({ids for ids, _ in hyps}) == len(hyps)
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True)
    assert hyps[0] == top[0]
    assert all(0 not in ids for ids, _ in hyps)
  # One frame: the labellings are the single classes and the empty string.
  assert {ids for ids, _ in many[2]} <= {(), (1,), (2,), (3,), (4,), (5,)}
  assert len(many[2]) == 5


@pytest.mark.parametrize("seed", range(5))
def test_padding_frames_are_ignored(seed):
  rng = np.random.default_rng(3000 + seed)
  frames, num_classes = 10, 7
  log_probs = _random_log_probs(rng, (4, frames, num_classes)).astype(np.float32)
  lengths = np.array([10, 6, 3, 0])
  expected = prefix_beam_search(log_probs, lengths, beam_width=6, n_best=3)
  garbage = rng.normal(size=(4, 5, num_classes)).astype(np.float32) * 30
  garbage[0, 0, 0] = np.nan
  padded = np.concatenate([log_probs, garbage], axis=1)
  for b in range(4):
    padded[b, lengths[b]:] = rng.normal(size=(frames + 5 - lengths[b], num_classes)) * 30
  assert prefix_beam_search(padded, lengths, beam_width=6, n_best=3) == expected
  # Each sample is searched independently of the rest of the batch.
  for b in range(4):
    assert prefix_beam_search(log_probs[b:b + 1, : lengths[b]], lengths[b:b + 1],
                              beam_width=6, n_best=3) == [expected[b]]
  assert expected[3] == [((), 0.0)]


def test_prune_threshold_skips_unlikely_extensions():
  log_probs = np.log(np.array([[[0.6, 0.4]] * 3]))
  [[(ids, _)]] = prefix_beam_search(log_probs, np.array([3]), beam_width=4)
  assert ids == (1,)
  [[(ids, score)]] = prefix_beam_search(log_probs, np.array([3]), beam_width=4,
                                        prune_threshold=0.5)
  assert ids == () and score == pytest.approx(3 * np.log(0.6))


def test_n_best_readings_as_texts():
  charset = Charset("ab")
  log_probs = np.log(np.array([[[0.3, 0.7, 0.0], [0.35, 0.25, 0.4]]] * 2) + 1e-30)
  hyps = prefix_beam_search(log_probs, np.array([2, 1]), beam_width=5, n_best=2)
  texts = [[(charset.decode(ids), score) for ids, score in sample] for sample in hyps]
  assert [t for t, _ in texts[0]] == ["a", "ab"]
  assert texts[0][0][1] == pytest.approx(np.log(0.495), abs=1e-6)
  assert [t for t, _ in texts[1]] == ["a", ""]


def test_invalid_arguments():
  log_probs = np.zeros((2, 3, 4))
  with pytest.raises(ValueError):
    prefix_beam_search(log_probs, np.array([3, 4]))
  with pytest.raises(ValueError):
    prefix_beam_search(log_probs, np.array([3]))
  with pytest.raises(ValueError):
    prefix_beam_search(log_probs, np.array([3, 3]), beam_width=0)
  with pytest.raises(ValueError):
    prefix_beam_search(log_probs[0], np.array([3]))


def test_top_equals_a_stable_full_sort_ties_included():
  rng = np.random.default_rng(0)
  for _ in range(500):
    n, k = int(rng.integers(1, 60)), int(rng.integers(1, 40))
    scores = rng.integers(-3, 3, n).astype(np.float64)  # Many ties.
    scores[rng.random(n) < 0.2] = -np.inf
    np.testing.assert_array_equal(beam._top(scores, k), np.argsort(-scores, kind="stable")[:k])
