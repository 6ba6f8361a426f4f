"""Tests of the grain pipeline over datasets on disk: sharding, shuffling, bucketing, mixing,
skipping bad records, checkpointing the iterator, and evaluation batches."""

import json

from absl import flags
import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import tiny
from crnn_jax.data import lmdb_io
from crnn_jax.data import pipeline
from crnn_jax.data import records
from crnn_jax.data.charset import Charset
from crnn_jax.models.crnn import output_lengths
from tests.data.conftest import encode, image_array


def _lmdb(path, items):
  """Writes [(label, width)] records of height-32 noise; returns the path."""
  with lmdb_io.LmdbWriter(path) as writer:
    for i, (label, width) in enumerate(items):
      writer.add(encode(image_array(i, width=width)), label)
  return path


@pytest.fixture
def words_lmdb(tmp_path):
  rng = np.random.default_rng(5)
  widths = rng.integers(16, 400, size=64)
  return _lmdb(tmp_path / "words", [(f"w{i}", int(w)) for i, w in enumerate(widths)])


def _config(paths, **data):
  config = tiny.get_config()
  config.data.source = "auto"
  config.data.train_paths = tuple(str(p) for p in paths)
  for key, value in data.items():
    setattr(config.data, key, value)
  return config


def _charset(config):
  return Charset.from_config(config.text)


def _take(dataset, n):
  it = iter(dataset)
  return [next(it) for _ in range(n)]


def _texts(batch):
  return [t for t, m in zip(batch["text"], batch["mask"]) if m]


