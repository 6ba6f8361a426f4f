"""Lexicon-constrained CTC decoding (Shi, Bai, Yao 2015, Sec. 2.3.2).

With a lexicon D, the transcription is the word maximizing the CTC probability p(l | y) over
D. Scoring every word is costly for large lexicons, so the paper restricts the search to the
neighbourhood N_delta(l*) of the best-path (greedy) output l*: the words within edit distance
delta of it, found with a BK-tree. This module does that:

* Lexicons with at most `exhaustive_below` words (default 200; this covers the 50-word
  per-image lists of IIIT5k, SVT and IC03) are searched exhaustively: every word is scored,
  which is exact. Scoring is the expensive part: on a CPU the CTC forward pass costs roughly
  10-30 us per (image, word) pair (it grows with the longest word), so 200 words cost ~5 ms per
  image and 1000 words ~30 ms, against ~0.6 ms and ~2 ms with the neighbourhood search.
* Larger lexicons (e.g. IIIT5k's 1k lists, a 50k-word dictionary) use the BK-tree
  neighbourhood N_delta(l*), as in the paper. When no word lies within delta of l*, the decoder
  falls back to the words at the smallest edit distance from l* (all ties, found with a BK-tree
  nearest-neighbour search) and picks the most probable of those; scoring the whole large
  lexicon would defeat the purpose. Note that at delta = 3 a BK-tree over a 50k-word English
  lexicon still computes the distance to about half of the words per query (tens of ms in
  Python); a smaller delta is much faster (delta = 1: ~3% of the words).

p(l | y) comes from the CTC forward algorithm (`optax.ctc_loss`, p = exp(-loss)), computed in
one jitted call for all (sample, candidate) pairs of a batch (only batches of more than
`max_pairs_per_call` pairs, 16384 by default, are split, to bound memory). Label batches are
padded to bucketed shapes (label length to a multiple of 8, pair count to a power of two) so
that the call compiles only a handful of times. A candidate that cannot be aligned to the
sample's frames (it needs len(word) + number of adjacent repeats frames) gets log p = -inf. Ties,
including all candidates being impossible, go to the candidate listed first: lexicon order in
exhaustive mode, (edit distance, word) order otherwise.

Lexicon words are normalized with `charset.normalize` (which may lower-case), and the decoded
words are returned in that normalized form. Words the charset cannot encode are dropped and
counted; duplicates after normalization are merged.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import editdistance
import jax
import jax.numpy as jnp
import numpy as np
import optax

from crnn_jax.text.charset import BLANK_ID
from crnn_jax.decoding import beam
from crnn_jax.decoding.bktree import BKTree

DEFAULT_DELTA = 3
DEFAULT_EXHAUSTIVE_BELOW = 200
# Upper bound on the (sample, candidate) pairs scored in one ctc_loss call; it bounds the
# [pairs, T, K] gather to ~pairs * T * K * 4 bytes. Only exceeded in unusual cases (huge
# neighbourhoods of very short words, or big per-image lexicons), which then take a few calls.
DEFAULT_MAX_PAIRS_PER_CALL = 16384
_LABEL_BUCKET = 8
_MIN_PAIR_BUCKET = 16
# Floor for log-probabilities fed to ctc_loss: -inf entries would turn into NaNs there.
_LOG_PROB_FLOOR = -1e4
# Log-probability of unused columns of the reduced per-pair tables (finite, for the same reason).
_UNUSED_LOG_PROB = -1e30
# Smallest remaining-mass probability of a reduced table (its column is never on a path).
_MIN_REST_PROB = 1e-30


def load_lexicon(path: str | os.PathLike) -> list[str]:
  """Reads a lexicon file: one word per line, UTF-8.

  Lines are stripped, blank lines skipped and duplicates dropped (first occurrence kept).

  Args:
    path: the lexicon file.

  Returns:
    The words in file order.

  Raises:
    FileNotFoundError: the file does not exist.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"lexicon file {path} does not exist")
  words = (line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines())
  return list(dict.fromkeys(w for w in words if w))


