"""Input pipelines (grain): the training and evaluation streams of a config.

  train_dataset   the training batches of one process, forever (checkpointable iterators);
  eval_batches    every record of a held-out split once, in order, in padded batches;
  make_source     the synthetic source of a split; `open_sources`, the datasets at some paths.

Batches are dicts of numpy arrays in the format of `transforms` (image: float32
`[B, 32, W, 1]` in [-1, 1]; width, label_length, mask, dropped: `[B]`; label: int32 `[B, L]`;
text: `[B]` strings), made by its per-example transforms and `Collate`; the checkpointable
datasets that skip, mix and bucket training examples are in `iterators`.

Sources (`config.data.source`):
  'synthetic'   the built-in renderer (train/eval/test splits are seeds);
  'auto', 'arrayrecord', 'lmdb', 'folder', 'mjsynth'   datasets on disk (see `sources`), the
                training ones in `data.train_paths`, the held-out ones in `data.eval_paths`.

Training on datasets: per path, random-access source -> this process's shard (records
`process_index::process_count`) -> seeded shuffle (reshuffled every epoch) -> decode, validate,
resize, normalize, encode -> bad records dropped and counted -> optional mixing of several
datasets with fixed per-batch counts -> width-bucketed batching -> grain worker processes.
Its batches carry one more key:
  skipped:      int32 `[B, len(transforms.SKIP_REASONS)]`: records skipped (per reason) just
                before each sample; `batch['skipped'].sum(0)` counts a batch's skips.
Held-out batches of datasets carry `skip_reason`: int32 `[B]`, the `transforms.SKIP_REASONS`
index of a record that does not count (-1 for good records and batch padding).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from absl import logging
import grain
import numpy as np

from crnn_jax.data import records
from crnn_jax.data import sources
from crnn_jax.text.charset import Charset
from crnn_jax.data.iterators import BucketBatch, RatioMix, SkipBadRecords, batch_counts
from crnn_jax.data.transforms import (Collate, DecodeExample, EncodeExample, EvalExample,
                                      charset_label_check)

SOURCES = ("synthetic", "auto") + sources.KINDS


def _synthetic_source(config, charset: Charset, *, seed: int, num_records: int):
  # Imported lazily: font discovery costs a little.
  from crnn_jax.synth import sources as synthetic_sources  # pylint: disable=import-outside-toplevel
  return synthetic_sources.source_from_config(config.data, charset, seed=seed,
                                              num_records=num_records)


def make_source(config, charset: Charset, split: str, num_records: int):
  """The random-access source of a split ('train', 'eval' or 'test')."""
  if config.data.source != "synthetic":
    raise ValueError(f"unknown data.source {config.data.source!r} (available: "
                     f"{', '.join(SOURCES)}); dataset sources are read by open_sources")
  seed = {"train": config.data.train_seed, "eval": config.data.eval_seed,
          "test": config.data.test_seed}[split]
  return _synthetic_source(config, charset, seed=seed, num_records=num_records)


def train_dataset(config, charset: Charset, *, process_index: int = 0,
                  process_count: int = 1) -> grain.IterDataset:
  """The training batches of one process, forever.

  Global batch s holds samples [s * B, (s + 1) * B) of the training source; process p takes its
  p-th contiguous slice of every global batch, so the global batch does not depend on the
  number of processes. Iterators of the result are checkpointable (`get_state`/`set_state`).

  Args:
    config: the run's config.
    charset: the charset.
    process_index, process_count: this process's position among the data-loading processes.

  Returns:
    An IterDataset of local batches of `config.batch_size // process_count` samples.
  """
  if config.batch_size % process_count:
    raise ValueError(f"batch_size {config.batch_size} does not divide by the "
                     f"{process_count} processes")
  if is_dataset_source(config.data):
    return dataset_train(config, charset, process_index=process_index,
                         process_count=process_count)
  local_batch = config.batch_size // process_count
  num_records = max(config.num_train_steps, 1) * config.batch_size
  source = make_source(config, charset, "train", num_records)
  ds = grain.MapDataset.source(source).map(
      EncodeExample(config.data, charset, config.text.unknown_chars))
  ds = ds.batch(local_batch, drop_remainder=True, batch_fn=Collate(config.data))
  ds = ds[process_index::process_count].repeat()
  ids = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if config.data.worker_count > 0:
    ids = ids.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.data.worker_count))
  return ids


def eval_paths(config, split: str) -> tuple[str, ...]:
  """The datasets of a held-out split of a dataset-sourced run (() when it is synthetic)."""
  if not is_dataset_source(config.data):
    return ()
  paths = _paths(config.data.get("test_paths", ())) if split == "test" else ()
  return paths or _paths(config.data.get("eval_paths", ()))


def describe_eval_data(config, split: str, num_records: int | None) -> str:
  """What `eval_batches(config, ..., split, num_records)` reads, in words for a log line."""
  paths = eval_paths(config, split)
  if paths:
    which = "every record" if num_records is None else f"the first {num_records} records"
    return f"{which} of {', '.join(paths)}"
  count = config.data.eval_size if num_records is None else num_records
  return f"{count} synthetic '{split}' images"


def eval_batches(config, charset: Charset, split: str = "eval", num_records: int | None = None,
                 *, process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Every record of an evaluation split once, in order, in padded batches of fixed size.

  The last batch is padded with masked samples; each process gets its contiguous share of every
  global batch (all processes see the same number of batches). With a dataset source, the
  split's datasets are `data.eval_paths` (for 'test': `data.test_paths` if set), all their
  records unless `num_records` is given; records that cannot be used (bad data, labels outside
  the charset) are masked out and their reason is in `skip_reason`.
  """
  if is_dataset_source(config.data):
    paths = eval_paths(config, split)
    if paths:
      source = open_sources(config.data, paths, split=config.data.get("eval_split", ""))
      yield from dataset_eval_batches(
          source, config.data, EvalExample(config.data, charset_label_check(charset)),
          config.eval_batch_size, num_records=num_records, process_index=process_index,
          process_count=process_count, read_threads=config.data.get("read_threads", 0))
      return
    logging.warning("data.source is %r but data.eval_paths is empty: evaluating on the "
                    "synthetic %r split instead", config.data.source, split)
    config = config.copy_and_resolve_references()
    config.data.source = "synthetic"
  num_records = config.data.eval_size if num_records is None else num_records
  source = make_source(config, charset, split, num_records)
  batch_size = config.eval_batch_size
  if batch_size % process_count:
    raise ValueError(f"eval_batch_size {batch_size} does not divide by the "
                     f"{process_count} processes")
  local = batch_size // process_count
  encode = EncodeExample(config.data, charset, config.text.unknown_chars)
  collate = Collate(config.data, batch_size=local)
  for start in range(0, num_records, batch_size):
    lo = start + process_index * local
    hi = min(lo + local, num_records, start + batch_size)
    examples = [encode(source[i]) for i in range(lo, max(lo, hi))]
    if not examples:  # This process's share of a partial last batch is empty.
      examples = [encode(source[start])]
      batch = collate(examples)
      batch["mask"][:] = False
      yield batch
      continue
    yield collate(examples)


