"""Tests for crnn_jax.decoding.lexicon against brute-force CTC probabilities."""

import itertools

import editdistance
import numpy as np
import pytest

from crnn_jax.text.charset import Charset
from crnn_jax.decoding.lexicon import (
    LexiconDecoder,
    decode_with_lexicons,
    load_lexicon,
    score_candidates,
)

CHARSET = Charset("abcd")


def _best_path_text(log_probs, length, charset=CHARSET):
  path = np.argmax(log_probs[:length], axis=-1).tolist()
  return charset.decode(k for i, k in enumerate(path) if i == 0 or path[i - 1] != k)


def _ctc_log_prob(log_probs, label):
  """Independent CTC forward pass in float64: log p(label | log_probs [T, K])."""
  ext = [0]
  for k in label:
    ext += [k, 0]
  frames, states = log_probs.shape[0], len(ext)
  if frames == 0:
    return 0.0 if not label else -np.inf
  alpha = np.full(states, -np.inf)
  alpha[0] = log_probs[0, 0]
  if states > 1:
    alpha[1] = log_probs[0, ext[1]]
  for t in range(1, frames):
    prev = alpha
    alpha = np.full(states, -np.inf)
    for s in range(states):
      total = prev[s]
      if s >= 1:
        total = np.logaddexp(total, prev[s - 1])
      if s >= 2 and ext[s] != 0 and ext[s] != ext[s - 2]:
        total = np.logaddexp(total, prev[s - 2])
      alpha[s] = total + log_probs[t, ext[s]]
  return float(np.logaddexp(alpha[-1], alpha[-2]) if states > 1 else alpha[-1])


def _enumerated_log_prob(log_probs, label):
  """Brute force: sum over all K^T alignments that collapse to `label`."""
  frames, num_classes = log_probs.shape
  total = -np.inf
  for path in itertools.product(range(num_classes), repeat=frames):
    collapsed = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))
    if collapsed == tuple(label):
      total = np.logaddexp(total, log_probs[np.arange(frames), path].sum())
  return float(total)


def _random_log_probs(rng, shape, scale=2.0):
  logits = rng.normal(size=shape) * scale
  logits[..., 0] += 1.0  # Blank-heavy, like a trained CTC model.
  return (logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))).astype(np.float32)


def _random_lexicon(rng, size, alphabet="abcd", max_len=5):
  words = set()
  while len(words) < size:
    words.add("".join(rng.choice(list(alphabet), size=rng.integers(1, max_len + 1))))
  return sorted(words, key=lambda _: rng.random())


def _check_choice(chosen, score, candidates, truth):
  """`chosen` must be the argmax of the brute-force scores `truth` over `candidates`."""
  assert chosen in candidates
  best = max(truth[w] for w in candidates)
  if best == -np.inf:
    assert score == -np.inf and chosen == candidates[0]
    return
  assert score == pytest.approx(truth[chosen], abs=1e-4)
  assert truth[chosen] >= best - 1e-4
  runner_up = max((truth[w] for w in candidates if w != chosen), default=-np.inf)
  if best - runner_up > 1e-4:
    assert truth[chosen] == best


def _neighbourhood(text, words, delta):
  dists = sorted((editdistance.eval(text, w), w) for w in words)
  within = [w for d, w in dists if d <= delta]
  return within or [w for d, w in dists if d == dists[0][0]]


@pytest.mark.parametrize("seed", range(4))
def test_reference_forward_matches_enumeration(seed):
  rng = np.random.default_rng(seed)
  log_probs = _random_log_probs(rng, (5, 4)).astype(np.float64)
  for label in [(), (1,), (2, 2), (1, 2, 3), (3, 1, 3), (1, 1, 1), (1, 2, 1, 2, 1, 2)]:
    assert _ctc_log_prob(log_probs, label) == pytest.approx(
        _enumerated_log_prob(log_probs, label), abs=1e-9)


