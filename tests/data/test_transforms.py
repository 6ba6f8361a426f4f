"""Tests of the per-example transforms, through `pipeline.train_dataset` over datasets on disk."""

import numpy as np

from crnn_jax.data import iterators
from crnn_jax.data import pipeline
from crnn_jax.data import records
from crnn_jax.data import transforms
from crnn_jax.models.crnn import output_lengths
from tests.data_helpers import charset_of, dataset_config, masked_texts, take, write_lmdb


def test_labels_too_long_for_their_frames_are_skipped_so_ctc_stays_finite(tmp_path):
  path = write_lmdb(tmp_path / "short", [("abcd", 8), ("aa", 8), ("aaa", 8), ("abc", 100),
                                         ("abcdefgh", 100)])
  config = dataset_config([path], resize="keep_ratio", shuffle=False, max_label_length=6,
                          bucket_window=1)
  config.batch_size = 2
  batch = take(pipeline.train_dataset(config, charset_of(config)), 1)[0]
  assert masked_texts(batch) == ["aa", "abc"]
  assert iterators.skip_counts(batch) == {"label_too_long": 2}
  for width, label, length in zip(batch["width"], batch["label"], batch["label_length"]):
    assert records.ctc_frames_needed(label[:length]) <= int(output_lengths(width))
  assert np.isfinite(batch["image"]).all() and np.abs(batch["image"]).max() <= 1.0
  assert transforms.max_label_length(config.data) == 6
