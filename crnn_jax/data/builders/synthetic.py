"""`crnn_synthetic`: N images pre-rendered by the built-in renderer, as a fixed shareable set.

Colour images of the 'scene' level are stored as grayscale PNGs, converted exactly as the
model's inputs are (`preprocess.to_grayscale`), so training on the built set sees the same
pixels as training on the fly.
"""

from __future__ import annotations

import dataclasses
import json

from crnn_jax.data import charset as charset_lib
from crnn_jax.data import sources
from crnn_jax.data.builders import base
from crnn_jax.data.charset import Charset


@dataclasses.dataclass(eq=False)
class SyntheticConfig(base.TextLineConfig):
  """The renderer's settings (see `crnn_jax.data.synthetic.SyntheticTextSource`).

  `alphabet` is the set of characters rendered (`charset`, inherited, still filters labels).
  """

  alphabet: str = charset_lib.ALPHANUMERIC_62
  num_records: int = 1000
  seed: int = 0
  min_length: int = 1
  max_length: int = 16
  word_fraction: float = 0.7
  lower_fraction: float = 0.5
  upper_fraction: float = 0.25
  augment: str = "strong"
  font_size: int = 40
  fonts_dir: str = ""
  digit_fraction: float = 0.0
  font_pool: str = "standard"
  vocabulary: str = "web2"
  length_balance: float = 0.0
  punctuation_fraction: float = 0.0
  price_fraction: float = 0.0
  strong_fraction: float = 0.0
  backgrounds_dir: str = ""
  scene_params: str = ""  # JSON object of scene.SceneParams fields to change.
  text: str = "en"  # 'en' (SyntheticTextSource) or 'zh_en' (zh_synthetic.ZhSyntheticSource).
  zh_mix: str = ""  # 'zh_en': JSON object of zh_text.ZhTextMix fields to change.
  cjk_regions: str = "SC"  # 'zh_en': regional faces of Noto CJK kept, comma-separated.


class CrnnSynthetic(base.TextLineBuilder):
  """Synthetic text lines rendered by crnn_jax.data.synthetic (record i depends only on
  (seed, i) and the installed fonts)."""

  BUILDER_CONFIG_CLASS = SyntheticConfig

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to read.
    source = self.open_source(())
    return {self.builder_config.split: self._generate_examples(source)}

  def open_source(self, paths):
    del paths
    from crnn_jax.data import synthetic  # pylint: disable=g-import-not-at-top
    c = self.builder_config
    if c.num_records <= 0:
      raise ValueError(f"num_records must be positive, got {c.num_records}")
    scene_params = json.loads(c.scene_params) if c.scene_params else None
    if c.text == "zh_en":
      from crnn_jax.data import zh_synthetic  # pylint: disable=g-import-not-at-top
      source = zh_synthetic.ZhSyntheticSource(
          charset=Charset(c.alphabet), seed=c.seed, num_records=c.num_records,
          min_length=c.min_length, max_length=c.max_length,
          mix=json.loads(c.zh_mix) if c.zh_mix else None, augment=c.augment,
          strong_fraction=c.strong_fraction, font_size=c.font_size, fonts_dir=c.fonts_dir,
          regions=tuple(r for r in c.cjk_regions.split(",") if r),
          backgrounds_dir=c.backgrounds_dir, scene_params=scene_params)
      return sources.SyntheticRecords(source)
    if c.text != "en":
      from crnn_jax.data import synthetic_sources  # pylint: disable=g-import-not-at-top
      raise ValueError(f"text must be one of {synthetic_sources.TEXT_KINDS}, got {c.text!r}")
    source = synthetic.SyntheticTextSource(
        charset=Charset(c.alphabet), seed=c.seed, num_records=c.num_records,
        min_length=c.min_length, max_length=c.max_length, word_fraction=c.word_fraction,
        lower_fraction=c.lower_fraction, upper_fraction=c.upper_fraction, augment=c.augment,
        font_size=c.font_size, fonts_dir=c.fonts_dir, digit_fraction=c.digit_fraction,
        font_pool=c.font_pool, vocabulary=c.vocabulary, length_balance=c.length_balance,
        punctuation_fraction=c.punctuation_fraction, price_fraction=c.price_fraction,
        strong_fraction=c.strong_fraction,
        backgrounds_dir=c.backgrounds_dir, scene_params=scene_params)
    return sources.SyntheticRecords(source)
