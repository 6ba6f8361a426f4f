"""Synthetic text-line images on demand, as a grain random-access data source.

Each record is a dictionary word (in lower, upper or capitalized case), a string of digits or a
random string of charset characters, drawn in a random font that covers the charset, with random
augmentation (see `renderer`; the 'scene' level draws colour photographs of words, see `scene`).
Record i of a source with seed s is a pure function of (s, i): its random
generator is seeded with `SeedSequence([s, i])`, so records are identical in any order, in any
worker process and across runs on the same installation (same fonts, Pillow and FreeType).
"""

from __future__ import annotations

import functools
import math
import operator
import pathlib
from typing import Any, Mapping, NamedTuple

from absl import logging
import numpy as np

from crnn_jax.data import fonts as fonts_lib
from crnn_jax.data import renderer
from crnn_jax.data import words as words_lib
from crnn_jax.data.charset import Charset

DIGITS = "0123456789"
VOCABULARIES = ("web2", "wordfreq")
AUGMENT_LEVELS = renderer.AUGMENT_LEVELS + ("scene",)
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


def load_scene_level(scene_params: Mapping[str, Any] | None, backgrounds_dir: str,
                     builtin_backgrounds: bool):
  """(the `scene` module, its `SceneParams`, background image paths) of the 'scene' level.

  Raises:
    ModuleNotFoundError: the 'scene' extra (OpenCV, ...) is not installed.
  """
  try:
    from crnn_jax.data import scene  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"augment='scene' needs {e.name}: pip install 'crnn-jax[scene]'") from e
  from crnn_jax.data import backgrounds  # pylint: disable=import-outside-toplevel
  paths = tuple(backgrounds.discover_backgrounds(
      [backgrounds_dir] if backgrounds_dir else [], builtin_backgrounds))
  return scene, scene.scene_params(scene_params), paths


def record_rng(seed: int, num_records: int, index: int) -> np.random.Generator:
  """The generator of record `index` (negative indices count from the end), seeded with
  SeedSequence([seed, index]).

  Raises:
    IndexError: the index is out of range.
  """
  index = operator.index(index)
  if index < 0:
    index += num_records
  if not 0 <= index < num_records:
    raise IndexError(f"record index {index} out of range [0, {num_records})")
  return np.random.default_rng(np.random.SeedSequence([seed, index]))


RENDER_ATTEMPTS = 3  # Draws of a record's effects before its rendering error stops the run.


def render_level(source, text: str, font_path: str, rng: np.random.Generator,
                 font_index: int = 0, record: str = "",
                 glyph_rng: np.random.Generator | None = None) -> np.ndarray:
  """Draws `text` at the source's level: at 'scene', a share `strong_fraction` of the records
  at 'strong' and the rest by `scene.render_scene`; else `renderer.render_text`.

  An exception while drawing (a renderer bug on a rare combination of effects) must not stop a
  long run: it is logged, naming `record`, and the effects are drawn again from a generator
  seeded by `rng`, so the record stays deterministic; after RENDER_ATTEMPTS failures the
  RuntimeError names the record, the text and the font.

  `source` has augment, strong_fraction, font_size and, at 'scene', scene_module, scene_params
  and backgrounds (`load_scene_level`); it may have `glyph` (`glyph.GlyphParams`), the effects
  drawn from `glyph_rng` on the records drawn at 'strong'.
  """
  where = f"{record}: " if record else ""
  for attempt in range(1, RENDER_ATTEMPTS + 1):
    try:
      return _render_level_once(source, text, font_path, rng, font_index, glyph_rng)
    except Exception as e:  # pylint: disable=broad-except
      if attempt == RENDER_ATTEMPTS:
        raise RuntimeError(f"{where}rendering {text!r} in {font_path} failed {attempt} times; "
                           f"last error: {e!r}") from e
      logging.warning("%srendering %r in %s raised %r; its effects are drawn again", where,
                      text, font_path, e)
      rng = np.random.default_rng(int(rng.integers(2**63)))
  raise AssertionError("unreachable")


def _render_level_once(source, text: str, font_path: str, rng: np.random.Generator,
                       font_index: int, glyph_rng: np.random.Generator | None) -> np.ndarray:
  if source.augment == "scene" and rng.random() >= source.strong_fraction:
    return source.scene_module.render_scene(
        text, font_path, rng, font_size=source.font_size, backgrounds=source.backgrounds,
        params=source.scene_params, font_index=font_index)
  level = "strong" if source.augment == "scene" else source.augment
  return renderer.render_text(text, font_path, rng, font_size=source.font_size, augment=level,
                              font_index=font_index, glyph=getattr(source, "glyph", None),
                              glyph_rng=glyph_rng)


