"""CTC prefix beam search over per-frame log-probabilities.

Unlike best-path (greedy) decoding, which returns the collapse of the single most probable
frame alignment, prefix beam search approximately finds the most probable *labelling*: the
probability of a label sequence is the sum over all its alignments. For every prefix in the
beam it tracks, in log space, `p_b` (all alignments of the frames so far that collapse to the
prefix and end in a blank) and `p_nb` (those ending in the prefix's last character). Keeping
the two apart is what makes repeated characters right: after "a", a further "a" frame extends
"a" to "aa" only from `p_b` (an alignment "a-a"), while from `p_nb` it stays "a" ("aa").

The work per frame is vectorized over the K classes for all beams at once; only the bookkeeping
of the (at most `beam_width`) surviving prefixes is in Python.

With a large enough beam the search is exact: with `beam_width` at least the number of distinct
labellings reachable, the scores are the exact total probabilities. A beam of width 1 is not the
same as best-path decoding in general (it compares summed prefix probabilities, not single
paths), but it agrees with it whenever every frame's top class has probability >= 0.9.
"""

from __future__ import annotations

import math

import numpy as np

from crnn_jax.text.charset import BLANK_ID

# (label ids without blanks, total log-probability of all alignments collapsing to them).
Hypothesis = tuple[tuple[int, ...], float]