def test_scores_match_enumeration():
  rng = np.random.default_rng(7)
  log_probs = _random_log_probs(rng, (2, 6, 5))
  lengths = np.array([6, 4])
  labels = [(1,), (2, 2), (1, 2, 3), (4, 4, 4), (1, 2, 3, 4), (3,), (1, 1, 2), (2, 2, 2)]
  sample_idx = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  padded = np.zeros((len(labels), 4), np.int32)
  for i, label in enumerate(labels):
    padded[i, : len(label)] = label
  scores = score_candidates(log_probs, lengths, sample_idx, padded, [len(l) for l in labels])
  for b, label, score in zip(sample_idx, labels, scores):
    truth = _enumerated_log_prob(log_probs[b, : lengths[b]].astype(np.float64), label)
    if truth == -np.inf:
      assert score == -np.inf
    else:
      assert score == pytest.approx(truth, abs=1e-4)
  assert scores[3] > -np.inf  # "ddd" needs 5 frames (d-d-d) and has 6.
  assert scores[7] == -np.inf  # "bbb" needs 5 frames and has 4.


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("delta", [0, 1, 3])
def test_neighbourhood_decoding_equals_brute_force(seed, delta):
  rng = np.random.default_rng(100 + seed)
  batch, frames = 6, int(rng.integers(3, 11))
  log_probs = _random_log_probs(rng, (batch, frames, CHARSET.num_classes), scale=2.5)
  lengths = rng.integers(0, frames + 1, size=batch)
  lengths[0] = frames
  words = _random_lexicon(rng, 40)
  decoder = LexiconDecoder(words, CHARSET, delta=delta, exhaustive_below=0)
  assert not decoder.exhaustive
  results = decoder.decode(log_probs, lengths)
  assert len(results) == batch
  for b, (word, score) in enumerate(results):
    lp = log_probs[b, : lengths[b]].astype(np.float64)
    candidates = _neighbourhood(_best_path_text(log_probs[b], lengths[b]), words, delta)
    assert decoder.candidates(_best_path_text(log_probs[b], lengths[b])) == candidates
    truth = {w: _ctc_log_prob(lp, CHARSET.encode(w)) for w in candidates}
    _check_choice(word, score, candidates, truth)


@pytest.mark.parametrize("seed", range(8))
def test_exhaustive_decoding_equals_brute_force(seed):
  rng = np.random.default_rng(200 + seed)
  batch, frames = 5, int(rng.integers(2, 9))
  log_probs = _random_log_probs(rng, (batch, frames, CHARSET.num_classes))
  lengths = rng.integers(1, frames + 1, size=batch)
  words = _random_lexicon(rng, int(rng.integers(1, 30)))
  decoder = LexiconDecoder(words, CHARSET)
  assert decoder.exhaustive and decoder.words == words
  for b, (word, score) in enumerate(decoder.decode(log_probs, lengths)):
    lp = log_probs[b, : lengths[b]].astype(np.float64)
    truth = {w: _ctc_log_prob(lp, CHARSET.encode(w)) for w in words}
    _check_choice(word, score, words, truth)


def test_exhaustive_mode_against_enumeration():
  rng = np.random.default_rng(5)
  log_probs = _random_log_probs(rng, (3, 5, 4))
  charset = Charset("abc")
  words = ["a", "b", "c", "ab", "ba", "aa", "abc", "cab", "aaa", "abca"]
  results = LexiconDecoder(words, charset).decode(log_probs, np.array([5, 5, 3]))
  for b, (word, score) in enumerate(results):
    length = [5, 5, 3][b]
    lp = log_probs[b, :length].astype(np.float64)
    truth = {w: _enumerated_log_prob(lp, charset.encode(w)) for w in words}
    _check_choice(word, score, words, truth)


def test_finds_word_that_best_path_misses():
  # Best path is "" (blank wins every frame) but "a" has total probability 0.688.
  log_probs = np.log(np.array([[[0.6, 0.4, 1e-9, 1e-9, 1e-9]] * 3], np.float32))
  word, score = LexiconDecoder(["c", "bad", "a"], CHARSET).decode(log_probs, np.array([3]))[0]
  assert word == "a" and score == pytest.approx(np.log(0.688), abs=1e-4)


