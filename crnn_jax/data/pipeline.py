"""Input pipelines (grain): examples -> encoded, resized samples -> padded batches.

A batch is a dict of numpy arrays:
  image:        float32 `[B, 32, W, 1]` in [-1, 1], zero beyond each sample's width.
  width:        int32 `[B]` true widths.
  label:        int32 `[B, L]` class ids, 0 beyond `label_length`.
  label_length: int32 `[B]`.
  mask:         bool `[B]` samples that count (False for dropped labels and batch padding).
  dropped:      int32 `[B]` 1 where the label was dropped (characters outside the charset).
  text:         `[B]` unicode ground-truth strings (normalized by the charset), host only.

Sources (`config.data.source`):
  'synthetic'   the built-in renderer (train/eval/test splits are seeds);
  'auto', 'arrayrecord', 'lmdb', 'folder', 'mjsynth'   datasets on disk (see `sources`), the
                training ones in `data.train_paths`, the held-out ones in `data.eval_paths`.

Training on datasets: per path, random-access source -> this process's shard (records
`process_index::process_count`) -> seeded shuffle (reshuffled every epoch) -> decode, validate,
resize, normalize, encode -> bad records dropped and counted -> optional mixing of several
datasets with fixed per-batch counts -> width-bucketed batching -> grain worker processes.
Its batches carry one more key:
  skipped:      int32 `[B, len(SKIP_REASONS)]`: records skipped (per reason) just before
                each sample; `batch['skipped'].sum(0)` counts a batch's skips.
Held-out batches of datasets carry `skip_reason`: int32 `[B]`, the `SKIP_REASONS` index
of a record that does not count (-1 for good records and batch padding).
"""

from __future__ import annotations

import bisect
import collections
from typing import Any, Callable, Iterator, Sequence

from absl import logging
import grain
import numpy as np

from crnn_jax.data import preprocess
from crnn_jax.data import records
from crnn_jax.data import sources
from crnn_jax.data.charset import Charset
from crnn_jax.models.crnn import output_lengths

SOURCES = ("synthetic", "auto") + sources.KINDS
SKIP_REASONS = records.REASONS


def max_width(data_config) -> int:
  """Widest image the pipeline produces."""
  return data_config.fixed_width if data_config.resize == "fixed" else data_config.max_width


def max_label_length(data_config) -> int:
  """Longest label that can fit the frames of the widest image (longer ones are dropped).

  A positive `data_config.max_label_length` lowers the limit.
  """
  frames = int(output_lengths(max_width(data_config)))
  limit = int(data_config.get("max_label_length", 0) or 0)
  return min(frames, limit) if limit > 0 else frames


class EncodeExample:
  """Resizes, normalizes and encodes one `{'image': uint8 [H, W], 'text': str}` example."""

  def __init__(self, data_config, charset: Charset, unknown_chars: str = "drop"):
    if unknown_chars not in ("drop", "error"):
      raise ValueError(f"text.unknown_chars must be 'drop' or 'error', got {unknown_chars!r}")
    if data_config.resize not in ("fixed", "keep_ratio"):
      raise ValueError(f"data.resize must be 'fixed' or 'keep_ratio', got {data_config.resize!r}")
    self.height = data_config.height
    self.fixed_width = data_config.fixed_width if data_config.resize == "fixed" else None
    self.max_width = data_config.max_width
    self.max_label_length = max_label_length(data_config)
    self.charset = charset
    self.unknown_chars = unknown_chars

  def __call__(self, example: dict[str, Any]) -> dict[str, Any]:
    image = preprocess.resize(preprocess.to_grayscale(example["image"]), height=self.height,
                              fixed_width=self.fixed_width, max_width=self.max_width)
    text = self.charset.normalize(example["text"])
    label = np.zeros((self.max_label_length,), np.int32)
    dropped = not self.charset.can_encode(text)
    if dropped and self.unknown_chars == "error":
      self.charset.encode(text)  # Raises UnknownCharacterError naming the label.
    ids = [] if dropped else self.charset.encode(text)[:self.max_label_length]
    label[:len(ids)] = ids
    # A label longer than max_label_length cannot fit the frames: the loss masks it out.
    length = len(ids) if len(text) <= self.max_label_length else 0
    return dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]), label=label,
                label_length=np.int32(length), mask=not dropped, dropped=np.int32(dropped),
                text=text)


