"""Dynamic batching: items submitted one request at a time, run together in one call.

`DynamicBatcher` keeps a bounded FIFO queue of items (here: preprocessed images) and one worker
thread. The worker takes the oldest item and gathers the queued items of the same key (here: the
model and decoder they ask for) into a batch, waiting at most `max_wait_ms` after the oldest
item arrived for more to come, and never more than `max_batch` items; then it runs the batch in
one call. Items arriving while a batch runs wait in the queue and form the next one, so a busy
service batches without waiting at all and an idle one answers a lone item after `max_wait_ms`.

With `batch_sizes` (the row counts the model is compiled for), the items at hand run together
when they fill at least `min_fill` of the smallest allowed size that holds them (the model pads
the rest); otherwise the batch is cut at the largest allowed size not above them and the rest
start the next batch at once. With sizes 1, 4, 16 and min_fill 0.75: 3 items run as one batch
(padded to 4), 15 as one (padded to 16), but 9 as 4, 4 and 1 rather than 16 rows of which 7
are padding.

The queue holds at most `max_queue` items: `submit` raises `QueueFull` past it (the service
answers 503 with Retry-After) instead of building an unbounded backlog. `close` stops taking new
items, runs the ones queued, and joins the worker (the service's graceful shutdown).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
from typing import Any, Callable, Hashable, Sequence


class QueueFull(Exception):
  """The queue cannot take the items now; try again later (or it is closed)."""


@dataclasses.dataclass
class _Item:
  key: Hashable
  payload: Any
  future: concurrent.futures.Future
  arrived: float


# run(key, payloads) -> one result per payload, in order.
RunBatch = Callable[[Hashable, list[Any]], Sequence[Any]]
# on_batch(key, size, seconds): called after each batch ran.
OnBatch = Callable[[Hashable, int, float], None]


class DynamicBatcher:
  """Gathers submitted items into batches run by one worker thread.

  Attributes:
    max_batch: most items in one batch.
    max_wait: seconds the oldest queued item waits for others (the batching window).
    max_queue: most items waiting at once.
    batch_sizes: allowed batch sizes (sorted), or None for any size up to max_batch.
    min_fill: how full a batch padded to an allowed size must be.
  """

  def __init__(self, run: RunBatch, *, max_batch: int = 16, max_wait_ms: float = 5.0,
               max_queue: int = 256, batch_sizes: Sequence[int] | None = None,
               min_fill: float = 1.0, on_batch: OnBatch | None = None,
               name: str = "batcher"):
    """Configures the batcher (call `start` to run it).

    Args:
      run: runs one batch: `run(key, payloads)` returns one result per payload, in order; an
        exception fails every item of the batch.
      max_batch: most items per batch (>= 1).
      max_wait_ms: how long the oldest item waits for more (>= 0).
      max_queue: most items queued (>= max_batch).
      batch_sizes: if given, the sizes batches run at (1 must be among them; sizes above
        max_batch are ignored): see the module docstring.
      min_fill: with batch_sizes, the least fraction of an allowed size that the items at
        hand must fill to run padded to it (1: only exact sizes).
      on_batch: called with (key, size, seconds) after each batch, e.g. for metrics.
      name: the worker thread's name.

    Raises:
      ValueError: a bad bound.
    """
    if max_batch < 1:
      raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if max_wait_ms < 0:
      raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
    if max_queue < max_batch:
      raise ValueError(f"max_queue ({max_queue}) must be at least max_batch ({max_batch})")
    if batch_sizes is not None:
      batch_sizes = sorted({int(s) for s in batch_sizes if 1 <= s <= max_batch})
      if not batch_sizes or batch_sizes[0] != 1:
        raise ValueError(f"batch_sizes must include 1, got {batch_sizes}")
    self.max_batch = int(max_batch)
    self.max_wait = max_wait_ms / 1000.0
    self.max_queue = int(max_queue)
    self.batch_sizes = batch_sizes
    self.min_fill = float(min_fill)
    self._run = run
    self._on_batch = on_batch
    self._name = name
    self._queue: collections.deque[_Item] = collections.deque()
    self._cond = threading.Condition()
    self._closing = False
    self._thread: threading.Thread | None = None

  @property
  def depth(self) -> int:
    """Items waiting (not yet taken into a batch)."""
    return len(self._queue)

  @property
  def closed(self) -> bool:
    return self._closing

  def start(self) -> "DynamicBatcher":
    """Starts the worker thread (once)."""
    with self._cond:
      if self._thread is None:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
    return self

  def submit(self, key: Hashable, payloads: Sequence[Any]) -> list[concurrent.futures.Future]:
    """Queues items (all or none); returns a future per payload, in order.

    Raises:
      QueueFull: the queue has no room for all of them, or the batcher is closing.
    """
    futures = [concurrent.futures.Future() for _ in payloads]
    now = time.monotonic()
    with self._cond:
      if self._closing:
        raise QueueFull("the service is shutting down")
      if len(self._queue) + len(payloads) > self.max_queue:
        raise QueueFull(f"{len(self._queue)} images are queued, the limit is {self.max_queue}")
      for payload, future in zip(payloads, futures):
        self._queue.append(_Item(key, payload, future, now))
      self._cond.notify()
    return futures

  def close(self, timeout: float | None = None) -> None:
    """Takes no new items, runs the queued ones, and waits for the worker to end."""
    with self._cond:
      self._closing = True
      self._cond.notify_all()
    if self._thread is not None:
      self._thread.join(timeout)

  def _take(self) -> list[_Item] | None:
    """Waits for a batch and removes it from the queue (None: closed and empty)."""
    with self._cond:
      while not self._queue:
        if self._closing:
          return None
        self._cond.wait()
      key = self._queue[0].key
      deadline = self._queue[0].arrived + self.max_wait
      while not self._closing:
        same = sum(1 for item in self._queue if item.key == key)
        remaining = deadline - time.monotonic()
        if same >= self.max_batch or remaining <= 0:
          break
        self._cond.wait(remaining)
      same = sum(1 for item in self._queue if item.key == key)
      size = min(same, self.max_batch)
      if self.batch_sizes is not None:
        padded = min((s for s in self.batch_sizes if s >= size), default=None)
        if padded is None or size < self.min_fill * padded:
          size = max(s for s in self.batch_sizes if s <= size)
      batch, rest = [], collections.deque()
      for item in self._queue:  # FIFO within the key; other keys keep their places.
        (batch if item.key == key and len(batch) < size else rest).append(item)
      self._queue = rest
      return batch

  def _loop(self) -> None:
    while True:
      batch = self._take()
      if batch is None:
        return
      live = [item for item in batch if item.future.set_running_or_notify_cancel()]
      if not live:
        continue
      start = time.monotonic()
      try:
        results = list(self._run(live[0].key, [item.payload for item in live]))
        if len(results) != len(live):
          raise RuntimeError(f"batch of {len(live)} gave {len(results)} results")
      except BaseException as e:  # pylint: disable=broad-except
        for item in live:
          item.future.set_exception(e)
      else:
        for item, result in zip(live, results):
          item.future.set_result(result)
      if self._on_batch is not None:
        self._on_batch(live[0].key, len(live), time.monotonic() - start)
