"""`crnn_synthetic`: N images pre-rendered by the built-in renderer, as a fixed shareable set.

Colour images of the 'scene' level are stored as grayscale PNGs, converted exactly as the
model's inputs are (`preprocess.to_grayscale`), so training on the built set sees the same
pixels as training on the fly.
"""

from __future__ import annotations

import dataclasses

from crnn_jax.text import charset as charset_lib
from crnn_jax.data import sources
from crnn_jax.data.builders import base
from crnn_jax.text.charset import Charset
from crnn_jax.synth.params import RenderParams


@dataclasses.dataclass(eq=False)
class SyntheticConfig(base.TextLineConfig):
  """What to render: `render` holds the renderer's settings (`crnn_jax.synth.params`).

  `alphabet` is the set of characters rendered (`charset`, inherited, still filters labels).
  """

  alphabet: str = charset_lib.ALPHANUMERIC_62
  num_records: int = 1000
  seed: int = 0
  render: RenderParams = RenderParams()


class CrnnSynthetic(base.TextLineBuilder):
  """Synthetic text lines rendered by crnn_jax.synth (record i depends only on (seed, i) and
  the installed fonts)."""

  BUILDER_CONFIG_CLASS = SyntheticConfig

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to read.
    source = self.open_source(())
    return {self.builder_config.split: self._generate_examples(source)}

  def open_source(self, paths):
    del paths
    from crnn_jax.synth import sources as synth_sources  # pylint: disable=g-import-not-at-top
    c = self.builder_config
    if c.num_records <= 0:
      raise ValueError(f"num_records must be positive, got {c.num_records}")
    source = synth_sources.make_source(c.render, Charset(c.alphabet), seed=c.seed,
                                       num_records=c.num_records)
    return sources.SyntheticRecords(source)