# Optional per-sample keys and their dtypes (see the module docstring).
_EXTRA_KEYS = {"skipped": np.int32, "skip_reason": np.int32, "altered": np.int32, "key": object}


class Collate:
  """Pads a list of encoded examples into a batch (see the module docstring).

  With fixed-width resizing every batch has that width; with keep-ratio resizing a batch is
  padded to the smallest bucket width that holds its widest image.
  """

  def __init__(self, data_config, batch_size: int | None = None):
    self.fixed = data_config.resize == "fixed"
    self.fixed_width = data_config.fixed_width
    self.buckets = sorted(set(data_config.bucket_widths) | {data_config.max_width})
    self.batch_size = batch_size  # If set, partial batches are padded with masked samples.

  def bucket_width(self, width: int) -> int:
    if self.fixed:
      return self.fixed_width
    return self.buckets[min(bisect.bisect_left(self.buckets, width), len(self.buckets) - 1)]

  def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    examples = list(examples)
    width = self.bucket_width(max(int(e["width"]) for e in examples))
    batch = dict(
        image=preprocess.pad_to_width([e["image"] for e in examples], width),
        width=np.array([e["width"] for e in examples], np.int32),
        label=np.stack([e["label"] for e in examples]).astype(np.int32),
        label_length=np.array([e["label_length"] for e in examples], np.int32),
        mask=np.array([e["mask"] for e in examples], bool),
        dropped=np.array([e["dropped"] for e in examples], np.int32),
        text=np.array([e["text"] for e in examples], dtype=object),
    )
    for key, dtype in _EXTRA_KEYS.items():
      if key in examples[0]:
        batch[key] = np.stack([np.asarray(e[key], dtype) for e in examples])
    if self.batch_size and len(examples) < self.batch_size:
      batch = pad_batch(batch, self.batch_size)
    return batch