def _same(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_batches_are_deterministic_and_seeded(words_lmdb):
  config = _config([words_lmdb])
  charset = _charset(config)
  first = _take(pipeline.train_dataset(config, charset), 6)
  again = _take(pipeline.train_dataset(config, charset), 6)
  for a, b in zip(first, again):
    _same(a, b)
  assert first[0]["image"].shape == (8, 32, 100, 1) and first[0]["mask"].all()
  assert set(first[0]) == {"image", "width", "label", "label_length", "mask", "dropped",
                           "text", "skipped"}
  config.data.train_seed = 99
  other = _take(pipeline.train_dataset(config, charset), 6)
  assert [_texts(b) for b in other] != [_texts(b) for b in first]
  # An epoch (64 records = 8 batches) holds every record once; the next is reshuffled.
  epochs = _take(pipeline.train_dataset(config, charset), 16)
  one = sum((_texts(b) for b in epochs[:8]), [])
  two = sum((_texts(b) for b in epochs[8:]), [])
  assert sorted(one) == sorted(two) == sorted(f"w{i}" for i in range(64)) and one != two


def test_process_shards_are_disjoint_and_cover_the_data(words_lmdb):
  config = _config([words_lmdb])
  source = pipeline.open_sources(config.data, [str(words_lmdb)])
  keys = [[r["key"] for r in pipeline.shard_dataset(source, p, 3)] for p in range(3)]
  assert sum(len(k) for k in keys) == 64
  assert set(keys[0]).isdisjoint(keys[1]) and set(keys[1]).isdisjoint(keys[2])
  assert set().union(*keys) == {source[i]["key"] for i in range(64)}
  # Through the whole pipeline: 2 processes with local batches of 4; an epoch of a shard is
  # 32 records = 8 local batches.
  seen = []
  for p in range(2):
    batches = _take(pipeline.train_dataset(config, _charset(config), process_index=p,
                                           process_count=2), 8)
    assert all(b["image"].shape[0] == 4 for b in batches)
    texts = sum((_texts(b) for b in batches), [])
    assert len(texts) == len(set(texts)) == 32
    seen.append(set(texts))
  assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == {f"w{i}" for i in range(64)}


def test_bucketing_pads_each_batch_only_to_its_bucket(words_lmdb):
  config = _config([words_lmdb], resize="keep_ratio", bucket_widths=(48, 96, 160),
                   max_width=256, bucket_window=8)
  buckets = [48, 96, 160, 256]
  batches = _take(pipeline.train_dataset(config, _charset(config)), 16)
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
  other = _lmdb(tmp_path / "other", [(f"x{i}", 30 + 9 * i) for i in range(20)])
  config = _config([words_lmdb, other], resize="keep_ratio", bucket_window=3,
                   train_ratios=(0.75, 0.25))
  dataset = pipeline.train_dataset(config, _charset(config))
  it = iter(dataset)
  for _ in range(4):  # Stop inside a window.
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  expected = [next(it) for _ in range(7)]
  restored = iter(dataset)
  restored.set_state(state)
  for a, b in zip(expected, [next(restored) for _ in range(7)]):
    _same(a, b)
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
    _same(a, b)
  manager.close()


def test_mixing_gives_exact_counts_per_batch(tmp_path):
  a = _lmdb(tmp_path / "MJ", [(f"a{i}", 60 + i) for i in range(30)])
  b = _lmdb(tmp_path / "ST", [(f"b{i}", 40 + 3 * i) for i in range(7)])
  config = _config([a, b], train_ratios=(3, 1))
  for batch in _take(pipeline.train_dataset(config, _charset(config)), 10):
    texts = _texts(batch)
    assert sum(t[0] == "a" for t in texts) == 6 and sum(t[0] == "b" for t in texts) == 2
  config = _config([a, b], train_ratios=(0.5, 0.5), resize="keep_ratio", bucket_window=2)
  batches = _take(pipeline.train_dataset(config, _charset(config)), 6)
  for k in range(0, 6, 2):  # Exact per window of 2 batches.
    texts = _texts(batches[k]) + _texts(batches[k + 1])
    assert sum(t[0] == "a" for t in texts) == 8
  assert pipeline.batch_counts((0.5, 0.5), 64) == [32, 32]
  assert pipeline.batch_counts((1, 1, 1), 8) == [3, 3, 2]
  assert pipeline.batch_counts((0.9, 0.1), 10) == [9, 1]
  with pytest.raises(ValueError, match="too small"):
    pipeline.batch_counts((0.99, 0.01), 8)
  with pytest.raises(ValueError, match="2 data.train_paths"):
    pipeline.train_dataset(_config([a, b], train_ratios=(1,)), _charset(config))


def test_bad_records_are_skipped_and_counted_per_reason(bad_lmdb):
  path, _, _ = bad_lmdb
  config = _config([path], shuffle=False)
  config.batch_size = 5
  batches = _take(pipeline.train_dataset(config, _charset(config)), 2)
  # 'Straße' has a character outside the 36-character charset.
  assert _texts(batches[0]) == _texts(batches[1]) == ["hello", "world", "a1b2", "x", "ok"]
  first_epoch = {"undecodable_image": 2, "empty_image": 1, "empty_label": 1,
                 "unknown_chars": 1, "invalid_utf8": 1}
  assert pipeline.skip_counts(batches[0]) == first_epoch
  # The records after the last good one are counted with the next epoch's first sample.
  assert pipeline.skip_counts(batches[1]) == {**first_epoch, "missing_key": 1,
                                              "missing_record": 2}
  np.testing.assert_array_equal(batches[1]["skipped"][0],
                                [2, 1, 0, 0, 0, 0, 0, 0, 0, 0])
  assert pipeline.SKIP_REASONS[:2] == ("missing_record", "missing_key")


def test_labels_too_long_for_their_frames_are_skipped_so_ctc_stays_finite(tmp_path):
  path = _lmdb(tmp_path / "short", [("abcd", 8), ("aa", 8), ("aaa", 8), ("abc", 100),
                                    ("abcdefgh", 100)])
  config = _config([path], resize="keep_ratio", shuffle=False, max_label_length=6,
                   bucket_window=1)
  config.batch_size = 2
  batch = _take(pipeline.train_dataset(config, _charset(config)), 1)[0]
  assert _texts(batch) == ["aa", "abc"]
  assert pipeline.skip_counts(batch) == {"label_too_long": 2}
  for width, label, length in zip(batch["width"], batch["label"], batch["label_length"]):
    assert records.ctc_frames_needed(label[:length]) <= int(output_lengths(width))
  assert np.isfinite(batch["image"]).all() and np.abs(batch["image"]).max() <= 1.0
  assert pipeline.max_label_length(config.data) == 6


def test_nothing_usable_or_missing_data_fails_clearly(tmp_path):
  path = _lmdb(tmp_path / "junk", [("#", 50), ("$$", 50), ("!", 40)])
  config = _config([path])
  with pytest.raises(ValueError, match="no usable record in dataset"):
    _take(pipeline.train_dataset(config, _charset(config)), 1)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    pipeline.train_dataset(_config([tmp_path / "missing"]), _charset(config))
  with pytest.raises(ValueError, match="train_paths is empty"):
    pipeline.train_dataset(_config([]), _charset(config))
  bad = _config([path])
  bad.data.source = "parquet"
  with pytest.raises(ValueError, match="unknown data.source"):
    pipeline.train_dataset(bad, _charset(config))


def test_eval_batches_visit_every_record_once_in_order(bad_lmdb):
  path, _, bad = bad_lmdb
  config = _config([])
  config.data.eval_paths = (str(path),)
  config.eval_batch_size = 4
  charset = _charset(config)
  batches = list(pipeline.eval_batches(config, charset))
  assert len(batches) == 4 and all(b["image"].shape[0] == 4 for b in batches)
  rows = [(t, m, r) for b in batches
          for t, m, r in zip(b["text"], b["mask"], b["skip_reason"])]
  assert [t for t, m, _ in rows if m] == ["hello", "world", "a1b2", "x", "ok"]
  reasons = {i: pipeline.SKIP_REASONS[r] for i, (_, m, r) in enumerate(rows) if r >= 0}
  assert reasons == {**bad, 7: "unknown_chars"}
  assert [r for _, m, r in rows[14:]] == [-1, -1] and not any(m for _, m, _ in rows[14:])
  # Two hosts: the same number of batches, half as wide, together the same records in order.
  parts = [list(pipeline.eval_batches(config, charset, process_index=p, process_count=2))
           for p in range(2)]
  assert [len(p) for p in parts] == [4, 4]
  merged = [t for b0, b1 in zip(*parts) for t, m in
            zip(np.concatenate([b0["text"], b1["text"]]),
                np.concatenate([b0["mask"], b1["mask"]])) if m]
  assert merged == ["hello", "world", "a1b2", "x", "ok"]
  np.testing.assert_array_equal(pipeline.eval_indices(5, 4, 0, 2), [0, 1, 4, -1])
  np.testing.assert_array_equal(pipeline.eval_indices(5, 4, 1, 2), [2, 3, -1, -1])


def test_worker_processes_give_the_same_batches(words_lmdb):
  flags.FLAGS.mark_as_parsed()  # grain workers read absl flags.
  config = _config([words_lmdb], resize="keep_ratio", bucket_window=2)
  charset = _charset(config)
  in_process = _take(pipeline.train_dataset(config, charset), 4)
  config.data.worker_count = 1
  it = iter(pipeline.train_dataset(config, charset))
  try:
    for a in in_process:
      _same(a, next(it))
  finally:
    it.close()


def test_the_synthetic_source_keeps_its_batch_format():
  config = tiny.get_config()
  assert config.data.source == "synthetic"
  batch = _take(pipeline.train_dataset(config, _charset(config)), 1)[0]
  assert set(batch) == {"image", "width", "label", "label_length", "mask", "dropped", "text"}
  assert batch["image"].shape == (8, 32, 100, 1)


def test_dataset_training_without_eval_paths_evaluates_on_synthetic_images(words_lmdb):
  config = _config([words_lmdb])
  config.eval_batch_size = 4
  batches = list(pipeline.eval_batches(config, _charset(config), num_records=6))
  assert len(batches) == 2 and int(batches[0]["mask"].sum() + batches[1]["mask"].sum()) == 6
  assert "skip_reason" not in batches[0]  # The synthetic split's format.
  assert config.data.source == "auto"  # The caller's config is left alone.


def test_eval_data_is_described_as_what_is_read(words_lmdb):
  synthetic = tiny.get_config()
  assert pipeline.describe_eval_data(synthetic, "test", None) == "24 synthetic 'test' images"
  assert pipeline.describe_eval_data(synthetic, "eval", 7) == "7 synthetic 'eval' images"
  config = _config([words_lmdb])
  config.data.eval_paths = (str(words_lmdb),)
  assert pipeline.describe_eval_data(config, "test", None) == f"every record of {words_lmdb}"
  assert (pipeline.describe_eval_data(config, "test", 2000)
          == f"the first 2000 records of {words_lmdb}")