@dataclasses.dataclass(frozen=True)
class _EncodedLexicon:
  """A normalized lexicon with its words encoded as a padded label matrix.

  Attributes:
    words: the normalized, encodable, distinct words, in input order.
    labels: [W, L] int32 class ids, right-padded with 0.
    label_lengths: [W] int32 word lengths.
    num_dropped: input words dropped because the charset cannot encode them.
  """

  words: list[str]
  labels: np.ndarray
  label_lengths: np.ndarray
  num_dropped: int


def _encode_lexicon(lexicon: Sequence[str], charset, what: str = "the lexicon") -> _EncodedLexicon:
  """Normalizes, filters, dedupes and encodes `lexicon`; raises ValueError if nothing is left."""
  if isinstance(lexicon, str):
    raise TypeError(f"{what} must be a sequence of words, not a string")
  words: dict[str, list[int]] = {}
  num_dropped = 0
  for word in lexicon:
    word = charset.normalize(word.strip())
    if not word or word in words:
      continue
    if not charset.can_encode(word):
      num_dropped += 1
      continue
    words[word] = charset.encode(word)
  if not words:
    raise ValueError(
        f"{what} is empty" + (f" ({num_dropped} words outside the charset)" if num_dropped else "")
    )
  width = max(len(ids) for ids in words.values())
  labels = np.zeros((len(words), width), np.int32)
  for i, ids in enumerate(words.values()):
    labels[i, : len(ids)] = ids
  lengths = np.array([len(ids) for ids in words.values()], np.int32)
  return _EncodedLexicon(
      words=list(words), labels=labels, label_lengths=lengths, num_dropped=num_dropped
  )


