"""A character n-gram language model of words, to rescore CTC hypotheses (`Decoder('lm')`).

The CTC model reads each frame on its own evidence, up to what its BiLSTM learned of spelling;
on blurred or low-resolution photographs it confuses single letters (`CFNTER`, `Restauranr`).
A prior over how words are spelled, learned from a word list, picks the right one of the beam
search's n best readings in many of those cases. The model here works on any string (it is
open-vocabulary, not a lexicon: nothing restricts the output to listed words):

  log P(w) = sum_i log P(c_i | c_{i-n+1} .. c_{i-1})

over the word's characters and an end symbol, with n-1 start symbols before it, estimated
with interpolated Witten-Bell smoothing (Witten and Bell 1991; Chen and Goodman 1998, Sec. 2.5):

  P(c | h) = (N(h c) + U(h) P(c | h')) / (N(h) + U(h))

where N counts (weighted) occurrences, U(h) is the number of distinct characters seen after the
context h and h' is h without its first character; the unigram level is add-one smoothed over
the alphabet and the end symbol. Strings that are not words at all (codes, numbers, random
letters) must not be forced into words, so `score` mixes the model with a uniform model of
strings (each symbol 1/|alphabet + end|):

  score(w) = log((1 - fallback) P(w) + fallback |A|^-(len(w) + 1))

Text is scored in the model's alphabet: lower-cased and stripped to [0-9a-z] (`normalize`), as
the standard evaluation protocol compares words; punctuation and letters outside that alphabet
neither help nor hurt a hypothesis.

Storage and queries are vectorized: the n-grams of every order are int64 keys (6 bits per
symbol) in sorted arrays with their interpolated probabilities, and the backoff weights
U(h) / (N(h) + U(h)) of their contexts, so a batch of strings is scored with `np.searchsorted`
(an English model of 100,000 words and order 6: 437,000 n-grams of orders 2-6 in 10 MB, built in
about a second). No maintained PyPI package builds and queries such a model offline (KenLM's
Python module only queries; its builder is a separate C++ program; nltk.lm is far too slow to
score beams), hence this module.

`english()` builds the default model from wordfreq's English word list (frequencies from
subtitles, Wikipedia, web text and books; PyPI `wordfreq`, offline): the 100,000 most frequent
words, each weighted by the square root of its frequency (occurrences per million words).

Version. The word list is data of the installed wordfreq, whose version crnn-jax does not pin,
so what the lm decoder reads could change with an upgrade. `english()` therefore checks the
list it builds from against `ENGLISH_WORDLIST_SHA256` (`wordlist_sha256`: SHA-256 of the sorted
`word<TAB>weight` lines, weights to 6 significant digits), the list the decoder's weights were
tuned and its confidences calibrated with (`ENGLISH_WORDLIST_SOURCE`), and warns once
(`LanguageModelVersionWarning`) when it differs. The model cards of the shipped models
(crnn_jax/weights/NAME/MODEL_CARD.md) record the same hash.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from typing import Iterable, Sequence
import warnings

import numpy as np

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_BITS = 6  # Per symbol in a key of the English alphabet: ids 1..39 (0 is never used, so keys
# of different length differ); larger alphabets take more bits (`_symbol_bits`).
_BOS = 1
_EOS = 2
_FIRST_CHAR = 3
NUM_PREDICTED = len(ALPHABET) + 1  # Characters and the end symbol.
MAX_ORDER = 10  # 10 symbols x 6 bits fit in an int64.
_NOT_ALPHABET = re.compile(f"[^{ALPHABET}]")

DEFAULT_TOP_N = 100_000
DEFAULT_ORDER = 6

# The English word list (`english_words()` with DEFAULT_TOP_N) that the lm decoder was tuned
# and calibrated with, and its hash (`wordlist_sha256`); see the module docstring.
ENGLISH_WORDLIST_SOURCE = "wordfreq 3.1.1, language 'en', the 100,000 most frequent words"
ENGLISH_WORDLIST_SHA256 = "4e30045524be19954d15c357484633c193dade4bc68a1c8e90eac42219b2e104"


class LanguageModelVersionWarning(UserWarning):
  """The installed wordfreq yields another English word list than the recorded one."""


_warned_about_version = False


def normalize(text: str) -> str:
  """The model's view of a string: lower-cased, only [0-9a-z] kept."""
  return _NOT_ALPHABET.sub("", text.lower())


