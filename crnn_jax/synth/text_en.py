"""English record texts: dictionary words in case forms, digit strings, random strings.

`EnTextSampler` draws what an English synthetic record says (`source_en.SyntheticTextSource`
draws it in a font): its label, and the punctuation and currency signs drawn around it that the
label leaves out (the charset lacks them, as the standard protocol strips them from labels).
Words come from the 'web2' or the 'wordfreq' vocabulary (`words`), kept when a case form of
theirs is drawable with the charset. Every draw takes a `numpy.random.Generator`, so a record's
text is a pure function of its generator's seed.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from crnn_jax.synth import words as words_lib
from crnn_jax.synth.params import RenderParams
from crnn_jax.text.charset import Charset

DIGITS = "0123456789"
# Punctuation drawn around or inside words and numbers by `punctuation_fraction` (only the
# characters the charset lacks: they are drawn, not labelled, so the model learns to pass over
# them as the standard protocol strips them from labels).
WORD_PREFIXES = "\"'(#-*"
WORD_SUFFIXES = ".,!?:;\"')-%*"
NUMBER_SEPARATORS = ".,/-:"
NUMBER_PREFIXES = "$#(+-"
# Currency signs of the prices that `price_fraction` draws (drawn, not labelled, as above);
# '$' is drawn most often, as on the signs of the English-language benchmarks.
CURRENCY_SIGNS = "$$$$\u00a3\u20ac\u00a2"


def case_forms(word: str) -> tuple[str, str, str]:
  """The (lower, upper, capitalized) forms of a lower-case word."""
  return word, word.upper(), word[:1].upper() + word[1:]


def _has_upper(charset: Charset) -> bool:
  return any(c.isupper() for c in charset.chars)


def _word_chars(charset: Charset) -> frozenset[str]:
  """The charset characters that can be drawn in a word: each one encodes on its own.

  Words are ASCII (a-z and their upper-case forms), which NFC normalization and lower-casing
  map character by character, so a word is drawable iff all its characters are in this set.
  """
  return frozenset(c for c in charset.chars if charset.can_encode(c))


def _drawable_words(chars: str, fold_case: bool, min_length: int, max_length: int):
  """A predicate: the word has the right length and at least one case form the charset can
  draw (only the lower-case form without upper-case letters in the charset)."""
  charset = Charset(chars, fold_case=fold_case)
  allowed = _word_chars(charset)
  upper = _has_upper(charset)

  def drawable(word: str) -> bool:
    if not min_length <= len(word) <= max_length:
      return False
    forms = case_forms(word) if upper else (word,)
    return any(allowed.issuperset(form) for form in forms)

  return drawable


@functools.lru_cache(maxsize=16)
def _word_pool(chars: str, fold_case: bool, min_length: int, max_length: int) -> tuple[str, ...]:
  """'web2' dictionary words of the right length with at least one drawable case form."""
  drawable = _drawable_words(chars, fold_case, min_length, max_length)
  return tuple(word for word in words_lib.english_words() if drawable(word))


class _FrequencyPool(NamedTuple):
  words: tuple[str, ...]
  everything: tuple[np.ndarray, np.ndarray]  # (word indices, cumulative sqrt-frequency weights)
  by_length: dict[int, tuple[np.ndarray, np.ndarray]]
  lengths: tuple[int, ...]


@functools.lru_cache(maxsize=16)
def _frequency_pool(chars: str, fold_case: bool, min_length: int,
                    max_length: int) -> _FrequencyPool:
  """The 'wordfreq' vocabulary's drawable words, with sampling tables overall and by length."""
  drawable = _drawable_words(chars, fold_case, min_length, max_length)
  vocabulary, frequencies = words_lib.frequent_words()
  kept, weights = [], []
  for word, frequency in zip(vocabulary, frequencies):
    if drawable(word):
      kept.append(word)
      weights.append(math.sqrt(max(frequency, 1e-12)))
  weights_array = np.asarray(weights, np.float64)
  indices = np.arange(len(kept))
  by_length = {}
  lengths = np.array([len(w) for w in kept])
  for length in sorted(set(lengths.tolist())):
    members = indices[lengths == length]
    by_length[length] = (members, np.cumsum(weights_array[members]))
  return _FrequencyPool(tuple(kept), (indices, np.cumsum(weights_array)), by_length,
                        tuple(sorted(by_length)))