def check_inputs(log_probs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Validates shapes: log_probs [B, T, K] and lengths [B] within [0, T]."""
  log_probs = np.asarray(log_probs)
  if log_probs.ndim != 3:
    raise ValueError(f"log_probs must be [B, T, K], got shape {log_probs.shape}")
  batch, frames, _ = log_probs.shape
  lengths = np.asarray(lengths).reshape(-1).astype(np.int64)
  if lengths.shape[0] != batch:
    raise ValueError(f"lengths has {lengths.shape[0]} entries for a batch of {batch}")
  if np.any(lengths < 0) or np.any(lengths > frames):
    raise ValueError(f"lengths must lie in [0, {frames}], got {lengths.tolist()}")
  return log_probs, lengths


def _top(scores: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest scores, best first, ties by index: exactly
  `np.argsort(-scores, kind='stable')[:k]`, without sorting all of them."""
  if len(scores) <= k:
    return np.argsort(-scores, kind="stable")
  kth = np.partition(scores, len(scores) - k)[len(scores) - k]
  candidates = np.flatnonzero(scores >= kth)  # Every score above the k-th, and its ties.
  return candidates[np.argsort(-scores[candidates], kind="stable")][:k]


def _search_one(
    frames: np.ndarray, beam_width: int, n_best: int, log_threshold: float
) -> list[Hypothesis]:
  """Prefix beam search over one sample's real frames.

  Args:
    frames: [T, K] log-probabilities of the real (unpadded) frames.
    beam_width: prefixes kept after each frame.
    n_best: hypotheses returned.
    log_threshold: extensions by classes whose log-probability at a frame lies below this are
      skipped (-inf: none are).

  Returns:
    Up to n_best (labels, log-probability) pairs, best first.
  """
  num_classes = frames.shape[1]
  neg_inf = -np.inf
  prefixes: list[tuple[int, ...]] = [()]
  p_b = np.zeros(1)  # log p(prefix, alignment ends in blank)
  p_nb = np.full(1, neg_inf)  # log p(prefix, alignment ends in the prefix's last character)
  last = np.zeros(1, dtype=np.int64)  # last character of each prefix (BLANK_ID when empty)

  for lp in frames:
    p_total = np.logaddexp(p_b, p_nb)
    has_last = last != BLANK_ID
    # The prefix stays the same: a blank frame, or a repeat of the last character.
    stay_b = p_total + lp[BLANK_ID]
    stay_nb = np.where(has_last, p_nb + lp[last], neg_inf)
    # The prefix grows by class k: from any alignment, except that a repeat of the last
    # character only extends alignments ending in blank.
    grow = p_total[:, None] + lp[None, :]  # [beams, K]
    grow[:, BLANK_ID] = neg_inf
    rows = np.flatnonzero(has_last)
    grow[rows, last[rows]] = p_b[rows] + lp[last[rows]]
    if log_threshold > neg_inf:
      grow[:, lp < log_threshold] = neg_inf
    # A grown prefix may already be in the beam (prefix + k == another beam's prefix): merge it.
    index = {prefix: i for i, prefix in enumerate(prefixes)}
    for j, prefix in enumerate(prefixes):
      if prefix:
        parent = index.get(prefix[:-1])
        if parent is not None:
          stay_nb[j] = np.logaddexp(stay_nb[j], grow[parent, prefix[-1]])
          grow[parent, prefix[-1]] = neg_inf

    num_beams = len(prefixes)
    scores = np.concatenate([np.logaddexp(stay_b, stay_nb), grow.ravel()])
    order = _top(scores, beam_width)
    order = order[scores[order] > neg_inf]
    new_prefixes, new_b, new_nb, new_last = [], [], [], []
    for flat in order.tolist():
      if flat < num_beams:
        new_prefixes.append(prefixes[flat])
        new_b.append(stay_b[flat])
        new_nb.append(stay_nb[flat])
        new_last.append(last[flat])
      else:
        beam, k = divmod(flat - num_beams, num_classes)
        new_prefixes.append(prefixes[beam] + (k,))
        new_b.append(neg_inf)
        new_nb.append(grow[beam, k])
        new_last.append(k)
    if not new_prefixes:  # Every continuation has probability 0.
      return [(prefix, -math.inf) for prefix in prefixes[:n_best]]
    prefixes = new_prefixes
    p_b, p_nb = np.array(new_b), np.array(new_nb)
    last = np.array(new_last, dtype=np.int64)

  totals = np.logaddexp(p_b, p_nb)
  order = np.argsort(-totals, kind="stable")[:n_best]
  return [(prefixes[i], float(totals[i])) for i in order.tolist()]


def prefix_beam_search(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    *,
    beam_width: int = 10,
    n_best: int = 1,
    prune_threshold: float = 0.0,
) -> list[list[Hypothesis]]:
  """CTC prefix beam search.

  Args:
    log_probs: [B, T, K] per-frame log-probabilities (log-softmax outputs; class 0 is blank).
    lengths: [B] number of real frames per sample; frames t >= lengths[b] are ignored.
    beam_width: number of prefixes kept after each frame (>= 1).
    n_best: number of hypotheses returned per sample (1 <= n_best; at most beam_width come
      back).
    prune_threshold: a probability in [0, 1); at each frame, classes whose probability is below
      it are not tried as extensions of any prefix. 0 (the default) prunes nothing, so the
      search is exactly the textbook one; values around 1e-3 to 1e-2 trade a little accuracy
      for fewer candidates when K is large (e.g. CJK charsets).

  Returns:
    For each of the B samples, up to n_best (label ids, log p) pairs sorted best first, where
    label ids is a tuple of class indices (no blanks) and log p = logsumexp(p_b, p_nb) is the
    log of the total probability of all alignments of those frames collapsing to it. A sample
    with no real frames gives [((), 0.0)].
  """
  if beam_width < 1:
    raise ValueError(f"beam_width must be >= 1, got {beam_width}")
  if n_best < 1:
    raise ValueError(f"n_best must be >= 1, got {n_best}")
  if not 0.0 <= prune_threshold < 1.0:
    raise ValueError(f"prune_threshold must lie in [0, 1), got {prune_threshold}")
  log_probs, lengths = check_inputs(log_probs, lengths)
  log_threshold = math.log(prune_threshold) if prune_threshold > 0 else -np.inf
  return [
      _search_one(
          log_probs[b, : lengths[b]].astype(np.float64), beam_width, n_best, log_threshold
      )
      for b in range(log_probs.shape[0])
  ]