# ---------------------------------------------------------------------------------------------
# Datasets on disk.


def is_dataset_source(data_config) -> bool:
  """Whether `data.source` names datasets on disk (rather than the synthetic renderer)."""
  source = data_config.source
  if source not in SOURCES:
    raise ValueError(f"unknown data.source {source!r} (available: {', '.join(SOURCES)})")
  return source != "synthetic"


def _paths(value) -> tuple[str, ...]:
  """Paths from a tuple/list or a comma-separated string."""
  if not value:
    return ()
  if isinstance(value, str):
    return tuple(p.strip() for p in value.split(",") if p.strip())
  return tuple(str(p) for p in value)


def open_sources(data_config, paths: Sequence[str], split: str = "") -> sources.DatasetSource:
  """Opens the datasets at `paths` (of kind `data.source`) as one source, in order.

  Raises:
    FileNotFoundError, ValueError: at start-up, naming the path that is missing or empty.
  """
  if not paths:
    raise ValueError("no dataset paths given")
  kind = data_config.source
  opened = [sources.open_dataset(p, kind, split) for p in paths]
  for source in opened:
    for note in source.notes:
      logging.warning("%s", note)
    logging.info("dataset %s: %s, %d records", source.path, source.kind, len(source))
  if len(opened) == 1:
    return opened[0]
  return sources.ConcatSource(opened, name="+".join(s.name for s in opened),
                              path=", ".join(s.path for s in opened), kind=opened[0].kind)


