"""Input pipelines (grain): examples -> encoded, resized samples -> padded batches.

A batch is a dict of numpy arrays:
  image:        float32 `[B, 32, W, 1]` in [-1, 1], zero beyond each sample's width.
  width:        int32 `[B]` true widths.
  label:        int32 `[B, L]` class ids, 0 beyond `label_length`.
  label_length: int32 `[B]`.
  mask:         bool `[B]` samples that count (False for dropped labels and batch padding).
  dropped:      int32 `[B]` 1 where the label was dropped (characters outside the charset).
  text:         `[B]` unicode ground-truth strings (normalized by the charset), host only.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterator, Sequence

import grain
import numpy as np

from crnn_jax.data import preprocess
from crnn_jax.data.charset import Charset
from crnn_jax.models.crnn import output_lengths

HOST_ONLY_KEYS = ("text",)


def max_width(data_config) -> int:
  """Widest image the pipeline produces."""
  return data_config.fixed_width if data_config.resize == "fixed" else data_config.max_width


def max_label_length(data_config) -> int:
  """Longest label that can fit the frames of the widest image (longer ones are dropped)."""
  return int(output_lengths(max_width(data_config)))


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
    if self.batch_size and len(examples) < self.batch_size:
      batch = pad_batch(batch, self.batch_size)
    return batch


def pad_batch(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads a partial batch to `size` samples with masked-out copies of zeros."""
  pad = size - len(batch["mask"])
  out = {}
  for key, value in batch.items():
    filler = np.zeros((pad,) + value.shape[1:], value.dtype)
    if key == "text":
      filler = np.array([""] * pad, dtype=object)
    elif key == "width":
      filler = np.full((pad,), preprocess.MIN_WIDTH, np.int32)
    out[key] = np.concatenate([value, filler])
  return out


def _synthetic_source(config, charset: Charset, *, seed: int, num_records: int):
  from crnn_jax.data import synthetic  # Imported lazily: font discovery costs a little.
  return synthetic.SyntheticTextSource.from_config(
      config.data, charset, seed=seed, num_records=num_records)


def make_source(config, charset: Charset, split: str, num_records: int):
  """The random-access source of a split ('train', 'eval' or 'test')."""
  if config.data.source != "synthetic":
    raise ValueError(f"unknown data.source {config.data.source!r} (available: 'synthetic')")
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


def eval_batches(config, charset: Charset, split: str = "eval", num_records: int | None = None,
                 *, process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
  """Every record of an evaluation split once, in order, in padded batches of fixed size.

  The last batch is padded with masked samples; each process gets its contiguous share of every
  global batch (all processes see the same number of batches).
  """
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
