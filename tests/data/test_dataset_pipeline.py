"""Tests of the grain pipeline over datasets on disk: determinism, shuffling, sharding, failures,
worker processes and evaluation batches."""

from absl import flags
import numpy as np
import pytest

from configs import tiny
from crnn_jax.data import pipeline
from crnn_jax.data import transforms
from tests.data_helpers import assert_same_batch, charset_of, dataset_config, masked_texts
from tests.data_helpers import take, write_lmdb


def test_batches_are_deterministic_and_seeded(words_lmdb):
  config = dataset_config([words_lmdb])
  charset = charset_of(config)
  first = take(pipeline.train_dataset(config, charset), 6)
  again = take(pipeline.train_dataset(config, charset), 6)
  for a, b in zip(first, again):
    assert_same_batch(a, b)
  assert first[0]["image"].shape == (8, 32, 100, 1) and first[0]["mask"].all()
  assert set(first[0]) == {"image", "width", "label", "label_length", "mask", "dropped",
                           "text", "skipped"}
  config.data.train_seed = 99
  other = take(pipeline.train_dataset(config, charset), 6)
  assert [masked_texts(b) for b in other] != [masked_texts(b) for b in first]
  # An epoch (64 records = 8 batches) holds every record once; the next is reshuffled.
  epochs = take(pipeline.train_dataset(config, charset), 16)
  one = sum((masked_texts(b) for b in epochs[:8]), [])
  two = sum((masked_texts(b) for b in epochs[8:]), [])
  assert sorted(one) == sorted(two) == sorted(f"w{i}" for i in range(64)) and one != two


def test_process_shards_are_disjoint_and_cover_the_data(words_lmdb):
  config = dataset_config([words_lmdb])
  source = pipeline.open_sources(config.data, [str(words_lmdb)])
  keys = [[r["key"] for r in pipeline.shard_dataset(source, p, 3)] for p in range(3)]
  assert sum(len(k) for k in keys) == 64
  assert set(keys[0]).isdisjoint(keys[1]) and set(keys[1]).isdisjoint(keys[2])
  assert set().union(*keys) == {source[i]["key"] for i in range(64)}
  # Through the whole pipeline: 2 processes with local batches of 4; an epoch of a shard is
  # 32 records = 8 local batches.
  seen = []
  for p in range(2):
    batches = take(pipeline.train_dataset(config, charset_of(config), process_index=p,
                                          process_count=2), 8)
    assert all(b["image"].shape[0] == 4 for b in batches)
    texts = sum((masked_texts(b) for b in batches), [])
    assert len(texts) == len(set(texts)) == 32
    seen.append(set(texts))
  assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == {f"w{i}" for i in range(64)}


def test_nothing_usable_or_missing_data_fails_clearly(tmp_path):
  path = write_lmdb(tmp_path / "junk", [("#", 50), ("$$", 50), ("!", 40)])
  config = dataset_config([path])
  with pytest.raises(ValueError, match="no usable record in dataset"):
    take(pipeline.train_dataset(config, charset_of(config)), 1)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    pipeline.train_dataset(dataset_config([tmp_path / "missing"]), charset_of(config))
  with pytest.raises(ValueError, match="train_paths is empty"):
    pipeline.train_dataset(dataset_config([]), charset_of(config))
  bad = dataset_config([path])
  bad.data.source = "parquet"
  with pytest.raises(ValueError, match="unknown data.source"):
    pipeline.train_dataset(bad, charset_of(config))


def test_eval_batches_visit_every_record_once_in_order(bad_lmdb):
  path, _, bad = bad_lmdb
  config = dataset_config([])
  config.data.eval_paths = (str(path),)
  config.eval_batch_size = 4
  charset = charset_of(config)
  batches = list(pipeline.eval_batches(config, charset))
  assert len(batches) == 4 and all(b["image"].shape[0] == 4 for b in batches)
  rows = [(t, m, r) for b in batches
          for t, m, r in zip(b["text"], b["mask"], b["skip_reason"])]
  assert [t for t, m, _ in rows if m] == ["hello", "world", "a1b2", "x", "ok"]
  reasons = {i: transforms.SKIP_REASONS[r] for i, (_, m, r) in enumerate(rows) if r >= 0}
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
  config = dataset_config([words_lmdb], resize="keep_ratio", bucket_window=2)
  charset = charset_of(config)
  in_process = take(pipeline.train_dataset(config, charset), 4)
  config.data.worker_count = 1
  it = iter(pipeline.train_dataset(config, charset))
  try:
    for a in in_process:
      assert_same_batch(a, next(it))
  finally:
    it.close()


def test_the_synthetic_source_keeps_its_batch_format():
  config = tiny.get_config()
  assert config.data.source == "synthetic"
  batch = take(pipeline.train_dataset(config, charset_of(config)), 1)[0]
  assert set(batch) == {"image", "width", "label", "label_length", "mask", "dropped", "text"}
  assert batch["image"].shape == (8, 32, 100, 1)


def test_dataset_training_without_eval_paths_evaluates_on_synthetic_images(words_lmdb):
  config = dataset_config([words_lmdb])
  config.eval_batch_size = 4
  batches = list(pipeline.eval_batches(config, charset_of(config), num_records=6))
  assert len(batches) == 2 and int(batches[0]["mask"].sum() + batches[1]["mask"].sum()) == 6
  assert "skip_reason" not in batches[0]  # The synthetic split's format.
  assert config.data.source == "auto"  # The caller's config is left alone.


def test_eval_data_is_described_as_what_is_read(words_lmdb):
  synthetic = tiny.get_config()
  assert pipeline.describe_eval_data(synthetic, "test", None) == "24 synthetic 'test' images"
  assert pipeline.describe_eval_data(synthetic, "eval", 7) == "7 synthetic 'eval' images"
  config = dataset_config([words_lmdb])
  config.data.eval_paths = (str(words_lmdb),)
  assert pipeline.describe_eval_data(config, "test", None) == f"every record of {words_lmdb}"
  assert (pipeline.describe_eval_data(config, "test", 2000)
          == f"the first 2000 records of {words_lmdb}")