def shard_dataset(source, process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """This process's records of `source`: indices `process_index::process_count`.

  The shards of all processes are disjoint and cover the source.
  """
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  ds = grain.MapDataset.source(source)
  return ds[process_index::process_count] if process_count > 1 else ds


def training_skip_check(config_path: str) -> Callable[[dict[str, Any]], records.BadRecord | None]:
  """record -> why training with the config file at `config_path` would skip it, or None.

  Used by `crnn-jax data build/to-lmdb --for-config` to drop at build time what the run would
  drop at every epoch (`DecodeExample`'s checks with that config's charset and resizing).
  """
  from crnn_jax import config_file  # pylint: disable=g-import-not-at-top
  config = config_file.load(config_path)
  decode = DecodeExample(config.data, Charset.from_config(config.text))

  def check(record: dict[str, Any]) -> records.BadRecord | None:
    example = decode(record)
    if example["skip"] < 0:
      return None
    return records.BadRecord(records.REASONS[int(example["skip"])], example["detail"])

  return check


class _EvalIndexSource:
  """Records of `source` at `indices` (-1: batch padding, `{'padding': True}`)."""

  def __init__(self, source, indices: np.ndarray):
    self.source = source
    self.indices = indices

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, k: int):
    i = int(self.indices[k])
    return {"padding": True} if i < 0 else self.source[i]


