"""`crnn_mjsynth`: the Synth90k (MJSynth) folder layout to ArrayRecord."""

from __future__ import annotations

from crnn_jax.data.builders import base


class CrnnMjsynth(base.TextLineBuilder):
  """Text lines of MJSynth: an annotation file of relative image paths whose file names hold
  the label (`./2697/6/466_MONIKER_49537.jpg`). `source_split` picks
  `annotation_{train,val,test}.txt`; a path may also be an annotation file itself."""

  def open_source(self, paths):
    return base.open_concat(paths, "mjsynth", self.builder_config.source_split or "train")
