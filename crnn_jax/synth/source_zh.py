"""Synthetic mixed Chinese/English/digit text lines, as a grain random-access data source.

Each record is a line of `text_zh.sample_line` (Chinese words by jieba frequency, English
words, numbers, dates, prices, units, codes and punctuation in `ZhTextMix` proportions), drawn
in a CJK face of the training pool (`cjk_fonts.discover_cjk_fonts`: reserved and held-out
families never among them) that has a glyph for every character of the line, at the renderer's
'light' or 'strong' level or the scene level (`scene.render_scene`; colour, photographs,
perspective, blur, JPEG, ...), as `source_en.SyntheticTextSource` draws English words.

Record i of a source with seed s is a pure function of (s, i) (its line and face from
`SeedSequence([s, i])`, each rendering stage from its own stream, `renderer.Streams`), on the
same installation (fonts, Pillow, FreeType, OpenCV, jieba).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from crnn_jax.text import zh_charset
from crnn_jax.text.charset import Charset
from crnn_jax.synth import cjk_fonts
from crnn_jax.synth import renderer
from crnn_jax.synth import text_zh
from crnn_jax.synth.params import RenderParams

MAX_REDRAWS = 20  # Lines drawn again when no face of the pool has all their characters.


@functools.lru_cache(maxsize=None)
def _codepoints(face: cjk_fonts.FontFace) -> frozenset[int]:
  return cjk_fonts.face_codepoints(face)


class ZhSyntheticSource:
  """Random-access source of rendered mixed lines (grain's `RandomAccessDataSource` protocol).

  Records are `{'image': uint8 [H, W] grayscale ([H, W, 3] RGB at the 'scene' level),
  'text': str}`; the input pipeline converts and resizes the image.
  """

  def __init__(self, *, charset: Charset, seed: int, num_records: int,
               params: RenderParams = RenderParams(text="zh_en", max_length=25,
                                                   augment="scene"),
               faces: Sequence[cjk_fonts.FontFace] | None = None):
    """Creates the source and selects its faces.

    Args:
      charset: the model's characters; it must hold every character the text source draws
        (`zh_charset.ZH_EN_CHARS`).
      seed: non-negative seed.
      num_records: the number of records (`len` of the source).
      params: what is drawn and how (`params.RenderParams`; this source reads min_length,
        max_length, zh_mix, cjk_regions, cjk_min_hanzi, face_sampling, fonts_dir and the
        rendering fields). `cjk_min_hanzi` below 3,755 lets the pool take faces that lack
        some characters (Japanese faces cover about 2,100-2,650): they draw only the lines
        whose every character they have. `face_sampling` 'face': a line's face uniformly
        among those that cover it; 'family': a family first, then one of its faces, so that a
        family of many files (weights, variants) is not drawn more often.
      faces: the faces to draw with, instead of discovering the training pool.

    Raises:
      ValueError: invalid arguments, a charset that lacks drawn characters, or no face.
    """
    renderer.check_records(seed, num_records)
    missing = sorted(set(zh_charset.ZH_EN_CHARS) - set(charset.chars))
    if missing:
      raise ValueError(
          f"the charset lacks {len(missing)} character(s) that mixed lines draw, e.g. "
          f"{''.join(missing[:20])!r}; use zh_charset.ZH_EN_CHARS (config.text.charset)")
    self.charset = charset
    self.seed = int(seed)
    self.num_records = int(num_records)
    self.params = params
    if faces is None:
      faces = cjk_fonts.discover_cjk_fonts([params.fonts_dir] if params.fonts_dir else [],
                                           regions=params.cjk_regions,
                                           min_hanzi=params.cjk_min_hanzi)
    self.faces = tuple(cjk_fonts.FontFace(*face) for face in faces)
    self._families = tuple(cjk_fonts.face_family(face) for face in self.faces)
    if not self.faces:
      raise ValueError(
          "no CJK face found for the training pool: apt-get install fonts-noto-cjk (and "
          "fonts-noto-cjk-extra for more weights), or set config.data.synthetic.fonts_dir")
    reserved = [face for face in self.faces if cjk_fonts.is_reserved_face(face)]
    if reserved:
      raise ValueError(f"reserved evaluation families must not be drawn: {reserved}")
    self.renderer = renderer.Renderer(params)
    self.backgrounds = self.renderer.backgrounds

  @classmethod
  def from_config(cls, data_config, charset: Charset, *, seed: int,
                  num_records: int) -> "ZhSyntheticSource":
    """A source configured by `config.data.synthetic` (text='zh_en'; see configs/zh_en.py)."""
    return cls(charset=charset, seed=seed, num_records=num_records,
               params=RenderParams.from_config(data_config.synthetic))

  def __len__(self) -> int:
    return self.num_records

  def _covering(self, text: str) -> list[int]:
    """Indices into self.faces of the faces that have every character of `text`."""
    codes = {ord(c) for c in text if not c.isspace()}
    return [i for i, face in enumerate(self.faces) if codes <= _codepoints(face)]

  def _choose(self, rng: np.random.Generator, covering: list[int]) -> cjk_fonts.FontFace:
    if self.params.face_sampling == "family":
      families = sorted({self._families[i] for i in covering})
      family = families[int(rng.integers(len(families)))]
      covering = [i for i in covering if self._families[i] == family]
    return self.faces[covering[int(rng.integers(len(covering)))]]

  def line_and_face(self, rng: np.random.Generator) -> tuple[str, cjk_fonts.FontFace]:
    """A line and a face that has all its characters (lines no face has are drawn again)."""
    for _ in range(MAX_REDRAWS):
      text = text_zh.sample_line(rng, self.params.zh_mix, min_length=self.params.min_length,
                                 max_length=self.params.max_length)
      covering = self._covering(text)
      if covering:
        return text, self._choose(rng, covering)
    raise ValueError(f"no face of the pool has all the characters of {MAX_REDRAWS} lines in a "
                     f"row (the last: {text!r}); add faces that cover GB2312 level 1")

  def __getitem__(self, index: int) -> dict:
    """Renders record `index` (negative indices count from the end).

    Raises:
      IndexError: the index is out of range.
    """
    index = renderer.record_index(self.num_records, index)
    rng = renderer.record_rng(self.seed, self.num_records, index)
    text, face = self.line_and_face(rng)
    image = self.renderer(text, face.path, renderer.Streams(self.seed, index),
                          font_index=face.index, record=f"record {index} of seed {self.seed}")
    return {"image": image, "text": text}

  def __repr__(self) -> str:
    return (f"ZhSyntheticSource(seed={self.seed}, num_records={self.num_records}, "
            f"lengths=[{self.params.min_length}, {self.params.max_length}], "
            f"augment={self.params.augment!r}, "
            f"faces={len(self.faces)}, backgrounds={len(self.backgrounds)})")
