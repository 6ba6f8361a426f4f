"""The synthetic source a config names: `config.data.synthetic.text` picks the text engine.

  'en'     English words, digits and random strings (`synthetic.SyntheticTextSource`);
  'zh_en'  mixed Chinese/English/digit lines (`zh_synthetic.ZhSyntheticSource`).

Both are grain random-access sources whose record i is a pure function of (seed, i).
"""

from __future__ import annotations

from crnn_jax.data import synthetic
from crnn_jax.data import zh_synthetic
from crnn_jax.data.charset import Charset

TEXT_KINDS = ("en", "zh_en")


def source_from_config(data_config, charset: Charset, *, seed: int, num_records: int):
  """The synthetic source that `config.data.synthetic.text` names (see TEXT_KINDS).

  Raises:
    ValueError: an unknown text kind.
  """
  kind = data_config.synthetic.get("text", "en")
  if kind == "en":
    return synthetic.SyntheticTextSource.from_config(data_config, charset, seed=seed,
                                                     num_records=num_records)
  if kind == "zh_en":
    return zh_synthetic.ZhSyntheticSource.from_config(data_config, charset, seed=seed,
                                                      num_records=num_records)
  raise ValueError(f"config.data.synthetic.text must be one of {TEXT_KINDS}, got {kind!r}")
