"""Every setting of the synthetic text engine, in one frozen type: `RenderParams`.

`RenderParams` fields are the fields of `config.data.synthetic` (same names, same defaults:
`crnn_jax/default_config.py` builds that block from `RenderParams().to_config()`), the
settings of the TFDS builder (`data/builders/synthetic.py`), of the sources
(`source_en.SyntheticTextSource`, `source_zh.ZhSyntheticSource`) and of
`crnn-jax data build synthetic` (its flags are made from the fields' help). They are checked
once, here.

`SceneParams` holds the probabilities and ranges of the 'scene' level (`scene.py`); a config
names only the fields it changes (`config.data.synthetic.scene_params`), as it does for the
glyph effects (`glyph.GlyphParams`) and the mixed-line proportions (`text_zh.ZhTextMix`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from crnn_jax.synth import glyph as glyph_lib
from crnn_jax.synth import text_zh

TEXT_KINDS = ("en", "zh_en")
AUGMENT_LEVELS = ("none", "light", "strong", "scene")
VOCABULARIES = ("web2", "wordfreq")
FONT_POOLS = ("standard", "extended", "wide", "scene", "signage")
FACE_SAMPLING = ("face", "family")


@dataclasses.dataclass(frozen=True)
class SceneParams:
  """Probabilities and ranges of the scene level (lengths in font sizes unless noted)."""

  size_range: tuple[float, float] = (0.75, 1.25)
  spacing_prob: float = 0.5
  wide_spacing_prob: float = 0.3  # Of spaced words: tracking of `wide_tracking` ('T H E').
  wide_tracking: tuple[float, float] = (0.12, 0.6)  # In em, added between letters.
  weight_prob: float = 0.3  # Dilate (2/3) or erode (1/3) the glyphs.
  neighbour_prob: float = 0.3  # Parts of other lines above/below or letters at the sides.
  border_prob: float = 0.15
  border_width: tuple[float, float] = (0.03, 0.1)
  hollow_prob: float = 0.0  # Of bordered words: the border alone draws them (outline letters).
  shadow_prob: float = 0.15
  extrude_prob: float = 0.08
  bevel_prob: float = 0.0  # Ink shaded by a light direction, as raised or engraved letters.
  inline_prob: float = 0.0  # A line inside the strokes, in another colour (inline sign faces).
  inline_band: tuple[float, float] = (0.3, 0.7)  # Its inner and outer edge, of stroke half-width.
  curve_prob: float = 0.15
  curve_range: float = 0.45  # Arc height at the word's ends.
  curve_min: float = 0.0  # Least arc height of a curved word (its height: curve_min to range).
  perspective_prob: float = 0.6
  corner_jitter: float = 0.12  # Of the box height, per corner coordinate.
  rotation_deg: float = 6.0
  rotation_min_deg: float = 0.0  # Added to the drawn angle's size: no angle is smaller.
  shear_range: float = 0.35
  margin_x: tuple[float, float] = (-0.02, 0.3)
  margin_y: tuple[float, float] = (-0.06, 0.25)
  photo_prob: float = 0.35
  flat_prob: float = 0.3
  gradient_prob: float = 0.15  # The rest: procedural noise textures.
  photo_fade_prob: float = 0.5  # Photographs at reduced amplitude around their mean (panels).
  low_contrast_prob: float = 0.1
  low_contrast: tuple[float, float] = (25.0, 60.0)  # Luma difference text - background.
  contrast: tuple[float, float] = (60.0, 230.0)
  multiply_prob: float = 0.12
  textured_fill_prob: float = 0.1
  lighting_prob: float = 0.3
  blur_prob: float = 0.35
  motion_blur_prob: float = 0.15
  defocus_prob: float = 0.1
  noise_sigma: tuple[float, float] = (0.0, 6.0)
  jpeg_prob: float = 0.6
  jpeg_quality: tuple[int, int] = (15, 95)
  min_contrast: float = 35.0  # Luma difference of ink and box surround, below which ink is redrawn.
  output_height: tuple[int, int] = (24, 64)  # Final image height in pixels, and with
  low_resolution_prob: float = 0.3  # this probability 12-24 pixels (low resolution).


DEFAULT_SCENE = SceneParams()


def scene_params(overrides: Mapping[str, Any] | None = None) -> SceneParams:
  """`SceneParams` with the fields named in `overrides` (a mapping, e.g. a config's
  `data.synthetic.scene_params`) changed; lists become tuples.

  Raises:
    ValueError: a name that is not a field, or a range given with the wrong length.
  """
  overrides = dict(overrides or {})
  fields = {f.name: f for f in dataclasses.fields(SceneParams)}
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise ValueError(f"unknown scene parameter(s) {', '.join(unknown)}; the fields are "
                     f"{', '.join(fields)}")
  values = {}
  for name, value in overrides.items():
    default = getattr(DEFAULT_SCENE, name)
    if isinstance(default, tuple):
      value = tuple(value)
      if len(value) != len(default):
        raise ValueError(f"scene parameter {name} takes {len(default)} values, got {value}")
    values[name] = value
  return dataclasses.replace(DEFAULT_SCENE, **values)


def text_mix(overrides: Mapping[str, Any] | None = None) -> text_zh.ZhTextMix:
  """`text_zh.DEFAULT_MIX` with some fields changed (e.g. {'english': 0.2}).

  Raises:
    ValueError: a name that is not a ZhTextMix field, or an invalid value.
  """
  overrides = dict(overrides or {})
  fields = {f.name for f in dataclasses.fields(text_zh.ZhTextMix)}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ValueError(f"unknown ZhTextMix field(s) {unknown}; fields are {sorted(fields)}")
  return dataclasses.replace(text_zh.DEFAULT_MIX, **overrides)


def _field(default, help_text: str, **metadata):
  """A dataclass field with its help (the CLI flag's) and, optionally, its `choices`."""
  return dataclasses.field(default=default, metadata=dict(help=help_text, **metadata))


# Fields whose value is a set of overrides of another dataclass: how to read and check them.
_OVERRIDE_SETS = {"scene_params": (SceneParams, scene_params),
                  "glyph": (glyph_lib.GlyphParams, glyph_lib.GlyphParams.from_mapping),
                  "zh_mix": (text_zh.ZhTextMix, text_mix)}


@dataclasses.dataclass(frozen=True)
class RenderParams:
  """The settings of a synthetic source: what text it draws and how it renders it.

  Build with keywords (mappings are accepted for scene_params, glyph and zh_mix, and lists for
  cjk_regions) or from a config with `from_config`. Invalid values raise ValueError.
  """

  text: str = _field("en", "the text engine: 'en' (English words, digits, random strings) or "
                     "'zh_en' (mixed Chinese/English/digit lines)", choices=TEXT_KINDS)
  min_length: int = _field(1, "shortest text drawn")
  max_length: int = _field(16, "longest text drawn")
  # 'en': what text is drawn.
  word_fraction: float = _field(0.7, "share of dictionary words")
  digit_fraction: float = _field(0.0, "share of digit strings (numbers, prices, dates, codes); "
                                 "the rest are random strings")
  lower_fraction: float = _field(0.5, "share of words in lower case")
  upper_fraction: float = _field(0.25, "share of words in upper case; the rest capitalized")
  vocabulary: str = _field("web2", "word list: web2 (Debian's dictionary, uniform) or wordfreq "
                           "(100k frequent English words, drawn by frequency)",
                           choices=VOCABULARIES)
  length_balance: float = _field(0.0, "share of words drawn length first (SynthTIGER: long "
                                 "words as often as short)")
  punctuation_fraction: float = _field(0.0, "share of records with punctuation outside the "
                                       "charset drawn, not labelled")
  price_fraction: float = _field(0.0, "share of digit strings drawn as prices, the currency "
                                 "sign not labelled")
  font_pool: str = _field("standard", "installed font families drawn from (README, 'Fonts')",
                          choices=FONT_POOLS)
  # 'zh_en': what text is drawn, in which faces.
  zh_mix: text_zh.ZhTextMix = _field(text_zh.DEFAULT_MIX, "'zh_en': a JSON object of "
                                     "crnn_jax.synth.text_zh.ZhTextMix fields to change")
  cjk_regions: tuple[str, ...] = _field(("SC",), "'zh_en': regional faces of Noto CJK kept, "
                                        "comma-separated")
  cjk_min_hanzi: int = _field(3000, "'zh_en': the fewest GB2312 level-1 hanzi of a pool face")
  face_sampling: str = _field("face", "'zh_en': a line's face drawn per 'face' or per "
                              "'family' first", choices=FACE_SAMPLING)
  # How it is rendered.
  augment: str = _field("strong", "renderer level; 'scene': colour photograph-like crops "
                        "(builds store them as grayscale PNGs converted as model inputs are)",
                        choices=AUGMENT_LEVELS)
  strong_fraction: float = _field(0.0, "'scene': share of records drawn at the 'strong' level")
  font_size: int = _field(40, "nominal font size in pixels (images are resized)")
  fonts_dir: str = _field("", "extra directory of fonts added to the pool")
  backgrounds_dir: str = _field("", "'scene': extra directory of background images")
  builtin_backgrounds: bool = _field(True, "'scene': use the background images of Debian and "
                                     "PyPI packages")
  scene_params: SceneParams = _field(DEFAULT_SCENE, "'scene': a JSON object of "
                                     "crnn_jax.synth.params.SceneParams fields to change, e.g. "
                                     "'{\"bevel_prob\": 0.15}'")
  glyph: glyph_lib.GlyphParams = _field(glyph_lib.GlyphParams(), "a JSON object of "
                                        "crnn_jax.synth.glyph.GlyphParams fields (glyph "
                                        "effects on the 'strong' records)")

  def __post_init__(self):
    for name, (cls, read) in _OVERRIDE_SETS.items():
      value = getattr(self, name)
      if not isinstance(value, cls):
        object.__setattr__(self, name, read(dict(value or {})))
    object.__setattr__(self, "cjk_regions", tuple(self.cjk_regions))
    self._check()

  def _check(self) -> None:
    """Raises ValueError naming the first invalid setting."""
    if not 1 <= self.min_length <= self.max_length:
      raise ValueError(f"need 1 <= min_length <= max_length, got {self.min_length}, "
                       f"{self.max_length}")
    for f in dataclasses.fields(self):
      name, choices = f.name, f.metadata.get("choices")
      if choices and getattr(self, name) not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
    for name in ("word_fraction", "digit_fraction", "lower_fraction", "upper_fraction",
                 "length_balance", "punctuation_fraction", "price_fraction", "strong_fraction"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
    for a, b in (("word_fraction", "digit_fraction"), ("lower_fraction", "upper_fraction")):
      if getattr(self, a) + getattr(self, b) > 1.0 + 1e-9:
        raise ValueError(f"{a} + {b} must be <= 1, got {getattr(self, a)} + {getattr(self, b)}")
    if self.font_size < 8:
      raise ValueError(f"font_size must be at least 8 pixels, got {self.font_size}")
    if self.scene_params != DEFAULT_SCENE and self.augment != "scene":
      raise ValueError(f"scene_params apply to augment='scene' only, got "
                       f"augment={self.augment!r}")
    if self.glyph.enabled and self.augment not in ("strong", "scene"):
      raise ValueError(f"glyph effects apply to the 'strong' level (augment 'strong' or "
                       f"'scene' with strong_fraction > 0), got augment={self.augment!r}")

  @classmethod
  def from_config(cls, synthetic: Mapping[str, Any]) -> "RenderParams":
    """The settings of `config.data.synthetic` (a ConfigDict or mapping; missing fields keep
    their defaults).

    Raises:
      ValueError: a name that is not a field, or an invalid value.
    """
    values = dict(synthetic)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
      raise ValueError(f"unknown config.data.synthetic field(s) {unknown}; the fields are "
                       f"those of crnn_jax.synth.params.RenderParams: {sorted(names)}")
    for name in _OVERRIDE_SETS:
      if name in values:
        values[name] = dict(values[name] or {})
    return cls(**values)

  def overrides(self, name: str) -> dict[str, Any]:
    """The fields of `scene_params`, `glyph` or `zh_mix` that differ from their defaults."""
    value = getattr(self, name)
    default = type(value)()
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if getattr(value, f.name) != getattr(default, f.name)}

  def to_config(self):
    """`config.data.synthetic` with these settings (override sets hold the changed fields)."""
    import ml_collections  # pylint: disable=import-outside-toplevel
    config = ml_collections.ConfigDict()
    for f in dataclasses.fields(self):
      if f.name in _OVERRIDE_SETS:
        setattr(config, f.name, ml_collections.ConfigDict(self.overrides(f.name)))
      else:
        setattr(config, f.name, getattr(self, f.name))
    return config