class EnTextSampler:
  """The texts of English records, for a charset and the text fields of `RenderParams`.

  It reads min_length, max_length, word_fraction, digit_fraction, lower_fraction,
  upper_fraction, vocabulary, length_balance, price_fraction and punctuation_fraction.
  """

  def __init__(self, charset: Charset, params: RenderParams = RenderParams()):
    self.charset = charset
    self.params = params
    self._punctuation = "".join(sorted(set(
        WORD_PREFIXES + WORD_SUFFIXES + NUMBER_SEPARATORS + NUMBER_PREFIXES)
        - set(charset.chars)))
    self._has_upper = _has_upper(charset)
    self._word_chars = _word_chars(charset)
    # Random strings never start or end with white space (it would be invisible).
    self._edge_chars = "".join(c for c in charset.chars if not c.isspace()) or charset.chars
    self._has_digits = all(charset.can_encode(c) for c in DIGITS)

  def _pool_key(self) -> tuple[str, bool, int, int]:
    return (self.charset.chars, self.charset.fold_case, self.params.min_length,
            self.params.max_length)

  @property
  def words(self) -> tuple[str, ...]:
    """The dictionary words (lower case) that this sampler can draw."""
    if self.params.vocabulary == "wordfreq":
      return _frequency_pool(*self._pool_key()).words
    return _word_pool(*self._pool_key())

  def _frequent_word(self, rng: np.random.Generator) -> str:
    """A word of the 'wordfreq' vocabulary (see `length_balance`), before case forms."""
    pool = _frequency_pool(*self._pool_key())
    if rng.random() < self.params.length_balance:
      lengths = pool.lengths
      members = pool.by_length[lengths[int(rng.integers(len(lengths)))]]
    else:
      members = pool.everything
    indices, cumulative = members
    if rng.random() < 0.5:
      k = int(rng.integers(len(indices)))
    else:
      k = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")),
              len(indices) - 1)
    return pool.words[indices[k]]

  def word(self, rng: np.random.Generator) -> str:
    """A dictionary word in the case form that lower_fraction / upper_fraction pick (the next
    drawable form when the charset lacks it)."""
    if self.params.vocabulary == "wordfreq":
      word = self._frequent_word(rng)
    else:
      words = self.words
      word = words[rng.integers(len(words))]
    u = rng.random()
    if not self._has_upper:
      return word
    lower, upper, capitalized = case_forms(word)
    if u < self.params.lower_fraction:
      preferred = lower
    elif u < self.params.lower_fraction + self.params.upper_fraction:
      preferred = upper
    else:
      preferred = capitalized
    for form in (preferred, lower, capitalized, upper):
      if self._word_chars.issuperset(form):
        return form
    raise AssertionError(f"word {word!r} has no drawable form")  # Excluded by the pools.

  def random_string(self, rng: np.random.Generator, chars: str | None = None) -> str:
    """min_length..max_length characters of `chars` (default: the charset), no edge spaces."""
    length = int(rng.integers(self.params.min_length, self.params.max_length + 1))
    chars = chars or self.charset.chars
    picked = [chars[i] for i in rng.integers(len(chars), size=length)]
    edges = self._edge_chars
    picked[0] = edges[rng.integers(len(edges))] if picked[0].isspace() else picked[0]
    picked[-1] = edges[rng.integers(len(edges))] if picked[-1].isspace() else picked[-1]
    return "".join(picked)

  def label(self, rng: np.random.Generator) -> tuple[str, bool]:
    """(text, is_digits): a word, a digit string or a random string, by word_fraction and
    digit_fraction (a digit string becomes a random one when the charset lacks digits)."""
    p = self.params
    kind = rng.random()
    if kind < p.word_fraction and self.words:
      return self.word(rng), False
    if p.word_fraction <= kind < p.word_fraction + p.digit_fraction and self._has_digits:
      return self.random_string(rng, DIGITS), True
    return self.random_string(rng), False

  def decorate(self, rng: np.random.Generator, text: str, digits: bool,
               covered: frozenset[int]) -> tuple[str, str]:
    """(drawn, label): `text` as a price (digits, price_fraction) or with punctuation
    (punctuation_fraction) that the font draws (`covered`: its code points) and the label
    leaves out; a price's label is its digits, cut to at most 6."""
    p = self.params
    if digits and p.price_fraction and rng.random() < p.price_fraction:
      return self._price(rng, text, covered)
    if p.punctuation_fraction and rng.random() < p.punctuation_fraction:
      return self._punctuate(rng, text, digits, covered), text
    return text, text

  def _price(self, rng: np.random.Generator, digits: str,
             covered: frozenset[int]) -> tuple[str, str]:
    """(drawn, label): `digits` cut to at most 6 as a price with a currency sign."""
    signs = [c for c in CURRENCY_SIGNS if ord(c) in covered and c not in self.charset.chars]
    if not signs:
      return digits, digits
    digits = digits[:6]
    sign = signs[int(rng.integers(len(signs)))]
    drawn = digits
    if len(digits) >= 3 and rng.random() < 0.6 and ord(".") in covered:
      drawn = digits[:-2] + "." + digits[-2:]  # 12.99
    suffix = sign == "\u00a2" or (sign == "\u20ac" and rng.random() < 0.5)
    return (drawn + sign if suffix else sign + drawn), digits

  def _punctuate(self, rng: np.random.Generator, text: str, digits: bool,
                 covered: frozenset[int]) -> str:
    """`text` with punctuation the charset lacks added (drawn only; see WORD_PREFIXES)."""
    marks = [c for c in self._punctuation if ord(c) in covered]
    if not marks:
      return text

    def pick(options: str) -> str:
      usable = [c for c in options if c in marks]
      return usable[int(rng.integers(len(usable)))] if usable else ""

    if digits and len(text) > 1 and rng.random() < 0.6:  # 12.99, 12/04, 10:30, 2024-12.
      cut = int(rng.integers(1, len(text)))
      text = text[:cut] + pick(NUMBER_SEPARATORS) + text[cut:]
      if rng.random() < 0.3:
        text = pick(NUMBER_PREFIXES) + text
      return text
    u = rng.random()
    if u < 0.3:
      return pick(WORD_PREFIXES) + text
    if u < 0.85:
      return text + pick(WORD_SUFFIXES)
    return pick(WORD_PREFIXES) + text + pick(WORD_SUFFIXES)
