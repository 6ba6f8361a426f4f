"""Checkpointable grain datasets of the training stream, and the arithmetic of mixing datasets.

They work on the examples of `transforms.DecodeExample`, one record at a time, up to batching:
  SkipBadRecords  drops the skip markers; each good example gets `skipped`: int32
                  `[len(SKIP_REASONS)]`, the records skipped (per reason) just before it.
  RatioMix        interleaves several streams so that every `sum(counts)` consecutive examples
                  hold exactly `counts[i]` of stream i (`batch_counts`, `mix_schedule`).
  BucketBatch     batches examples by width bucket with `transforms.Collate`: image float32
                  `[B, H, W, 1]`, W the bucket of the batch's widest example.

Their iterators are checkpointable: `get_state()` is a JSON-serializable dict (saved by orbax
through `grain.checkpoint`, next to the train state) and `set_state` continues with the same
examples and batches. The states, which checkpoints already hold (do not change them):
  SkipBadRecords  its parent's state.
  RatioMix        `{'parents': [each parent's state], 'position': next index of the schedule}`.
  BucketBatch     `{'parent': the parent's state at the start of the current window, 'window':
                  its index, 'emitted': its batches already returned}`.
"""

from __future__ import annotations

import collections
from typing import Sequence

from absl import logging
import grain
import numpy as np

from crnn_jax.data.transforms import SKIP_REASONS, Collate


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
  """Drops the skip markers of `transforms.DecodeExample`; good examples get a `skipped` vector.

  Raises ValueError when `limit` records in a row are bad (the data holds nothing usable).
  """

  def __init__(self, parent: grain.IterDataset, *, name: str = "", limit: int = 1 << 30,
               max_logged: int = 5):
    super().__init__(parent)
    self._kwargs = dict(name=name, limit=limit, max_logged=max_logged)

  def __iter__(self):
    return _SkipBadIterator(self._parent.__iter__(), **self._kwargs)


def skip_counts(batch: dict[str, np.ndarray]) -> dict[str, int]:
  """Records skipped (per reason, non-zero only) while a dataset batch was assembled."""
  if "skipped" not in batch:
    return {}
  totals = np.asarray(batch["skipped"]).sum(0)
  return {SKIP_REASONS[r]: int(c) for r, c in enumerate(totals) if c}


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
