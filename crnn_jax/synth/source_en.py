"""Synthetic text-line images on demand, as a grain random-access data source.

Each record is a dictionary word (in lower, upper or capitalized case), a string of digits or a
random string of charset characters, drawn in a random font that covers the charset, with random
augmentation (see `renderer`; the 'scene' level draws colour photographs of words, see `scene`).
Record i of a source with seed s is a pure function of (s, i): its text and font come from
`SeedSequence([s, i])`, each rendering stage from its own stream (`renderer.Streams`), so
records are identical in any order, in any worker process and across runs on the same
installation (same fonts, Pillow, FreeType and OpenCV).
"""

from __future__ import annotations

import functools
import math
import pathlib
from typing import NamedTuple

import numpy as np

from crnn_jax.text.charset import Charset
from crnn_jax.synth import fonts as fonts_lib
from crnn_jax.synth import renderer
from crnn_jax.synth import words as words_lib
from crnn_jax.synth.params import RenderParams

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


def _case_forms(word: str) -> tuple[str, str, str]:
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


@functools.lru_cache(maxsize=16)
def _word_pool(chars: str, fold_case: bool, min_length: int, max_length: int) -> tuple[str, ...]:
  """Dictionary words of the right length that have at least one drawable case form.

  Without upper-case letters in the charset only the lower-case form counts.
  """
  drawable = _drawable_words(chars, fold_case, min_length, max_length)
  return tuple(word for word in words_lib.english_words() if drawable(word))


def _drawable_words(chars: str, fold_case: bool, min_length: int, max_length: int):
  """A predicate: the word has the right length and at least one case form the charset can
  draw (only the lower-case form without upper-case letters in the charset)."""
  charset = Charset(chars, fold_case=fold_case)
  allowed = _word_chars(charset)
  upper = _has_upper(charset)

  def drawable(word: str) -> bool:
    if not min_length <= len(word) <= max_length:
      return False
    forms = _case_forms(word) if upper else (word,)
    return any(allowed.issuperset(form) for form in forms)

  return drawable


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


