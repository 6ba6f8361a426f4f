"""The synthetic source a config names: `config.data.synthetic.text` picks the text engine.

  'en'     English words, digits and random strings (`source_en.SyntheticTextSource`);
  'zh_en'  mixed Chinese/English/digit lines (`source_zh.ZhSyntheticSource`).

Both are grain random-access sources whose record i is a pure function of (seed, i). A new
kind of text is a text sampler, a source class and a name here (and in `params.TEXT_KINDS`).
"""

from __future__ import annotations

from crnn_jax.text.charset import Charset
from crnn_jax.synth import source_en
from crnn_jax.synth import source_zh
from crnn_jax.synth.params import RenderParams


SOURCES = {"en": source_en.SyntheticTextSource, "zh_en": source_zh.ZhSyntheticSource}


def make_source(params: RenderParams, charset: Charset, *, seed: int, num_records: int):
  """The source of `params.text` (a key of SOURCES) with these settings."""
  return SOURCES[params.text](charset=charset, seed=seed, num_records=num_records, params=params)


def source_from_config(data_config, charset: Charset, *, seed: int, num_records: int):
  """The synthetic source that `config.data.synthetic` describes.

  Raises:
    ValueError: an unknown text kind, or another invalid setting.
  """
  return make_source(RenderParams.from_config(data_config.synthetic), charset, seed=seed,
                     num_records=num_records)