def pad_batch(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads a partial batch to `size` samples with masked-out copies of zeros."""
  pad = size - len(batch["mask"])
  out = {}
  for key, value in batch.items():
    filler = np.zeros((pad,) + value.shape[1:], value.dtype)
    if key in ("text", "key"):
      filler = np.array([""] * pad, dtype=object)
    elif key == "skip_reason":
      filler = np.full((pad,), -1, np.int32)
    elif key == "width":
      filler = np.full((pad,), preprocess.MIN_WIDTH, np.int32)
    out[key] = np.concatenate([value, filler])
  return out


def _synthetic_source(config, charset: Charset, *, seed: int, num_records: int):
  from crnn_jax.data import synthetic  # Imported lazily: font discovery costs a little.
  return synthetic.source_from_config(config.data, charset, seed=seed, num_records=num_records)


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


def charset_label_check(charset: Charset) -> Callable[[str], str]:
  """A label check for held-out data: labels the charset cannot encode do not count."""

  def check(text: str) -> str:
    text = charset.normalize(text)
    unknown = charset.unknown_chars(text)
    if unknown:
      raise records.BadRecord(records.UNKNOWN_CHARS, f"label {text!r} has " + ", ".join(
          f"{c!r} (U+{ord(c):04X})" for c in unknown[:5]))
    return text

  return check


class DecodeExample:
  """Raw record -> an encoded training example, or a skip marker `{'skip': reason, 'key': ..}`.

  Examples have the fields of `EncodeExample` plus `skip = -1`. A record is skipped (see
  `records.REASONS`) when it is missing or cannot be decoded, when its label is empty, has
  characters outside the charset or is longer than `max_label_length`, or when CTC cannot
  align it to the frames of its resized image (its length plus repeated neighbours).
  """

  def __init__(self, data_config, charset: Charset):
    self.encode = EncodeExample(data_config, charset)
    self.charset = charset
    self.max_label_length = max_label_length(data_config)

  def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
    enc = self.encode
    try:
      image, text = records.parse_record(record)
      text = self.charset.normalize(text)
      unknown = self.charset.unknown_chars(text)
      if unknown:
        raise records.BadRecord(records.UNKNOWN_CHARS, f"label {text!r} has " + ", ".join(
            f"{c!r} (U+{ord(c):04X})" for c in unknown[:5]))
      ids = self.charset.encode(text)
      if len(ids) > self.max_label_length:
        raise records.BadRecord(records.LABEL_TOO_LONG,
                                f"{len(ids)} > {self.max_label_length} characters")
      image = preprocess.resize(image, height=enc.height, fixed_width=enc.fixed_width,
                                max_width=enc.max_width)
      frames = int(output_lengths(image.shape[1]))
      needed = records.ctc_frames_needed(ids)
      if needed > frames:
        raise records.BadRecord(records.LABEL_TOO_LONG, f"label {text!r} needs {needed} "
                                f"frames, the {image.shape[1]}-pixel image has {frames}")
    except records.BadRecord as e:
      return dict(skip=np.int32(records.REASON_INDEX[e.reason]),
                  key=str(record.get("key", "?")), detail=e.detail)
    label = np.zeros((self.max_label_length,), np.int32)
    label[:len(ids)] = ids
    return dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]), label=label,
                label_length=np.int32(len(ids)), mask=True, dropped=np.int32(0), text=text,
                skip=np.int32(-1))


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


class EvalExample:
  """Raw record -> a held-out example; bad records become masked blank examples.

  Examples have the fields of `EncodeExample` (with empty labels: evaluation compares texts),
  `skip_reason` (-1, or the `SKIP_REASONS` index of why the record does not count) and, with
  `with_key`, the record's `key`.
  """

  def __init__(self, data_config, label_check: Callable[[str], str] | None = None, *,
               with_key: bool = False):
    """Args:
      data_config: `config.data` (resizing).
      label_check: maps a label to the text compared with predictions, or to (that text,
        whether the check altered it: the example then has `altered`, 0 or 1), or raises
        BadRecord when the record must not count.
      with_key: add the record key (host only).
    """
    self.height = data_config.height
    self.fixed_width = data_config.fixed_width if data_config.resize == "fixed" else None
    self.max_width = data_config.max_width
    self.label_length = max_label_length(data_config)
    self.label_check = label_check
    self.with_key = with_key

  def blank(self, reason: int, key: str = "") -> dict[str, Any]:
    width = self.fixed_width or preprocess.MIN_WIDTH
    example = dict(image=np.zeros((self.height, width), np.float32), width=np.int32(width),
                   label=np.zeros((self.label_length,), np.int32), label_length=np.int32(0),
                   mask=False, dropped=np.int32(0), text="", skip_reason=np.int32(reason),
                   altered=np.int32(0))
    if self.with_key:
      example["key"] = key
    return example

  def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
    if record.get("padding"):  # Batch padding.
      return self.blank(-1)
    key = str(record.get("key", "?"))
    try:
      image, text = records.parse_record(record)
      altered = 0
      if self.label_check is not None:
        text = self.label_check(text)
        if isinstance(text, tuple):
          text, altered = text
    except records.BadRecord as e:
      return self.blank(records.REASON_INDEX[e.reason], key)
    image = preprocess.resize(image, height=self.height, fixed_width=self.fixed_width,
                              max_width=self.max_width)
    example = dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]),
                   label=np.zeros((self.label_length,), np.int32), label_length=np.int32(0),
                   mask=True, dropped=np.int32(0), text=text, skip_reason=np.int32(-1),
                   altered=np.int32(altered))
    if self.with_key:
      example["key"] = key
    return example


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


# --- Training iterators ----------------------------------------------------------------------


class _SkipBadIterator(grain.DatasetIterator):
  """Drops skip markers, counting them on the next good example (`skipped` field)."""

  def __init__(self, parent, *, name: str, limit: int, max_logged: int):
    super().__init__(parent)
    self._name = name
    self._limit = limit
    self._max_logged = max_logged
    self._logged = collections.Counter()

  def __next__(self):
    pending = np.zeros((len(SKIP_REASONS),), np.int32)
    run = 0
    while True:
      example = next(self._parent)
      reason = int(example["skip"])
      if reason < 0:
        example = dict(example)
        del example["skip"]
        example["skipped"] = pending
        return example
      pending[reason] += 1
      run += 1
      name = SKIP_REASONS[reason]
      if self._logged[name] < self._max_logged:
        self._logged[name] += 1
        logging.warning("skipping record %s of %s: %s %s", example["key"], self._name, name,
                        example.get("detail", ""))
      if run >= self._limit:
        counts = ", ".join(f"{SKIP_REASONS[r]} {c}" for r, c in enumerate(pending) if c)
        raise ValueError(f"no usable record in dataset {self._name}: {run} records in a row "
                         f"were skipped ({counts}); check the data and the charset / "
                         "data.max_label_length / resize settings")

  def get_state(self):
    return self._parent.get_state()

  def set_state(self, state):
    self._parent.set_state(state)


class SkipBadRecords(grain.IterDataset):
  """Drops the skip markers of `DecodeExample`; good examples get a `skipped` count vector.

  Raises ValueError when `limit` records in a row are bad (the data holds nothing usable).
  """

  def __init__(self, parent: grain.IterDataset, *, name: str = "", limit: int = 1 << 30,
               max_logged: int = 5):
    super().__init__(parent)
    self._kwargs = dict(name=name, limit=limit, max_logged=max_logged)

  def __iter__(self):
    return _SkipBadIterator(self._parent.__iter__(), **self._kwargs)


def batch_counts(ratios: Sequence[float], batch_size: int) -> list[int]:
  """Samples per batch from each dataset: proportional to `ratios`, summing to batch_size."""
  ratios = np.asarray(ratios, np.float64)
  if ratios.ndim != 1 or not len(ratios) or (ratios <= 0).any():
    raise ValueError(f"data.train_ratios must be positive numbers, got {tuple(ratios)}")
  exact = ratios / ratios.sum() * batch_size
  counts = np.floor(exact).astype(int)
  for i in np.argsort(-(exact - counts), kind="stable")[:batch_size - counts.sum()]:
    counts[i] += 1
  if (counts == 0).any():
    raise ValueError(f"batch size {batch_size} is too small for the ratios {tuple(ratios)}: "
                     f"samples per batch {counts.tolist()}")
  return counts.tolist()


def mix_schedule(counts: Sequence[int]) -> list[int]:
  """Which dataset feeds each position of a batch: `counts[i]` positions each, spread evenly."""
  slots = [((k + 0.5) / n, i) for i, n in enumerate(counts) for k in range(n)]
  return [i for _, i in sorted(slots)]


class _MixIterator(grain.DatasetIterator):

  def __init__(self, parents, schedule):
    super().__init__(parents)
    self._schedule = schedule
    self._position = 0

  def __next__(self):
    example = next(self._parents[self._schedule[self._position]])
    self._position = (self._position + 1) % len(self._schedule)
    return example

  def get_state(self):
    return dict(parents=[p.get_state() for p in self._parents], position=self._position)

  def set_state(self, state):
    for parent, parent_state in zip(self._parents, state["parents"]):
      parent.set_state(parent_state)
    self._position = int(state["position"])


class RatioMix(grain.IterDataset):
  """Interleaves datasets so that every `sum(counts)` consecutive examples hold exactly
  `counts[i]` from dataset i (the usual MJ 0.5 + ST 0.5 batches)."""

  def __init__(self, parents: Sequence[grain.IterDataset], counts: Sequence[int]):
    super().__init__(list(parents))
    if len(parents) != len(counts):
      raise ValueError(f"{len(parents)} datasets for {len(counts)} counts")
    self._schedule = mix_schedule(counts)

  def __iter__(self):
    return _MixIterator([p.__iter__() for p in self._parents], self._schedule)


class _BucketIterator(grain.DatasetIterator):
  """See BucketBatch. State: the parent's state at the start of the current window, the
  window's index and the number of its batches already returned."""

  def __init__(self, parent, *, batch_size: int, window: int, collate: Collate, seed: int,
               shuffle: bool, drop_remainder: bool):
    super().__init__(parent)
    self._batch_size = batch_size
    self._window_batches = window
    self._collate = collate
    self._seed = seed
    self._shuffle = shuffle
    self._drop_remainder = drop_remainder
    self._window = -1
    self._batches = None
    self._emitted = 0
    self._start_state = None
    self._exhausted = False

  def _group(self, examples: list[dict], window: int) -> list[list[int]]:
    """Indices of each batch: full batches of one bucket, then the rest sorted by width."""
    size = self._batch_size
    by_bucket = collections.defaultdict(list)
    for i, example in enumerate(examples):
      by_bucket[self._collate.bucket_width(int(example["width"]))].append(i)
    batches, rest = [], []
    for bucket in sorted(by_bucket):
      members = by_bucket[bucket]
      full = len(members) // size * size
      batches.extend(members[k:k + size] for k in range(0, full, size))
      rest.extend(members[full:])
    rest.sort(key=lambda i: (int(examples[i]["width"]), i))
    for k in range(0, len(rest), size):
      chunk = rest[k:k + size]
      if len(chunk) == size or not self._drop_remainder:
        batches.append(chunk)
    if self._shuffle and len(batches) > 1:
      rng = np.random.default_rng([self._seed, window])
      batches = [batches[j] for j in rng.permutation(len(batches))]
    else:
      batches.sort(key=min)
    return batches

  def _fill(self) -> None:
    self._start_state = self._parent.get_state()
    self._window += 1
    examples = []
    wanted = self._window_batches * self._batch_size
    while len(examples) < wanted:
      try:
        examples.append(next(self._parent))
      except StopIteration:
        self._exhausted = True
        break
    groups = self._group(examples, self._window)
    self._batches = [self._collate([examples[i] for i in group]) for group in groups]
    self._emitted = 0

  def __next__(self):
    while self._batches is None or self._emitted >= len(self._batches):
      if self._exhausted:
        raise StopIteration
      self._fill()
    batch = self._batches[self._emitted]
    self._emitted += 1
    return batch

  def get_state(self):
    if self._batches is None or self._emitted >= len(self._batches):
      return dict(parent=self._parent.get_state(), window=self._window + 1, emitted=0)
    return dict(parent=self._start_state, window=self._window, emitted=self._emitted)

  def set_state(self, state):
    self._parent.set_state(state["parent"])
    self._window = int(state["window"]) - 1
    self._batches = None
    self._exhausted = False
    emitted = int(state["emitted"])
    if emitted:
      self._fill()  # Re-reads the window the saved iterator was in.
      self._emitted = emitted


class BucketBatch(grain.IterDataset):
  """Batches examples by width bucket.

  The stream is cut into windows of `window * batch_size` examples. In each window, examples
  are grouped by bucket (the smallest of `Collate.buckets` that holds their width) into full
  batches; the few left over are sorted by width and batched together. Each batch is padded
  only to the bucket of its widest sample (see `Collate`); with shuffling the order of a
  window's batches is permuted (seeded by `seed` and the window's index). With fixed-width
  resizing, or `window=1`, batches keep the stream's order.

  Iterators are checkpointable: a restored iterator re-reads the current window and
  continues with the same batches.
  """

  def __init__(self, parent: grain.IterDataset, *, batch_size: int, collate: Collate,
               window: int = 1, seed: int = 0, shuffle: bool = True,
               drop_remainder: bool = True):
    super().__init__(parent)
    if batch_size <= 0 or window <= 0:
      raise ValueError(f"batch_size and window must be positive, got {batch_size}, {window}")
    self._kwargs = dict(batch_size=batch_size, window=window, collate=collate, seed=seed,
                        shuffle=shuffle, drop_remainder=drop_remainder)

  def __iter__(self):
    return _BucketIterator(self._parent.__iter__(), **self._kwargs)


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


def skip_counts(batch: dict[str, np.ndarray]) -> dict[str, int]:
  """Records skipped (per reason, non-zero only) while a dataset batch was assembled."""
  if "skipped" not in batch:
    return {}
  totals = np.asarray(batch["skipped"]).sum(0)
  return {SKIP_REASONS[r]: int(c) for r, c in enumerate(totals) if c}
