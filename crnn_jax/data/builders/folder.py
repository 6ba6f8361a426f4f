"""`crnn_folder`: a directory of images with a `gt.txt` of `path<TAB>label` lines to ArrayRecord."""

from __future__ import annotations

from crnn_jax.data.builders import base


class CrnnFolder(base.TextLineBuilder):
  """Text lines listed in `gt.txt` (the input format of deep-text-recognition-benchmark's
  `create_lmdb_dataset.py`); image paths are relative to the file's directory."""

  def open_source(self, paths):
    return base.open_concat(paths, "folder")