class SyntheticTextSource:
  """Random-access source of rendered text lines (grain's `RandomAccessDataSource` protocol).

  Records are dictionaries `{'image': uint8 [H, W], 'text': str}`: the grayscale image (its
  height is about `font_size` plus margins; the input pipeline resizes it) and the rendered
  text, not case-folded (the training pipeline normalizes labels with the charset).
  """

  def __init__(
      self,
      *,
      charset: Charset,
      seed: int,
      num_records: int,
      min_length: int = 1,
      max_length: int = 16,
      word_fraction: float = 0.7,
      digit_fraction: float = 0.0,
      lower_fraction: float = 0.5,
      upper_fraction: float = 0.25,
      augment: str = "strong",
      font_size: int = 40,
      fonts_dir: str = "",
      font_pool: str = "standard",
      vocabulary: str = "web2",
      length_balance: float = 0.0,
      punctuation_fraction: float = 0.0,
      price_fraction: float = 0.0,
      strong_fraction: float = 0.0,
      backgrounds_dir: str = "",
      builtin_backgrounds: bool = True,
      scene_params: Mapping[str, Any] | None = None,
  ):
    """Creates the source and selects the fonts that cover the charset.

    Args:
      charset: the characters that labels may use.
      seed: non-negative seed; different seeds give different (independent) datasets.
      num_records: the number of records (`len` of the source).
      min_length: the shortest label.
      max_length: the longest label.
      word_fraction: probability that a record is a dictionary word (when the charset can
        spell any).
      digit_fraction: probability that a record is a string of digits 0-9 (when the charset
        has all ten); the remaining records are random strings of charset characters.
      lower_fraction: probability that a word is lower case.
      upper_fraction: probability that a word is upper case; the rest are capitalized. Words
        stay lower case when the charset has no upper-case letter.
      augment: 'none', 'light', 'strong' (see `renderer.render_text`) or 'scene' (see
        `scene.render_scene`; needs `pip install 'crnn-jax[scene]'`).
      font_size: the nominal font size in pixels.
      fonts_dir: an optional directory of extra .ttf/.otf fonts.
      font_pool: 'standard', 'extended', 'wide', 'scene' or 'signage' (see
        `fonts.discover_fonts`).
      vocabulary: 'web2' (Webster's list, words drawn uniformly) or 'wordfreq' (the 100,000
        most frequent English words, drawn half uniformly and half in proportion to the square
        root of their frequency).
      length_balance: share of words drawn by first choosing a length uniformly among those the
        vocabulary has, then a word of that length (SynthTIGER's length balancing: long words
        are rare in text but common on signs and in benchmarks).
      punctuation_fraction: share of records drawn with punctuation the charset lacks around
        or inside them (see WORD_PREFIXES, ...); it is in the image, not in the label.
      price_fraction: share of digit records drawn as prices ('$12.99', '5.50\u20ac', '\u00a3300'):
        a currency sign the charset lacks (CURRENCY_SIGNS) and often a decimal point, drawn
        but not labelled, so that '$' is not read as a digit.
      strong_fraction: with augment='scene', the share of records drawn at the 'strong' level
        (clean grayscale print) instead.
      backgrounds_dir: an optional directory of background images for the 'scene' level.
      builtin_backgrounds: use the images of Debian and PyPI packages (`backgrounds`).
      scene_params: with augment='scene', `scene.SceneParams` fields to change from their
        defaults (probabilities and ranges of the effects, e.g. {'bevel_prob': 0.15}).

    Raises:
      ValueError: invalid arguments, or no font covers the charset.
    """
    if seed < 0:
      raise ValueError(f"seed must be non-negative, got {seed}")
    if num_records < 0:
      raise ValueError(f"num_records must be non-negative, got {num_records}")
    if not 1 <= min_length <= max_length:
      raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    for name, value in (
        ("word_fraction", word_fraction),
        ("digit_fraction", digit_fraction),
        ("lower_fraction", lower_fraction),
        ("upper_fraction", upper_fraction),
    ):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    if word_fraction + digit_fraction > 1.0 + 1e-9:
      raise ValueError(
          f"word_fraction + digit_fraction must be <= 1, got {word_fraction} + {digit_fraction}"
      )
    if lower_fraction + upper_fraction > 1.0 + 1e-9:
      raise ValueError(
          f"lower_fraction + upper_fraction must be <= 1, got {lower_fraction} + {upper_fraction}"
      )
    if augment not in AUGMENT_LEVELS:
      raise ValueError(f"augment must be one of {AUGMENT_LEVELS}, got {augment!r}")
    if vocabulary not in VOCABULARIES:
      raise ValueError(f"vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
    for name, value in (("length_balance", length_balance),
                        ("punctuation_fraction", punctuation_fraction),
                        ("price_fraction", price_fraction),
                        ("strong_fraction", strong_fraction)):
      if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    if font_size < 8:
      raise ValueError(f"font_size must be at least 8 pixels, got {font_size}")
    if scene_params and augment != "scene":
      raise ValueError(f"scene_params apply to augment='scene' only, got augment={augment!r}")

    self.charset = charset
    self.seed = int(seed)
    self.num_records = int(num_records)
    self.min_length = int(min_length)
    self.max_length = int(max_length)
    self.word_fraction = float(word_fraction)
    self.digit_fraction = float(digit_fraction)
    self.lower_fraction = float(lower_fraction)
    self.upper_fraction = float(upper_fraction)
    self.augment = augment
    self.font_size = int(font_size)
    self.fonts_dir = str(fonts_dir or "")
    self.font_pool = font_pool
    self.vocabulary = vocabulary
    self.length_balance = float(length_balance)
    self.punctuation_fraction = float(punctuation_fraction)
    self.price_fraction = float(price_fraction)
    self.strong_fraction = float(strong_fraction)
    self.backgrounds_dir = str(backgrounds_dir or "")
    self.builtin_backgrounds = bool(builtin_backgrounds)
    self.fonts = tuple(str(path) for path in self._select_fonts())
    self.backgrounds: tuple[str, ...] = ()
    if augment == "scene":
      self.scene_module, self.scene_params, self.backgrounds = load_scene_level(
          scene_params, self.backgrounds_dir, self.builtin_backgrounds)
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
    """A source configured by `config.data` (its `synthetic` fields, see configs/default.py)."""
    synthetic = data_config.synthetic
    return cls(
        charset=charset,
        seed=seed,
        num_records=num_records,
        min_length=synthetic.min_length,
        max_length=synthetic.max_length,
        word_fraction=synthetic.word_fraction,
        digit_fraction=synthetic.get("digit_fraction", 0.0),
        lower_fraction=synthetic.lower_fraction,
        upper_fraction=synthetic.upper_fraction,
        augment=synthetic.augment,
        font_size=synthetic.font_size,
        fonts_dir=synthetic.get("fonts_dir", ""),
        font_pool=synthetic.get("font_pool", "standard"),
        vocabulary=synthetic.get("vocabulary", "web2"),
        length_balance=synthetic.get("length_balance", 0.0),
        punctuation_fraction=synthetic.get("punctuation_fraction", 0.0),
        price_fraction=synthetic.get("price_fraction", 0.0),
        strong_fraction=synthetic.get("strong_fraction", 0.0),
        backgrounds_dir=synthetic.get("backgrounds_dir", ""),
        builtin_backgrounds=synthetic.get("builtin_backgrounds", True),
        scene_params=dict(synthetic.get("scene_params", {})),
    )

  def _select_fonts(self) -> list[pathlib.Path]:
    pool = fonts_lib.discover_fonts([self.fonts_dir] if self.fonts_dir else [], self.font_pool)
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
    if self.vocabulary == "wordfreq":
      return _frequency_pool(self.charset.chars, self.charset.fold_case, self.min_length,
                             self.max_length).words
    return _word_pool(self.charset.chars, self.charset.fold_case, self.min_length, self.max_length)

  def _frequent_word(self, rng: np.random.Generator) -> str:
    """A word of the 'wordfreq' vocabulary (see `length_balance`), before case forms."""
    pool = _frequency_pool(self.charset.chars, self.charset.fold_case, self.min_length,
                           self.max_length)
    if rng.random() < self.length_balance:
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
    if self.vocabulary == "wordfreq":
      word = self._frequent_word(rng)
    else:
      word = words[rng.integers(len(words))]
    u = rng.random()
    if not self._has_upper:
      return word
    lower, upper, capitalized = _case_forms(word)
    if u < self.lower_fraction:
      preferred = lower
    elif u < self.lower_fraction + self.upper_fraction:
      preferred = upper
    else:
      preferred = capitalized
    for form in (preferred, lower, capitalized, upper):
      if self._word_chars.issuperset(form):
        return form
    raise AssertionError(f"word {word!r} has no drawable form")  # Excluded by _word_pool.

  def _random_string(self, rng: np.random.Generator, chars: str | None = None) -> str:
    length = int(rng.integers(self.min_length, self.max_length + 1))
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
    rng = record_rng(self.seed, self.num_records, index)
    words = self.words
    kind = rng.random()
    digits = False
    if kind < self.word_fraction and words:
      text = self._word(rng, words)
    elif self.word_fraction <= kind < self.word_fraction + self.digit_fraction and self._has_digits:
      text = self._random_string(rng, DIGITS)
      digits = True
    else:
      text = self._random_string(rng)
    font = self.fonts[rng.integers(len(self.fonts))]
    drawn = text
    if digits and self.price_fraction and rng.random() < self.price_fraction:
      drawn, text = self._price(rng, text, font)
    elif self.punctuation_fraction and rng.random() < self.punctuation_fraction:
      drawn = self._punctuate(rng, text, digits, font)
    image = render_level(self, drawn, font, rng, record=f"record {index} of seed {self.seed}")
    return {"image": image, "text": text}

  def __repr__(self) -> str:
    return (
        f"SyntheticTextSource(charset={self.charset!r}, seed={self.seed}, "
        f"num_records={self.num_records}, lengths=[{self.min_length}, {self.max_length}], "
        f"word_fraction={self.word_fraction}, digit_fraction={self.digit_fraction}, "
        f"augment={self.augment!r}, "
        f"font_size={self.font_size}, fonts={len(self.fonts)}, vocabulary={self.vocabulary!r}, "
        f"backgrounds={len(self.backgrounds)})"
    )
