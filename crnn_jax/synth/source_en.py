"""Synthetic text-line images on demand, as a grain random-access data source.

Each record is a dictionary word (in lower, upper or capitalized case), a string of digits or a
random string of charset characters (`text_en.EnTextSampler`), drawn in a random font that covers
the charset, with random augmentation (see `renderer`; the 'scene' level draws colour photographs of words, see `scene`).
Record i of a source with seed s is a pure function of (s, i): its text and font come from
`SeedSequence([s, i])`, each rendering stage from its own stream (`renderer.Streams`), so
records are identical in any order, in any worker process and across runs on the same
installation (same fonts, Pillow, FreeType and OpenCV).
"""

from __future__ import annotations

import pathlib

from crnn_jax.text.charset import Charset
from crnn_jax.synth import fonts as fonts_lib
from crnn_jax.synth import renderer
from crnn_jax.synth import text_en
from crnn_jax.synth.params import RenderParams


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
    self.texts = text_en.EnTextSampler(charset, params)

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
    return self.texts.words

  def __len__(self) -> int:
    return self.num_records

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
    text, digits = self.texts.label(rng)
    font = self.fonts[rng.integers(len(self.fonts))]
    drawn, text = self.texts.decorate(rng, text, digits, fonts_lib.font_codepoints(font))
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
