"""`crnn_lmdb`: LMDB databases of crnn.pytorch / deep-text-recognition-benchmark to ArrayRecord."""

from __future__ import annotations

from crnn_jax.data.builders import base


class CrnnLmdb(base.TextLineBuilder):
  """Text lines from LMDB databases (`num-samples`, `image-%09d`, `label-%09d`, 1-indexed).

  Each path may be one database or a directory above several (all are read, in sorted order).
  """

  def open_source(self, paths):
    return base.open_concat(paths, "lmdb")