def _best_path_ids(log_probs: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
  """Best-path labelling l* per sample: per-frame argmax, repeats collapsed, blanks dropped."""
  best = np.argmax(log_probs, axis=-1)  # [B, T]
  out = []
  for b in range(best.shape[0]):
    path = best[b, : lengths[b]]
    keep = np.ones(path.shape, bool)
    keep[1:] = path[1:] != path[:-1]
    out.append([int(k) for k in path[keep] if k != BLANK_ID])
  return out


def _round_up(n: int, multiple: int) -> int:
  return max(multiple, -(-n // multiple) * multiple)


def _pair_bucket(n: int) -> int:
  return max(_MIN_PAIR_BUCKET, 1 << (n - 1).bit_length())


@jax.jit
def _pair_log_likelihoods(log_probs, logit_paddings, sample_idx, labels, label_paddings):
  """log p(labels[p] | log_probs[sample_idx[p]]) for every pair p, via the CTC forward pass.

  Rather than handing ctc_loss the full [P, T, K] table of each pair, which costs P * T * K
  memory and a [P, T, N] x [P, N, K] one-hot einsum inside ctc_loss (prohibitive for large
  charsets), each pair gets a reduced, still normalized, [P, T, N + 2] table: column 0 is the
  blank, column j + 1 holds the class of label position j if that character does not occur
  earlier in the label (else it is unused), and the last column holds the remaining mass
  1 - sum(others). Labels are renumbered to the column of each character's first occurrence, so
  adjacent repeats stay repeats and p(l | y) is unchanged.

  Args:
    log_probs: [B, T, K] finite log-probabilities (padding frames included).
    logit_paddings: [B, T] 1.0 on padding frames.
    sample_idx: [P] int32 sample of each pair.
    labels: [P, N] int32 class ids, right-padded.
    label_paddings: [P, N] 1.0 on label padding.

  Returns:
    [P] float32 log p(label | frames).
  """
  frames = log_probs.shape[1]
  width = labels.shape[1]
  valid = label_paddings == 0
  same = (labels[:, :, None] == labels[:, None, :]) & valid[:, None, :]  # [P, N, N]
  first = jnp.argmax(same, axis=-1)  # [P, N] first position holding the same character
  used = valid & (first == jnp.arange(width)[None, :])
  emit = log_probs[sample_idx[:, None, None], jnp.arange(frames)[None, :, None],
                   labels[:, None, :]]  # [P, T, N]
  emit = jnp.where(used[:, None, :], emit, _UNUSED_LOG_PROB)
  blank = log_probs[sample_idx, :, BLANK_ID][:, :, None]  # [P, T, 1]
  kept = jnp.sum(jnp.exp(blank), -1) + jnp.sum(jnp.exp(emit), -1)  # [P, T]
  rest = jnp.log(jnp.maximum(1.0 - kept, _MIN_REST_PROB))[:, :, None]
  reduced = jnp.concatenate([blank, emit, rest], axis=-1)  # [P, T, N + 2]
  with jax.default_matmul_precision("highest"):  # ctc_loss gathers log-probs with an einsum.
    loss = optax.ctc_loss(
        reduced, logit_paddings[sample_idx], (first + 1) * valid, label_paddings,
        blank_id=BLANK_ID,
    )
  return -loss


def score_candidates(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    sample_idx: np.ndarray,
    labels: np.ndarray,
    label_lengths: np.ndarray,
    *,
    max_pairs_per_call: int = DEFAULT_MAX_PAIRS_PER_CALL,
) -> np.ndarray:
  """CTC log-likelihoods log p(l | y) of (sample, label) pairs, in one batched call.

  Args:
    log_probs: [B, T, K] per-frame log-probabilities (class 0 is blank).
    lengths: [B] number of real frames per sample.
    sample_idx: [P] the sample each pair scores against.
    labels: [P, L] class ids, right-padded (the padding value does not matter).
    label_lengths: [P] real label lengths (>= 1).
    max_pairs_per_call: pairs beyond this are scored in further calls (bounds memory).

  Returns:
    [P] float64 log p(labels[p] | sample sample_idx[p]); -inf where the label needs more frames
    than the sample has.
  """
  log_probs = np.asarray(log_probs, np.float32)
  batch, frames, _ = log_probs.shape
  lengths = np.asarray(lengths).reshape(batch).astype(np.int64)
  sample_idx = np.asarray(sample_idx, np.int64).reshape(-1)
  labels = np.asarray(labels, np.int32)
  label_lengths = np.asarray(label_lengths, np.int64).reshape(-1)
  num_pairs = sample_idx.shape[0]
  out = np.full(num_pairs, -np.inf)
  if num_pairs == 0:
    return out

  positions = np.arange(labels.shape[1])
  in_label = positions[None, :] < label_lengths[:, None]
  repeats = np.sum(in_label[:, 1:] & (labels[:, 1:] == labels[:, :-1]), axis=1)
  feasible = label_lengths + repeats <= lengths[sample_idx]
  todo = np.flatnonzero(feasible)
  if todo.size == 0:
    return out

  logit_paddings = (np.arange(frames)[None, :] >= lengths[:, None]).astype(np.float32)
  # Padding frames may hold anything (even NaN), and ctc_loss masks them by multiplying with 0,
  # so they are zeroed; -inf log-probabilities are floored for the same reason.
  clean = np.where(logit_paddings[:, :, None] > 0, 0.0, np.maximum(log_probs, _LOG_PROB_FLOOR))
  clean = jnp.asarray(clean.astype(np.float32))
  paddings = jnp.asarray(logit_paddings)
  width = _round_up(int(label_lengths[todo].max()), _LABEL_BUCKET)
  chunk = max(1, int(max_pairs_per_call))
  for start in range(0, todo.size, chunk):
    part = todo[start : start + chunk]
    size = _pair_bucket(part.size)
    idx = np.zeros(size, np.int32)
    idx[: part.size] = sample_idx[part]
    lab = np.zeros((size, width), np.int32)
    take = min(width, labels.shape[1])
    lab[: part.size, :take] = labels[part, :take]
    lab_pad = np.ones((size, width), np.float32)  # Dummy pairs: empty labels, ignored.
    lab_pad[: part.size] = np.arange(width)[None, :] >= label_lengths[part, None]
    scores = _pair_log_likelihoods(clean, paddings, jnp.asarray(idx), jnp.asarray(lab),
                                   jnp.asarray(lab_pad))
    out[part] = np.asarray(scores, np.float64)[: part.size]
  return out


def _best_candidates(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    candidates: Sequence[tuple[_EncodedLexicon, np.ndarray]],
    max_pairs_per_call: int,
) -> list[tuple[str, float]]:
  """Scores each sample's candidates in one batch and returns the most probable per sample.

  Args:
    log_probs: [B, T, K] per-frame log-probabilities.
    lengths: [B] number of real frames per sample.
    candidates: per sample, its lexicon and the indices [C_b] (C_b >= 1) of its candidate
      words in that lexicon, in tie-breaking order.
    max_pairs_per_call: see `score_candidates`.

  Returns:
    Per sample, (word, log p(word | y)).
  """
  counts = [len(idx) for _, idx in candidates]
  width = max(lex.labels.shape[1] for lex, _ in candidates)
  labels = np.zeros((sum(counts), width), np.int32)
  label_lengths = np.zeros(sum(counts), np.int64)
  start = 0
  for lex, idx in candidates:
    stop = start + len(idx)
    labels[start:stop, : lex.labels.shape[1]] = lex.labels[idx]
    label_lengths[start:stop] = lex.label_lengths[idx]
    start = stop
  sample_idx = np.repeat(np.arange(len(candidates)), counts)
  scores = score_candidates(
      log_probs, lengths, sample_idx, labels, label_lengths,
      max_pairs_per_call=max_pairs_per_call,
  )
  results = []
  start = 0
  for (lex, idx), count in zip(candidates, counts):
    sample_scores = scores[start : start + count]
    best = int(np.argmax(sample_scores))  # First of ties; 0 when all are -inf.
    results.append((lex.words[idx[best]], float(sample_scores[best])))
    start += count
  return results


def _check_batch(log_probs, lengths, charset) -> tuple[np.ndarray, np.ndarray]:
  """beam.check_inputs plus the charset's class count; log_probs as float32."""
  log_probs, lengths = beam.check_inputs(np.asarray(log_probs, np.float32), lengths)
  if charset.num_classes != log_probs.shape[2]:
    raise ValueError(
        f"the charset has {charset.num_classes} classes but log_probs has {log_probs.shape[2]}"
    )
  return log_probs, lengths


class LexiconDecoder:
  """Decodes to the most probable word of a fixed lexicon (CRNN paper, Sec. 2.3.2).

  Attributes:
    charset: the charset of the model outputs.
    words: the lexicon after normalization, with undecodable words and duplicates removed.
    num_dropped: how many input words the charset cannot encode (they were dropped).
    delta: the edit-distance radius of the candidate neighbourhood around the greedy output.
    exhaustive: whether every word is scored (lexicon no larger than `exhaustive_below`).
  """

  def __init__(
      self,
      lexicon: Sequence[str],
      charset,
      *,
      delta: int = DEFAULT_DELTA,
      exhaustive_below: int = DEFAULT_EXHAUSTIVE_BELOW,
      max_pairs_per_call: int = DEFAULT_MAX_PAIRS_PER_CALL,
  ):
    """Prepares the lexicon.

    Args:
      lexicon: the words (e.g. from `load_lexicon`).
      charset: a `crnn_jax.text.charset.Charset`.
      delta: candidates are the words within this edit distance of the greedy output.
      exhaustive_below: lexicons with at most this many words are searched exhaustively.
      max_pairs_per_call: see `score_candidates`.

    Raises:
      ValueError: no word of the lexicon can be encoded, or delta < 0.
    """
    if delta < 0:
      raise ValueError(f"delta must be >= 0, got {delta}")
    self.charset = charset
    self._lexicon = _encode_lexicon(lexicon, charset)
    self.words = self._lexicon.words
    self.num_dropped = self._lexicon.num_dropped
    self.delta = int(delta)
    self.exhaustive = len(self.words) <= exhaustive_below
    self._max_pairs = max_pairs_per_call
    self._index = {w: i for i, w in enumerate(self.words)}
    self._all = np.arange(len(self.words))
    self._tree = None if self.exhaustive else BKTree(self.words)

  def __len__(self) -> int:
    return len(self.words)

  def candidates(self, text: str) -> list[str]:
    """The words scored for a greedy output `text`, in tie-breaking order.

    Args:
      text: the best-path transcription l*.

    Returns:
      Every word in exhaustive mode; otherwise the words within `delta` edits of `text`, or,
      if there are none, the words at the smallest edit distance from it; sorted by
      (edit distance, word).
    """
    if self.exhaustive:
      return list(self.words)
    found = self._tree.query(text, self.delta) or self._tree.nearest(text)
    return [w for _, w in found]

  def decode(self, log_probs: np.ndarray, lengths: np.ndarray) -> list[tuple[str, float]]:
    """The most probable lexicon word per sample.

    Args:
      log_probs: [B, T, K] per-frame log-probabilities (class 0 is blank).
      lengths: [B] number of real frames per sample; later frames are ignored.

    Returns:
      Per sample, (word, log p(word | y)); log p is -inf when no candidate fits in the frames
      (the word is then the first candidate).
    """
    log_probs, lengths = _check_batch(log_probs, lengths, self.charset)
    if self.exhaustive:
      cands = [(self._lexicon, self._all)] * log_probs.shape[0]
    else:
      cands = []
      for ids in _best_path_ids(log_probs, lengths):
        words = self.candidates(self.charset.decode(ids))
        cands.append((self._lexicon, np.array([self._index[w] for w in words])))
    if not cands:
      return []
    return _best_candidates(log_probs, lengths, cands, self._max_pairs)


def decode_with_lexicons(
    log_probs: np.ndarray,
    lengths: np.ndarray,
    lexicons: Sequence[Sequence[str]],
    charset,
    *,
    delta: int = DEFAULT_DELTA,
    exhaustive_below: int = DEFAULT_EXHAUSTIVE_BELOW,
    max_pairs_per_call: int = DEFAULT_MAX_PAIRS_PER_CALL,
) -> list[tuple[str, float]]:
  """Lexicon decoding where every image has its own lexicon (e.g. IIIT5k's 50-word lists).

  Each lexicon is normalized and filtered like `LexiconDecoder`'s. Lexicons of at most
  `exhaustive_below` words are searched exhaustively; for larger ones the candidates are the
  words within `delta` edits of the greedy output (by a linear scan, as each lexicon is used
  once), or the nearest words when there are none. All samples are scored in one batch.

  Args:
    log_probs: [B, T, K] per-frame log-probabilities (class 0 is blank).
    lengths: [B] number of real frames per sample.
    lexicons: B word lists, one per sample.
    charset: a `crnn_jax.text.charset.Charset`.
    delta: neighbourhood radius for lexicons larger than `exhaustive_below`.
    exhaustive_below: lexicons with at most this many words are searched exhaustively.
    max_pairs_per_call: see `score_candidates`.

  Returns:
    Per sample, (word, log p(word | y)).

  Raises:
    ValueError: a lexicon is empty (after dropping words the charset cannot encode), or the
      number of lexicons is not B.
  """
  log_probs, lengths = _check_batch(log_probs, lengths, charset)
  if isinstance(lexicons, str) or len(lexicons) != log_probs.shape[0]:
    raise ValueError(f"expected {log_probs.shape[0]} lexicons (one per sample)")
  if delta < 0:
    raise ValueError(f"delta must be >= 0, got {delta}")
  greedy = None
  cands = []
  for b, words in enumerate(lexicons):
    lex = _encode_lexicon(words, charset, what=f"the lexicon of sample {b}")
    if len(lex.words) <= exhaustive_below:
      cands.append((lex, np.arange(len(lex.words))))
      continue
    if greedy is None:
      greedy = [charset.decode(ids) for ids in _best_path_ids(log_probs, lengths)]
    dist = np.array([editdistance.eval(greedy[b], w) for w in lex.words])
    radius = delta if dist.min() <= delta else dist.min()
    chosen = np.flatnonzero(dist <= radius)
    chosen = sorted(chosen.tolist(), key=lambda i: (dist[i], lex.words[i]))
    cands.append((lex, np.array(chosen)))
  if not cands:
    return []
  return _best_candidates(log_probs, lengths, cands, max_pairs_per_call)