class SyntheticTextSource:
  """Random-access source of rendered text lines (grain's `RandomAccessDataSource` protocol).

  Records are dictionaries `{'image': uint8 [H, W], 'text': str}`: the grayscale image (its
  height is about `font_size` plus margins; the input pipeline resizes it) and the rendered
  text, not case-folded (the training pipeline normalizes labels with the charset).
  """

  def __init__(self, *, charset: Charset, seed: int, num_records: int,
               params: RenderParams = RenderParams()):
    """Creates the source and selects the fonts that cover the charset.

    Args:
      charset: the characters that labels may use.
      seed: non-negative seed; different seeds give different (independent) datasets.
      num_records: the number of records (`len` of the source).
      params: what is drawn and how (`params.RenderParams`: lengths, the word / digit /
        random-string mix, case forms, vocabulary, punctuation and prices drawn but not
        labelled, font pool, augmentation level and its parameters).

    Raises:
      ValueError: invalid arguments, or no font covers the charset.
      ModuleNotFoundError: augment='scene' without the 'scene' extra.
    """
    renderer.check_records(seed, num_records)
    self.charset = charset
    self.seed = int(seed)
    self.num_records = int(num_records)
    self.params = params
    self.fonts = tuple(str(path) for path in self._select_fonts())
    self.renderer = renderer.Renderer(params)
    self.backgrounds = self.renderer.backgrounds
    self._punctuation = "".join(sorted(set(
        WORD_PREFIXES + WORD_SUFFIXES + NUMBER_SEPARATORS + NUMBER_PREFIXES)
        - set(charset.chars)))
    self._has_upper = _has_upper(charset)
    self._word_chars = _word_chars(charset)
    # Random strings never start or end with white space (it would be invisible).
    self._edge_chars = "".join(c for c in charset.chars if not c.isspace()) or charset.chars
    self._has_digits = all(charset.can_encode(c) for c in DIGITS)

  @classmethod
  def from_config(
      cls, data_config, charset: Charset, *, seed: int, num_records: int
  ) -> "SyntheticTextSource":
    """A source configured by `config.data` (its `synthetic` fields, `params.RenderParams`)."""
    return cls(charset=charset, seed=seed, num_records=num_records,
               params=RenderParams.from_config(data_config.synthetic))

  def _select_fonts(self) -> list[pathlib.Path]:
    p = self.params
    pool = fonts_lib.discover_fonts([p.fonts_dir] if p.fonts_dir else [], p.font_pool)
    chars = "".join(c for c in self.charset.chars if not c.isspace())
    covering = fonts_lib.fonts_covering(pool, chars)
    if not covering:
      known = set().union(*(fonts_lib.font_codepoints(path) for path in pool))
      missing = sorted({c for c in chars if ord(c) not in known})
      detail = (
          "no single font has all of them"
          if not missing
          else "no font has " + ", ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:20])
          + (" ..." if len(missing) > 20 else "")
      )
      raise ValueError(
          f"none of the {len(pool)} fonts covers the charset ({detail}); add fonts that do "
          "with config.data.synthetic.fonts_dir"
      )
    return covering

  @property
  def words(self) -> tuple[str, ...]:
    """The dictionary words (lower case) that this source can draw."""
    if self.params.vocabulary == "wordfreq":
      return _frequency_pool(self.charset.chars, self.charset.fold_case, self.params.min_length,
                             self.params.max_length).words
    return _word_pool(self.charset.chars, self.charset.fold_case, self.params.min_length,
                      self.params.max_length)

  def _frequent_word(self, rng: np.random.Generator) -> str:
    """A word of the 'wordfreq' vocabulary (see `length_balance`), before case forms."""
    pool = _frequency_pool(self.charset.chars, self.charset.fold_case, self.params.min_length,
                           self.params.max_length)
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

  def _price(self, rng: np.random.Generator, digits: str, font: str) -> tuple[str, str]:
    """(drawn, label): `digits` cut to at most 6 as a price with a currency sign (price_fraction)."""
    covered = fonts_lib.font_codepoints(font)
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

  def _punctuate(self, rng: np.random.Generator, text: str, digits: bool, font: str) -> str:
    """`text` with punctuation the charset lacks added (drawn only; see WORD_PREFIXES)."""
    covered = fonts_lib.font_codepoints(font)
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

  def __len__(self) -> int:
    return self.num_records

  def _word(self, rng: np.random.Generator, words: tuple[str, ...]) -> str:
    if self.params.vocabulary == "wordfreq":
      word = self._frequent_word(rng)
    else:
      word = words[rng.integers(len(words))]
    u = rng.random()
    if not self._has_upper:
      return word
    lower, upper, capitalized = _case_forms(word)
    if u < self.params.lower_fraction:
      preferred = lower
    elif u < self.params.lower_fraction + self.params.upper_fraction:
      preferred = upper
    else:
      preferred = capitalized
    for form in (preferred, lower, capitalized, upper):
      if self._word_chars.issuperset(form):
        return form
    raise AssertionError(f"word {word!r} has no drawable form")  # Excluded by _word_pool.

  def _random_string(self, rng: np.random.Generator, chars: str | None = None) -> str:
    length = int(rng.integers(self.params.min_length, self.params.max_length + 1))
    chars = chars or self.charset.chars
    picked = [chars[i] for i in rng.integers(len(chars), size=length)]
    edges = self._edge_chars
    picked[0] = edges[rng.integers(len(edges))] if picked[0].isspace() else picked[0]
    picked[-1] = edges[rng.integers(len(edges))] if picked[-1].isspace() else picked[-1]
    return "".join(picked)

  def __getitem__(self, index: int) -> dict:
    """Renders record `index`.

    Args:
      index: in [0, len) (negative indices count from the end).

    Returns:
      {'image': uint8 [H, W] grayscale image ([H, W, 3] RGB at the 'scene' level), 'text': the
      label: the rendered string without the punctuation and currency signs that
      `punctuation_fraction` and `price_fraction` add}.

    Raises:
      IndexError: the index is out of range.
    """
    index = renderer.record_index(self.num_records, index)
    rng = renderer.record_rng(self.seed, self.num_records, index)
    p = self.params
    words = self.words
    kind = rng.random()
    digits = False
    if kind < p.word_fraction and words:
      text = self._word(rng, words)
    elif p.word_fraction <= kind < p.word_fraction + p.digit_fraction and self._has_digits:
      text = self._random_string(rng, DIGITS)
      digits = True
    else:
      text = self._random_string(rng)
    font = self.fonts[rng.integers(len(self.fonts))]
    drawn = text
    if digits and p.price_fraction and rng.random() < p.price_fraction:
      drawn, text = self._price(rng, text, font)
    elif p.punctuation_fraction and rng.random() < p.punctuation_fraction:
      drawn = self._punctuate(rng, text, digits, font)
    image = self.renderer(drawn, font, renderer.Streams(self.seed, index),
                          record=f"record {index} of seed {self.seed}")
    return {"image": image, "text": text}

  def __repr__(self) -> str:
    p = self.params
    return (
        f"SyntheticTextSource(charset={self.charset!r}, seed={self.seed}, "
        f"num_records={self.num_records}, lengths=[{p.min_length}, {p.max_length}], "
        f"word_fraction={p.word_fraction}, digit_fraction={p.digit_fraction}, "
        f"augment={p.augment!r}, font_size={p.font_size}, fonts={len(self.fonts)}, "
        f"vocabulary={p.vocabulary!r}, backgrounds={len(self.backgrounds)})"
    )