def test_impossible_candidates_get_minus_inf():
  log_probs = _random_log_probs(np.random.default_rng(0), (2, 4, 5))
  decoder = LexiconDecoder(["aa", "abcd"], CHARSET)
  results = decoder.decode(log_probs, np.array([2, 3]))
  assert results[0] == ("aa", -np.inf)  # "aa" needs 3 frames, "abcd" 4.
  assert results[1][0] == "aa"
  assert results[1][1] == pytest.approx(
      _ctc_log_prob(log_probs[1, :3].astype(np.float64), [1, 1]), abs=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_padding_frames_are_ignored(seed):
  rng = np.random.default_rng(300 + seed)
  log_probs = _random_log_probs(rng, (4, 6, 5))
  lengths = np.array([6, 4, 2, 0])
  words = _random_lexicon(rng, 20)
  decoders = [LexiconDecoder(words, CHARSET), LexiconDecoder(words, CHARSET, exhaustive_below=0)]
  for decoder in decoders:
    expected = decoder.decode(log_probs, lengths)
    padded = np.concatenate([log_probs, np.zeros((4, 3, 5), np.float32)], axis=1)
    for b in range(4):
      padded[b, lengths[b]:] = rng.normal(size=(9 - lengths[b], 5)) * 40
    padded[3, 0, 2] = np.nan
    padded[2, 5, 0] = -np.inf
    got = decoder.decode(padded, lengths)
    assert [w for w, _ in got] == [w for w, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)


def test_per_image_lexicons():
  rng = np.random.default_rng(11)
  batch, frames = 6, 8
  log_probs = _random_log_probs(rng, (batch, frames, CHARSET.num_classes))
  lengths = rng.integers(2, frames + 1, size=batch)
  lexicons = [_random_lexicon(rng, int(rng.integers(1, 50))) for _ in range(batch)]
  lexicons[2] = lexicons[2] + ["zzz", "Q"]  # Dropped: outside the charset.
  for exhaustive_below, delta in [(1000, 3), (10, 1)]:
    results = decode_with_lexicons(log_probs, lengths, lexicons, CHARSET, delta=delta,
                                   exhaustive_below=exhaustive_below)
    for b, (word, score) in enumerate(results):
      words = [w for w in lexicons[b] if CHARSET.can_encode(w)]
      candidates = words
      if len(words) > exhaustive_below:
        candidates = _neighbourhood(_best_path_text(log_probs[b], lengths[b]), words, delta)
      lp = log_probs[b, : lengths[b]].astype(np.float64)
      truth = {w: _ctc_log_prob(lp, CHARSET.encode(w)) for w in candidates}
      _check_choice(word, score, candidates, truth)
  with pytest.raises(ValueError, match="sample 1"):
    decode_with_lexicons(log_probs[:2], lengths[:2], [["ab"], ["xyz"]], CHARSET)
  with pytest.raises(ValueError):
    decode_with_lexicons(log_probs[:2], lengths[:2], [["ab"]], CHARSET)


def test_unencodable_words_are_dropped_and_counted():
  charset = Charset("abc", fold_case=True)
  decoder = LexiconDecoder(["ab", "AB", "abz", "Xyz", "  ", "Ca", "ab", "é"], charset)
  assert decoder.words == ["ab", "ca"]
  assert decoder.num_dropped == 3
  log_probs = np.log(np.array([[[0.1, 0.1, 0.1, 0.7]] * 2 + [[0.1, 0.7, 0.1, 0.1]]], np.float32))
  assert decoder.decode(log_probs, np.array([3]))[0][0] == "ca"
  with pytest.raises(ValueError, match="empty"):
    LexiconDecoder([], charset)
  with pytest.raises(ValueError, match="2 words outside"):
    LexiconDecoder(["xyz", "Q"], charset)
  with pytest.raises(TypeError):
    LexiconDecoder("abc", charset)


def test_wrong_charset_size_is_rejected():
  with pytest.raises(ValueError):
    LexiconDecoder(["ab"], Charset("abc")).decode(np.zeros((1, 3, 5), np.float32), [3])


def test_load_lexicon(tmp_path):
  path = tmp_path / "words.txt"
  path.write_bytes("\ufeffhello\n  world \n\n\tcafé\nhello\r\nZoo\n".encode("utf-8"))
  assert load_lexicon(path) == ["hello", "world", "café", "Zoo"]
  with pytest.raises(FileNotFoundError, match="missing.txt"):
    load_lexicon(tmp_path / "missing.txt")


def test_large_charset():
  # CJK-sized output layer: scoring must not depend on a [pairs, T, K] table.
  charset = Charset("".join(chr(0x4E00 + i) for i in range(3000)))
  rng = np.random.default_rng(21)
  log_probs = _random_log_probs(rng, (4, 10, charset.num_classes), scale=4.0)
  lengths = np.array([10, 8, 6, 10])
  words = ["".join(charset.chars[k] for k in rng.integers(0, 40, size=rng.integers(1, 5)))
           for _ in range(60)]
  words = list(dict.fromkeys(words + [charset.chars[7] * 2 + charset.chars[3]]))
  decoder = LexiconDecoder(words, charset)
  for b, (word, score) in enumerate(decoder.decode(log_probs, lengths)):
    lp = log_probs[b, : lengths[b]].astype(np.float64)
    truth = {w: _ctc_log_prob(lp, charset.encode(w)) for w in words}
    _check_choice(word, score, words, truth)