def eval_indices(num_records: int, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> np.ndarray:
  """Record indices of this process's local batches, -1 for padding.

  Global batch b holds records [b * batch_size, (b + 1) * batch_size); process p takes its p-th
  contiguous slice of `batch_size // process_count`. Every process gets the same number of
  local batches, so partial last batches are padded (and masked) on every host.
  """
  if batch_size % process_count:
    raise ValueError(f"eval batch size {batch_size} does not divide by the {process_count} "
                     "processes")
  local = batch_size // process_count
  num_batches = -(-num_records // batch_size)
  starts = np.arange(num_batches)[:, None] * batch_size + process_index * local
  idx = starts + np.arange(local)[None, :]
  return np.where(idx < num_records, idx, -1).reshape(-1)


def dataset_eval_batches(source, data_config, transform: EvalExample, batch_size: int, *,
                         num_records: int | None = None, process_index: int = 0,
                         process_count: int = 1, read_threads: int = 0) -> Iterator[dict]:
  """Every record of `source` once, in order, in padded batches (see `eval_indices`).

  Args:
    source: random-access raw records.
    data_config: `config.data` (resizing and buckets).
    transform: the EvalExample applied to each record.
    batch_size: the global batch size.
    num_records: only the first records (default: all).
    process_index, process_count: this process among the data-loading processes.
    read_threads: threads decoding records (order is kept).

  Yields:
    Local batches of `batch_size // process_count` samples with `mask` and `skip_reason`.
  """
  n = len(source) if num_records is None else min(int(num_records), len(source))
  if n <= 0:
    raise ValueError(f"no records to evaluate in {getattr(source, 'path', source)}")
  indices = eval_indices(n, batch_size, process_index, process_count)
  local = batch_size // process_count
  ds = grain.MapDataset.source(_EvalIndexSource(source, indices)).map(transform)
  ds = ds.batch(local, batch_fn=Collate(data_config, batch_size=local))
  options = grain.ReadOptions(num_threads=read_threads,
                              prefetch_buffer_size=max(2 * read_threads, 2) if read_threads else 0)
  yield from ds.to_iter_dataset(options)


def _read_options(data_config) -> grain.ReadOptions:
  threads = int(data_config.get("read_threads", 0) or 0)
  return grain.ReadOptions(num_threads=threads,
                           prefetch_buffer_size=max(4 * threads, 16) if threads else 0)


def example_stream(source, data_config, charset: Charset, *, seed: int, process_index: int = 0,
                   process_count: int = 1, shuffle: bool = True,
                   repeat: bool = True) -> grain.IterDataset:
  """Good training examples of one dataset, this process's shard, shuffled every epoch."""
  ds = shard_dataset(source, process_index, process_count)
  shard_size = len(ds)
  if not shard_size:
    raise ValueError(f"dataset {source.path} has {len(source)} records, fewer than the "
                     f"{process_count} data-loading processes")
  if shuffle:
    ds = ds.shuffle(seed=seed)
  if repeat:
    ds = ds.repeat()
  ds = ds.map(DecodeExample(data_config, charset))
  it = ds.to_iter_dataset(_read_options(data_config))
  # Two epochs with nothing usable mean there is nothing usable at all.
  return SkipBadRecords(it, name=str(source.path), limit=2 * shard_size + 1,
                        max_logged=int(data_config.get("skip_log_examples", 5)))


def dataset_train(config, charset: Charset, *, process_index: int = 0,
                  process_count: int = 1) -> grain.IterDataset:
  """Training batches over `data.train_paths` (see the module docstring), forever.

  With `data.train_ratios`, each path is its own stream and every window of batches holds
  exactly the per-batch counts of each (every batch, when a window is one batch: fixed-width
  resizing or `data.bucket_window = 1`); without, the paths are concatenated into one dataset.

  Returns:
    An IterDataset of local batches of `config.batch_size // process_count` samples, whose
    iterators are checkpointable.
  """
  data = config.data
  if config.batch_size % process_count:
    raise ValueError(f"batch_size {config.batch_size} does not divide by the "
                     f"{process_count} processes")
  local_batch = config.batch_size // process_count
  paths = _paths(data.get("train_paths", ()))
  if not paths:
    raise ValueError(f"data.source is {data.source!r} but data.train_paths is empty")
  ratios = tuple(data.get("train_ratios", ()) or ())
  split = data.get("train_split", "")
  shuffle = bool(data.get("shuffle", True))
  if ratios:
    if len(ratios) != len(paths):
      raise ValueError(f"{len(ratios)} data.train_ratios for {len(paths)} data.train_paths")
    groups = [open_sources(data, [p], split) for p in paths]
  else:
    groups = [open_sources(data, paths, split)]
  streams = [example_stream(src, data, charset, seed=(data.train_seed + 7919 * k) % 2**32,
                            process_index=process_index, process_count=process_count,
                            shuffle=shuffle)
             for k, src in enumerate(groups)]
  it = streams[0]
  if len(streams) > 1:
    counts = batch_counts(ratios, local_batch)
    logging.info("mixing %s with %s samples per batch", [g.path for g in groups], counts)
    it = RatioMix(streams, counts)
  window = 1 if data.resize == "fixed" else int(data.get("bucket_window", 1) or 1)
  it = BucketBatch(it, batch_size=local_batch, collate=Collate(data), window=window,
                   seed=data.train_seed, shuffle=shuffle)
  if data.worker_count > 0:
    it = it.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=data.worker_count,
        per_worker_buffer_size=int(data.get("worker_buffer_size", 2) or 2)))
  return it


def owned_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """A batch's arrays copied out of grain's shared memory (`data.worker_count > 0`).

  A worker's batch arrives as views of shared-memory blocks, freed when the last view is;
  jax.device_put may keep such a view alive in a device array on CPU, and blocks still alive at
  exit are reported by Python's resource tracker as leaked. The copy costs one batch of memcpy.
  """
  return {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in batch.items()}
