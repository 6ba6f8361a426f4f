"""Tests of the checkpointable training datasets, through `pipeline.train_dataset` over datasets
on disk: bucketing, mixing, skipping bad records and restoring iterators."""

import json

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from crnn_jax.data import iterators
from crnn_jax.data import pipeline
from crnn_jax.data import transforms
from tests.data_helpers import assert_same_batch, charset_of, dataset_config, masked_texts
from tests.data_helpers import take, write_lmdb


def test_bucketing_pads_each_batch_only_to_its_bucket(words_lmdb):
  config = dataset_config([words_lmdb], resize="keep_ratio", bucket_widths=(48, 96, 160),
                          max_width=256, bucket_window=8)
  buckets = [48, 96, 160, 256]
  batches = take(pipeline.train_dataset(config, charset_of(config)), 16)
  mixed = []
  for batch in batches:
    widths = batch["width"]
    bucket = min(b for b in buckets if b >= widths.max())
    assert batch["image"].shape == (8, 32, bucket, 1)
    for image, width in zip(batch["image"], widths):
      assert not image[:, width:].any() and image[:, :width].any()
    mixed.append(len({min(b for b in buckets if b >= w) for w in widths}) > 1)
  # A window of 8 batches has at most one mixed batch per bucket boundary.
  assert sum(mixed[:8]) <= 3 and sum(mixed[8:]) <= 3
  assert {b["image"].shape[2] for b in batches} >= {96, 256}


def test_restored_iterator_continues_with_the_same_batches(tmp_path, words_lmdb):
  other = write_lmdb(tmp_path / "other", [(f"x{i}", 30 + 9 * i) for i in range(20)])
  config = dataset_config([words_lmdb, other], resize="keep_ratio", bucket_window=3,
                          train_ratios=(0.75, 0.25))
  dataset = pipeline.train_dataset(config, charset_of(config))
  it = iter(dataset)
  for _ in range(4):  # Stop inside a window.
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it) for _ in range(7)]
  restored = iter(dataset)
  restored.set_state(state)
  for a, b in zip(expected, [next(restored) for _ in range(7)]):
    assert_same_batch(a, b)
  # Through orbax, as train_lib saves it next to the train state.
  it = iter(dataset)
  for _ in range(5):
    next(it)
  manager = ocp.CheckpointManager(tmp_path / "ckpt", item_names=("data",))
  manager.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
  manager.wait_until_finished()
  expected = [next(it) for _ in range(4)]
  fresh = iter(dataset)
  manager.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
  for a, b in zip(expected, [next(fresh) for _ in range(4)]):
    assert_same_batch(a, b)
  manager.close()


def test_mixing_gives_exact_counts_per_batch(tmp_path):
  a = write_lmdb(tmp_path / "MJ", [(f"a{i}", 60 + i) for i in range(30)])
  b = write_lmdb(tmp_path / "ST", [(f"b{i}", 40 + 3 * i) for i in range(7)])
  config = dataset_config([a, b], train_ratios=(3, 1))
  for batch in take(pipeline.train_dataset(config, charset_of(config)), 10):
    texts = masked_texts(batch)
    assert sum(t[0] == "a" for t in texts) == 6 and sum(t[0] == "b" for t in texts) == 2
  config = dataset_config([a, b], train_ratios=(0.5, 0.5), resize="keep_ratio", bucket_window=2)
  batches = take(pipeline.train_dataset(config, charset_of(config)), 6)
  for k in range(0, 6, 2):  # Exact per window of 2 batches.
    texts = masked_texts(batches[k]) + masked_texts(batches[k + 1])
    assert sum(t[0] == "a" for t in texts) == 8
  assert iterators.batch_counts((0.5, 0.5), 64) == [32, 32]
  assert iterators.batch_counts((1, 1, 1), 8) == [3, 3, 2]
  assert iterators.batch_counts((0.9, 0.1), 10) == [9, 1]
  with pytest.raises(ValueError, match="too small"):
    iterators.batch_counts((0.99, 0.01), 8)
  with pytest.raises(ValueError, match="2 data.train_paths"):
    pipeline.train_dataset(dataset_config([a, b], train_ratios=(1,)), charset_of(config))


def test_bad_records_are_skipped_and_counted_per_reason(bad_lmdb):
  path, _, _ = bad_lmdb
  config = dataset_config([path], shuffle=False)
  config.batch_size = 5
  batches = take(pipeline.train_dataset(config, charset_of(config)), 2)
  # 'Straße' has a character outside the 36-character charset.
  assert (masked_texts(batches[0]) == masked_texts(batches[1])
          == ["hello", "world", "a1b2", "x", "ok"])
  first_epoch = {"undecodable_image": 2, "empty_image": 1, "empty_label": 1,
                 "unknown_chars": 1, "invalid_utf8": 1}
  assert iterators.skip_counts(batches[0]) == first_epoch
  # The records after the last good one are counted with the next epoch's first sample.
  assert iterators.skip_counts(batches[1]) == {**first_epoch, "missing_key": 1,
                                               "missing_record": 2}
  np.testing.assert_array_equal(batches[1]["skipped"][0],
                                [2, 1, 0, 0, 0, 0, 0, 0, 0, 0])
  assert transforms.SKIP_REASONS[:2] == ("missing_record", "missing_key")
