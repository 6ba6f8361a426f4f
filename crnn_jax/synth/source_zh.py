"""Synthetic mixed Chinese/English/digit text lines, as a grain random-access data source.

Each record is a line of `zh_text.sample_line` (Chinese words by jieba frequency, English
words, numbers, dates, prices, units, codes and punctuation in `ZhTextMix` proportions), drawn
in a CJK face of the training pool (`cjk_fonts.discover_cjk_fonts`: reserved and held-out
families never among them) that has a glyph for every character of the line, at the renderer's
'light' or 'strong' level or the scene level (`scene.render_scene`; colour, photographs,
perspective, blur, JPEG, ...), as `synthetic.SyntheticTextSource` draws English words.

Record i of a source with seed s is a pure function of (s, i) (generator seeded with
`SeedSequence([s, i])`), on the same installation (fonts, Pillow, FreeType, jieba).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import numpy as np

from crnn_jax.data import cjk_fonts
from crnn_jax.data import glyph as glyph_lib
from crnn_jax.data import synthetic
from crnn_jax.data import zh_text
from crnn_jax.data.charset import Charset

AUGMENT_LEVELS = synthetic.AUGMENT_LEVELS
FACE_SAMPLING = ("face", "family")
MAX_REDRAWS = 20  # Lines drawn again when no face of the pool has all their characters.


def text_mix(overrides: Mapping[str, Any] | None = None) -> zh_text.ZhTextMix:
  """`zh_text.DEFAULT_MIX` with some fields changed (e.g. {'english': 0.2}).

  Raises:
    ValueError: a name that is not a ZhTextMix field, or an invalid value.
  """
  overrides = dict(overrides or {})
  fields = {f.name for f in dataclasses.fields(zh_text.ZhTextMix)}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"unknown ZhTextMix field(s) {unknown}; fields are {sorted(fields)}")
  return dataclasses.replace(zh_text.DEFAULT_MIX, **overrides)


@functools.lru_cache(maxsize=None)
def _codepoints(face: cjk_fonts.FontFace) -> frozenset[int]:
  return cjk_fonts.face_codepoints(face)


class ZhSyntheticSource:
  """Random-access source of rendered mixed lines (grain's `RandomAccessDataSource` protocol).

  Records are `{'image': uint8 [H, W] grayscale ([H, W, 3] RGB at the 'scene' level),
  'text': str}`; the input pipeline converts and resizes the image.
  """

  def __init__(
      self,
      *,
      charset: Charset,
      seed: int,
      num_records: int,
      min_length: int = 1,
      max_length: int = 25,
      mix: Mapping[str, Any] | None = None,
      augment: str = "scene",
      strong_fraction: float = 0.0,
      font_size: int = 40,
      fonts_dir: str = "",
      regions: Sequence[str] = cjk_fonts.DEFAULT_REGIONS,
      faces: Sequence[cjk_fonts.FontFace] | None = None,
      backgrounds_dir: str = "",
      builtin_backgrounds: bool = True,
      scene_params: Mapping[str, Any] | None = None,
      glyph: Mapping[str, Any] | None = None,
      min_hanzi: int = cjk_fonts.MIN_HANZI,
      face_sampling: str = "face",
  ):
    """Creates the source and selects its faces.

    Args:
      charset: the model's characters; it must hold every character the text source draws
        (`zh_charset.ZH_EN_CHARS`).
      seed: non-negative seed.
      num_records: the number of records (`len` of the source).
      min_length, max_length: line lengths in characters (spaces included).
      mix: `zh_text.ZhTextMix` fields to change (segment shares, punctuation, ...).
      augment: 'none', 'light', 'strong' (grayscale print, `renderer.render_text`) or 'scene'.
      strong_fraction: with augment='scene', the share of records drawn at 'strong' instead.
      font_size: the nominal font size in pixels.
      fonts_dir: an optional directory of extra CJK fonts (reserved families are skipped).
      regions: the regional faces of collections like Noto CJK (`cjk_fonts.REGIONS`).
      faces: the faces to draw with, instead of discovering the training pool.
      backgrounds_dir, builtin_backgrounds, scene_params: as in
        `synthetic.SyntheticTextSource` (the 'scene' level).
      glyph: `glyph.GlyphParams` fields (stroke weight, width, ink, wobble), drawn on the
        records rendered at the 'strong' level from their own stream (seed, index,
        glyph.GLYPH_STREAM); empty: none.
      min_hanzi: the fewest GB2312 level-1 hanzi a discovered face must have. Below 3,755 the
        pool takes faces that lack some characters (Japanese faces cover about 2,100-2,650):
        they draw only the lines whose every character they have.
      face_sampling: 'face': a line's face uniformly among those that cover it; 'family':
        a family first (uniformly among the covering families), then one of its faces, so
        that a family of many files (weights, variants) is not drawn more often.

    Raises:
      ValueError: invalid arguments, a charset that lacks drawn characters, or no face.
    """
    if seed < 0:
      raise ValueError(f"seed must be non-negative, got {seed}")
    if num_records < 0:
      raise ValueError(f"num_records must be non-negative, got {num_records}")
    if not 1 <= min_length <= max_length:
      raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if augment not in AUGMENT_LEVELS:
      raise ValueError(f"augment must be one of {AUGMENT_LEVELS}, got {augment!r}")
    if not 0.0 <= strong_fraction <= 1.0:
      raise ValueError(f"strong_fraction must be in [0, 1], got {strong_fraction}")
    if font_size < 8:
      raise ValueError(f"font_size must be at least 8 pixels, got {font_size}")
    if face_sampling not in FACE_SAMPLING:
      raise ValueError(f"face_sampling must be one of {FACE_SAMPLING}, got {face_sampling!r}")
    self.glyph = glyph_lib.GlyphParams.from_mapping(glyph)
    if self.glyph.enabled and augment not in ("strong", "scene"):
      raise ValueError(f"glyph effects apply to the 'strong' level (augment 'strong' or "
                       f"'scene' with strong_fraction > 0), got augment={augment!r}")
    self.face_sampling = face_sampling
    if scene_params and augment != "scene":
      raise ValueError(f"scene_params apply to augment='scene' only, got augment={augment!r}")
    from crnn_jax.data import zh_charset  # pylint: disable=import-outside-toplevel
    missing = sorted(set(zh_charset.ZH_EN_CHARS) - set(charset.chars))
    if missing:
      raise ValueError(
          f"the charset lacks {len(missing)} character(s) that mixed lines draw, e.g. "
          f"{''.join(missing[:20])!r}; use zh_charset.ZH_EN_CHARS (config.text.charset)")
    self.charset = charset
    self.seed = int(seed)
    self.num_records = int(num_records)
    self.min_length = int(min_length)
    self.max_length = int(max_length)
    self.mix = text_mix(mix)
    self.augment = augment
    self.strong_fraction = float(strong_fraction)
    self.font_size = int(font_size)
    if faces is None:
      faces = cjk_fonts.discover_cjk_fonts([fonts_dir] if fonts_dir else [], regions=regions,
                                           min_hanzi=min_hanzi)
    self.faces = tuple(cjk_fonts.FontFace(*face) for face in faces)
    self._families = tuple(cjk_fonts.face_family(face) for face in self.faces)
    if not self.faces:
      raise ValueError(
          "no CJK face found for the training pool: apt-get install fonts-noto-cjk (and "
          "fonts-noto-cjk-extra for more weights), or set config.data.synthetic.fonts_dir")
    reserved = [face for face in self.faces if cjk_fonts.is_reserved_face(face)]
    if reserved:
      raise ValueError(f"reserved evaluation families must not be drawn: {reserved}")
    self.backgrounds: tuple[str, ...] = ()
    if augment == "scene":
      self.scene_module, self.scene_params, self.backgrounds = synthetic.load_scene_level(
          scene_params, backgrounds_dir, builtin_backgrounds)

  @classmethod
  def from_config(cls, data_config, charset: Charset, *, seed: int,
                  num_records: int) -> "ZhSyntheticSource":
    """A source configured by `config.data.synthetic` (text='zh_en'; see configs/zh_en.py)."""
    synthetic = data_config.synthetic
    return cls(
        charset=charset,
        seed=seed,
        num_records=num_records,
        min_length=synthetic.min_length,
        max_length=synthetic.max_length,
        mix=dict(synthetic.get("zh_mix", {})),
        augment=synthetic.augment,
        strong_fraction=synthetic.get("strong_fraction", 0.0),
        font_size=synthetic.font_size,
        fonts_dir=synthetic.get("fonts_dir", ""),
        regions=tuple(synthetic.get("cjk_regions", cjk_fonts.DEFAULT_REGIONS)),
        backgrounds_dir=synthetic.get("backgrounds_dir", ""),
        builtin_backgrounds=synthetic.get("builtin_backgrounds", True),
        scene_params=dict(synthetic.get("scene_params", {})),
        glyph=dict(synthetic.get("glyph", {})),
        min_hanzi=synthetic.get("cjk_min_hanzi", cjk_fonts.MIN_HANZI),
        face_sampling=synthetic.get("face_sampling", "face"),
    )

  def __len__(self) -> int:
    return self.num_records

  def _covering(self, text: str) -> list[int]:
    """Indices into self.faces of the faces that have every character of `text`."""
    codes = {ord(c) for c in text if not c.isspace()}
    return [i for i, face in enumerate(self.faces) if codes <= _codepoints(face)]

  def _choose(self, rng: np.random.Generator, covering: list[int]) -> cjk_fonts.FontFace:
    if self.face_sampling == "family":
      families = sorted({self._families[i] for i in covering})
      family = families[int(rng.integers(len(families)))]
      covering = [i for i in covering if self._families[i] == family]
    return self.faces[covering[int(rng.integers(len(covering)))]]

  def line_and_face(self, rng: np.random.Generator) -> tuple[str, cjk_fonts.FontFace]:
    """A line and a face that has all its characters (lines no face has are drawn again)."""
    for _ in range(MAX_REDRAWS):
      text = zh_text.sample_line(rng, self.mix, min_length=self.min_length,
                                 max_length=self.max_length)
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
    rng = synthetic.record_rng(self.seed, self.num_records, index)
    text, face = self.line_and_face(rng)
    glyph_rng = None
    if self.glyph.enabled:
      index = index + self.num_records if index < 0 else index
      glyph_rng = np.random.default_rng(
          np.random.SeedSequence([self.seed, index, glyph_lib.GLYPH_STREAM]))
    image = synthetic.render_level(self, text, face.path, rng, font_index=face.index,
                                   record=f"record {index} of seed {self.seed}",
                                   glyph_rng=glyph_rng)
    return {"image": image, "text": text}

  def __repr__(self) -> str:
    return (f"ZhSyntheticSource(seed={self.seed}, num_records={self.num_records}, "
            f"lengths=[{self.min_length}, {self.max_length}], augment={self.augment!r}, "
            f"faces={len(self.faces)}, backgrounds={len(self.backgrounds)})")