def _symbol_bits(alphabet_size: int) -> int:
  """Bits per symbol of a key: ids 1 .. alphabet_size + 2 (start, end, characters)."""
  return max(_BITS, int(alphabet_size + _FIRST_CHAR - 1).bit_length())


def max_order(alphabet: str) -> int:
  """The longest n-gram whose key fits an int64 (63 bits) for `alphabet`."""
  return min(MAX_ORDER, 63 // _symbol_bits(len(alphabet)))


def _windows(sequences: np.ndarray, k: int, end: int, bits: int) -> np.ndarray:
  """Keys of the k-grams ending at positions [k-1, end) of each row of `sequences` [W, L]."""
  keys = np.zeros((sequences.shape[0], end - (k - 1)), np.int64)
  for j in range(k):
    keys = (keys << bits) | sequences[:, j:end - (k - 1) + j]
  return keys


class CharNgramLM:
  """An interpolated Witten-Bell character n-gram model of words (see the module docstring).

  Attributes:
    order: n (the longest n-gram; contexts have n - 1 symbols).
    fallback: the weight of the uniform string model in `score`.
    num_words: the distinct (normalized) words it was built from.
    alphabet: the characters it models; others are removed from a text before scoring.
    fold_case: whether texts are lower-cased first.
  """

  def __init__(self, words: Iterable[tuple[str, float]] | Iterable[str], *,
               order: int = DEFAULT_ORDER, fallback: float = 0.1, alphabet: str = ALPHABET,
               fold_case: bool | None = None):
    """Estimates the model.

    Args:
      words: words, or (word, weight) pairs (weight > 0, e.g. a frequency); each is
        normalized (`normalize`), words that normalize to nothing are dropped and repeated ones
        add their weights.
      order: n, in [1, max_order(alphabet)] (10 for the English alphabet, 5 for the 3,870
        characters of zh_en).
      fallback: in [0, 1): the uniform model's share in `score`.
      alphabet: the modelled characters (default: English, [0-9a-z]).
      fold_case: lower-case texts first (default: for the English alphabet only).

    Raises:
      ValueError: a bad order, fallback, alphabet or weight, or no word left.
    """
    alphabet = "".join(dict.fromkeys(alphabet))
    if not alphabet:
      raise ValueError("the alphabet is empty")
    if not 1 <= order <= max_order(alphabet):
      raise ValueError(f"order must lie in [1, {max_order(alphabet)}] for an alphabet of "
                       f"{len(alphabet)} characters, got {order}")
    if not 0.0 <= fallback < 1.0:
      raise ValueError(f"fallback must lie in [0, 1), got {fallback}")
    self.order = int(order)
    self.fallback = float(fallback)
    self.alphabet = alphabet
    self.fold_case = alphabet == ALPHABET if fold_case is None else bool(fold_case)
    self._bits = _symbol_bits(len(alphabet))
    self._char_ids = {c: i + _FIRST_CHAR for i, c in enumerate(alphabet)}
    self._num_predicted = len(alphabet) + 1
    weights: dict[str, float] = {}
    for item in words:
      word, weight = (item, 1.0) if isinstance(item, str) else item
      if not weight > 0:
        raise ValueError(f"word {word!r} has weight {weight}; weights must be > 0")
      word = self.normalize(word)
      if word:
        weights[word] = weights.get(word, 0.0) + float(weight)
    if not weights:
      raise ValueError("no words to build a language model from (none has a character in "
                       f"{alphabet[:40]!r})")
    self.num_words = len(weights)
    pad = self.order - 1
    longest = max(map(len, weights))
    # Row per word: n-1 start symbols, the characters, the end symbol, zero padding.
    sequences = np.zeros((len(weights), pad + longest + 1), np.int64)
    valid = np.zeros(sequences.shape, bool)
    sequences[:, :pad] = _BOS
    for row, word in enumerate(weights):
      sequences[row, pad:pad + len(word)] = self._ids(word)
      sequences[row, pad + len(word)] = _EOS
      valid[row, pad:pad + len(word) + 1] = True
    word_weights = np.fromiter(weights.values(), np.float64, len(weights))
    # Unigrams: add-one over the characters and the end symbol.
    unigram = np.bincount(sequences[valid], np.broadcast_to(word_weights[:, None],
                                                            valid.shape)[valid],
                          minlength=_FIRST_CHAR + len(alphabet))
    unigram[_BOS] = 0.0
    unigram[0] = 0.0
    probs = (unigram + 1.0) / (unigram.sum() + self._num_predicted)
    probs[[0, _BOS]] = 0.0
    self._unigram = probs
    self._keys: list[np.ndarray] = [np.zeros(0, np.int64)]  # By order - 1; order 1 is dense.
    self._probs: list[np.ndarray] = [np.zeros(0)]
    self._context_keys: list[np.ndarray] = [np.zeros(0, np.int64)]
    self._backoff: list[np.ndarray] = [np.zeros(0)]
    end = sequences.shape[1]
    for k in range(2, self.order + 1):
      # The k-grams predicting each real position (positions >= pad hold characters or end).
      keys = _windows(sequences, k, end, self._bits)[:, pad - (k - 1):]
      mask = valid[:, pad:]
      keys, inverse = np.unique(keys[mask], return_inverse=True)
      counts = np.bincount(inverse, np.broadcast_to(word_weights[:, None], mask.shape)[mask])
      contexts, context_index = np.unique(keys >> self._bits, return_inverse=True)
      totals = np.bincount(context_index, counts)
      distinct = np.bincount(context_index).astype(np.float64)
      lower = self._lookup(k - 1, keys & ((1 << (self._bits * (k - 1))) - 1))
      self._keys.append(keys)
      self._probs.append((counts + distinct[context_index] * lower)
                         / (totals + distinct)[context_index])
      self._context_keys.append(contexts)
      self._backoff.append(distinct / (totals + distinct))

  def normalize(self, text: str) -> str:
    """The model's view of a string: lower-cased (with fold_case), only its alphabet kept."""
    if self.fold_case:
      text = text.lower()
    if self.alphabet == ALPHABET:
      return _NOT_ALPHABET.sub("", text)
    return "".join(c for c in text if c in self._char_ids)

  def _ids(self, word: str) -> list[int]:
    return [self._char_ids[c] for c in word]

  def _lookup(self, k: int, keys: np.ndarray) -> np.ndarray:
    """P(c | h) of k-gram keys (h: k - 1 symbols) that must all have been seen."""
    if k == 1:
      return self._unigram[keys]
    index = np.searchsorted(self._keys[k - 1], keys)
    return self._probs[k - 1][index]

  @property
  def num_ngrams(self) -> int:
    """Stored n-grams of order >= 2."""
    return sum(len(k) for k in self._keys)

  def conditional(self, contexts: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """P(symbol | context) for arrays of full contexts.

    Args:
      contexts: [N, order - 1] symbol ids (start symbols where the word has fewer characters).
      symbols: [N] ids of the predicted symbols (characters or the end symbol).

    Returns:
      [N] probabilities.
    """
    contexts = np.asarray(contexts, np.int64).reshape(len(symbols), self.order - 1)
    symbols = np.asarray(symbols, np.int64)
    result = self._unigram[symbols].copy()
    # From order 2 up: where the k-gram was seen its interpolated probability replaces the
    # lower-order estimate; where only its context was, the estimate is scaled by the backoff.
    for k in range(2, self.order + 1):
      context = np.zeros(len(symbols), np.int64)
      for j in range(self.order - k, self.order - 1):
        context = (context << self._bits) | contexts[:, j]
      key = (context << self._bits) | symbols
      keys, probs = self._keys[k - 1], self._probs[k - 1]
      index = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
      seen = keys[index] == key if len(keys) else np.zeros(len(key), bool)
      contexts_k = self._context_keys[k - 1]
      cindex = np.minimum(np.searchsorted(contexts_k, context), max(len(contexts_k) - 1, 0))
      context_seen = contexts_k[cindex] == context if len(contexts_k) else seen
      result = np.where(seen, probs[index] if len(keys) else 0.0,
                        np.where(context_seen, self._backoff[k - 1][cindex] * result
                                 if len(contexts_k) else result, result))
    return result

  def log_prob(self, texts: Sequence[str]) -> np.ndarray:
    """log P of each text under the n-gram model alone (texts normalized first).

    Returns:
      [len(texts)] natural-log probabilities (the empty string: P(end | start)).
    """
    return self._log_prob_normalized([self.normalize(t) for t in texts])

  def _log_prob_normalized(self, words: Sequence[str]) -> np.ndarray:
    """`log_prob` of strings already normalized."""
    pad = self.order - 1
    contexts, symbols, owner = [], [], []
    for n, word in enumerate(words):
      seq = [_BOS] * pad + self._ids(word) + [_EOS]
      for i in range(pad, len(seq)):
        contexts.append(seq[i - pad:i])
        symbols.append(seq[i])
        owner.append(n)
    if not words:
      return np.zeros(0)
    probs = self.conditional(np.asarray(contexts, np.int64).reshape(len(symbols), pad),
                             np.asarray(symbols, np.int64))
    return np.bincount(np.asarray(owner), np.log(probs), minlength=len(words))

  def score(self, texts: Sequence[str]) -> np.ndarray:
    """log of the mixture (1 - fallback) P(text) + fallback |A|^-(len + 1) (see the module
    docstring), texts normalized first.

    Returns:
      [len(texts)] natural-log scores.
    """
    words = [self.normalize(t) for t in texts]
    model = self._log_prob_normalized(words)
    if self.fallback == 0.0:
      return model
    lengths = np.array([len(w) for w in words], np.float64)
    uniform = math.log(self.fallback) - (lengths + 1) * math.log(self._num_predicted)
    return np.logaddexp(math.log1p(-self.fallback) + model, uniform)


def english_words(top_n: int = DEFAULT_TOP_N) -> list[tuple[str, float]]:
  """wordfreq's `top_n` most frequent English words, each with its weight: the square root of
  its frequency per million words (1e-3 for a word without a frequency).

  Raises:
    ImportError: wordfreq is not installed (it is a dependency of crnn-jax).
  """
  import wordfreq  # pylint: disable=import-outside-toplevel
  frequencies = wordfreq.get_frequency_dict("en")
  # Witten-Bell smoothing depends on the scale of the counts (against the number of distinct
  # continuations): weights are sqrt(occurrences per million words), 224 for 'the', about 0.3
  # for the 100,000th word.
  return [(w, math.sqrt(frequencies.get(w, 0.0) * 1e6) or 1e-3)
          for w in wordfreq.top_n_list("en", top_n)]


def wordlist_sha256(words: Iterable[tuple[str, float]]) -> str:
  """SHA-256 (hex) of a (word, weight) list: its `word<TAB>weight` lines, sorted, weights
  written to 6 significant digits (so that last-bit differences of the arithmetic do not
  count)."""
  digest = hashlib.sha256()
  for line in sorted(f"{word}\t{weight:.6g}\n" for word, weight in words):
    digest.update(line.encode("utf-8"))
  return digest.hexdigest()


def check_english_words(words: Sequence[tuple[str, float]]) -> bool:
  """Whether `words` (the default English list) is the recorded one; warns once if not."""
  global _warned_about_version  # pylint: disable=global-statement
  found = wordlist_sha256(words)
  if found == ENGLISH_WORDLIST_SHA256:
    return True
  if not _warned_about_version:
    _warned_about_version = True
    try:
      import importlib.metadata  # pylint: disable=import-outside-toplevel
      version = importlib.metadata.version("wordfreq")
    except Exception:  # pylint: disable=broad-except
      version = "unknown"
    warnings.warn(
        f"the lm decoder's language model is not the one crnn-jax was tuned and calibrated "
        f"with: wordfreq {version} gives an English word list with sha256 {found[:16]}..., "
        f"expected {ENGLISH_WORDLIST_SHA256[:16]}... ({ENGLISH_WORDLIST_SOURCE}); readings "
        "and confidences may differ from the published figures (pip install wordfreq==3.1.1 "
        "restores them)", LanguageModelVersionWarning, stacklevel=3)
  return False


@functools.lru_cache(maxsize=4)
def english(top_n: int = DEFAULT_TOP_N, order: int = DEFAULT_ORDER,
            fallback: float = 0.1) -> CharNgramLM:
  """The English model: wordfreq's `top_n` most frequent words, weighted by the square root of
  their frequency per million words (`english_words`).

  Built once per process and argument set (a few seconds). With the default `top_n` the word
  list is checked against the recorded one (`check_english_words`: a warning if it differs).

  Raises:
    ImportError: wordfreq is not installed (it is a dependency of crnn-jax).
  """
  words = english_words(top_n)
  if top_n == DEFAULT_TOP_N:
    check_english_words(words)
  return CharNgramLM(words, order=order, fallback=fallback)


CHINESE_LINES = 200_000
CHINESE_SEED = 20261207  # Not a seed of any training, validation or held-out set.
CHINESE_ORDER = 4
# What `chinese()` is built from, as the zh_en model card records it.
CHINESE_LM_SOURCE = (f"{CHINESE_LINES:,} lines of crnn_jax.synth.text_zh.sample_line (jieba "
                     f"0.42.1's dict.txt, wordfreq 3.1.1), seed {CHINESE_SEED}, order "
                     f"{CHINESE_ORDER}")


@functools.lru_cache(maxsize=2)
def chinese(num_lines: int = CHINESE_LINES, order: int = CHINESE_ORDER,
            fallback: float = 0.1) -> CharNgramLM:
  """A model of mixed Chinese/English/digit lines over the zh_en charset (space aside).

  Chinese text has no spaces between words, so the model sees whole lines, not words:
  `num_lines` lines of `text_zh.sample_line` (jieba's dictionary words by frequency and by its
  square root, uniform level-1 hanzi, English words, numbers, dates, prices, units, codes and
  punctuation, in the default `ZhTextMix` shares), seed CHINESE_SEED, each weighted 1. Built
  once per process (about half a minute on one core).

  Raises:
    ModuleNotFoundError: jieba is not installed (`pip install 'crnn-jax[zh]'`).
  """
  from crnn_jax.text import zh_charset  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth import text_zh  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(CHINESE_SEED)
  lines = [text_zh.sample_line(rng) for _ in range(num_lines)]
  alphabet = "".join(c for c in zh_charset.ZH_EN_CHARS if not c.isspace())
  return CharNgramLM(lines, order=order, fallback=fallback, alphabet=alphabet, fold_case=False)


def is_english(chars: str) -> bool:
  """Whether an alphabet is English: printable ASCII only (`english()` is its model)."""
  return all(" " <= c <= "~" for c in chars)


def model_kind(chars: str) -> str | None:
  """Which language model an alphabet has: 'english' (printable ASCII, `english()`),
  'chinese' (the zh_en charset, `chinese()`) or None."""
  if is_english(chars):
    return "english"
  from crnn_jax.text import zh_charset  # pylint: disable=import-outside-toplevel
  return "chinese" if set(chars) == set(zh_charset.ZH_EN_CHARS) else None


def has_model(chars: str) -> bool:
  """Whether `for_charset(chars)` has a model (without building it)."""
  return model_kind(chars) is not None


def for_charset(chars: str) -> CharNgramLM | None:
  """The default language model of a model's alphabet: `english()` for printable-ASCII
  charsets, `chinese()` for the zh_en charset, None for others."""
  kind = model_kind(chars)
  return english() if kind == "english" else chinese() if kind == "chinese" else None
