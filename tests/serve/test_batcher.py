"""Tests of crnn_jax/serve/batcher.py: gathering, bounds, ordering, errors and draining."""

import threading
import time

import pytest

from crnn_jax.serve import batcher as batcher_lib


class Recorder:
  """A batch runner that records each batch and can be held until released."""

  def __init__(self, hold: bool = False):
    self.batches = []
    self.release = threading.Event()
    self.started = threading.Event()
    if not hold:
      self.release.set()

  def __call__(self, key, payloads):
    self.batches.append((key, list(payloads)))
    self.started.set()
    assert self.release.wait(10)
    return [f"{key}:{p}" for p in payloads]


def _results(futures, timeout=10):
  return [f.result(timeout) for f in futures]


def test_items_queued_while_a_batch_runs_form_one_batch_in_order():
  run = Recorder(hold=True)
  batcher = batcher_lib.DynamicBatcher(run, max_batch=8, max_wait_ms=0, max_queue=64).start()
  first = batcher.submit("m", ["a"])
  assert run.started.wait(5)  # The worker is busy with ["a"].
  later = [batcher.submit("m", [f"r{i}x", f"r{i}y"]) for i in range(3)]
  assert batcher.depth == 6
  run.release.set()
  assert _results(first) == ["m:a"]
  assert [_results(f) for f in later] == [[f"m:r{i}x", f"m:r{i}y"] for i in range(3)]
  assert [len(p) for _, p in run.batches] == [1, 6]  # The 3 requests ran in one call.
  assert run.batches[1][1] == ["r0x", "r0y", "r1x", "r1y", "r2x", "r2y"]  # FIFO.
  batcher.close()


def test_max_batch_bounds_a_batch_and_batches_are_cut_at_the_allowed_sizes():
  run = Recorder(hold=True)
  batcher = batcher_lib.DynamicBatcher(run, max_batch=8, max_wait_ms=0, max_queue=64,
                                       batch_sizes=[1, 2, 4, 8]).start()
  batcher.submit("m", ["first"])
  assert run.started.wait(5)
  futures = batcher.submit("m", list(range(21)))
  run.release.set()
  assert _results(futures) == [f"m:{i}" for i in range(21)]
  # 21 waiting items: 8, 8, then 5 cut to 4 and 1 (no batch of 5 to pad to 8).
  assert [len(p) for _, p in run.batches] == [1, 8, 8, 4, 1]
  batcher.close()


@pytest.mark.parametrize("waiting, batches", [(3, [3]), (15, [15]), (12, [12]), (9, [4, 4, 1]),
                                              (2, [1, 1]), (6, [4, 1, 1]), (20, [16, 4])])
def test_a_batch_runs_padded_only_when_it_fills_most_of_an_allowed_size(waiting, batches):
  run = Recorder(hold=True)
  batcher = batcher_lib.DynamicBatcher(run, max_batch=16, max_wait_ms=0, max_queue=64,
                                       batch_sizes=[1, 4, 16], min_fill=0.75).start()
  batcher.submit("m", ["first"])
  assert run.started.wait(5)
  futures = batcher.submit("m", list(range(waiting)))
  run.release.set()
  assert _results(futures) == [f"m:{i}" for i in range(waiting)]
  assert [len(p) for _, p in run.batches[1:]] == batches
  batcher.close()


def test_a_lone_item_waits_max_wait_for_company_and_no_longer():
  run = Recorder()
  batcher = batcher_lib.DynamicBatcher(run, max_batch=4, max_wait_ms=1000, max_queue=8).start()
  start = time.monotonic()
  (future,) = batcher.submit("m", ["x"])
  time.sleep(0.05)
  second = batcher.submit("m", ["y"])  # Joins within the window.
  assert future.result(10) == "m:x" and _results(second) == ["m:y"]
  waited = time.monotonic() - start
  assert 0.99 <= waited < 5.0
  assert [p for _, p in run.batches] == [["x", "y"]]
  # A full batch does not wait for the window to close.
  start = time.monotonic()
  _results(batcher.submit("m", list("abcd")))
  assert time.monotonic() - start < 0.9
  batcher.close()


def test_keys_are_batched_apart_oldest_first():
  run = Recorder(hold=True)
  batcher = batcher_lib.DynamicBatcher(run, max_batch=8, max_wait_ms=0, max_queue=64).start()
  batcher.submit("m", ["busy"])
  assert run.started.wait(5)
  a1 = batcher.submit("lm", [1])
  g1 = batcher.submit("greedy", [2])
  a2 = batcher.submit("lm", [3])
  run.release.set()
  assert _results(a1) == ["lm:1"] and _results(g1) == ["greedy:2"] and _results(a2) == ["lm:3"]
  assert [(k, p) for k, p in run.batches[1:]] == [("lm", [1, 3]), ("greedy", [2])]
  batcher.close()


def test_a_full_queue_refuses_the_whole_request():
  run = Recorder(hold=True)
  batcher = batcher_lib.DynamicBatcher(run, max_batch=2, max_wait_ms=0, max_queue=4).start()
  batcher.submit("m", ["busy"])
  assert run.started.wait(5)
  kept = batcher.submit("m", [1, 2, 3])
  with pytest.raises(batcher_lib.QueueFull):
    batcher.submit("m", [4, 5])  # 3 + 2 > 4: none of them is queued.
  assert batcher.depth == 3
  kept += batcher.submit("m", [4])
  run.release.set()
  assert _results(kept) == ["m:1", "m:2", "m:3", "m:4"]
  batcher.close()


def test_an_error_fails_every_item_of_its_batch_and_the_worker_goes_on():
  calls = []

  def run(key, payloads):
    calls.append(list(payloads))
    if "bad" in payloads:
      raise RuntimeError("model failed")
    return payloads

  batcher = batcher_lib.DynamicBatcher(run, max_batch=4, max_wait_ms=50, max_queue=8).start()
  futures = batcher.submit("m", ["ok", "bad"])
  for future in futures:
    with pytest.raises(RuntimeError, match="model failed"):
      future.result(5)
  assert _results(batcher.submit("m", ["fine"])) == ["fine"]
  batcher.close()


def test_close_runs_the_queued_items_then_refuses_new_ones():
  run = Recorder(hold=True)
  seen = []
  batcher = batcher_lib.DynamicBatcher(run, max_batch=2, max_wait_ms=1000, max_queue=8,
                                       on_batch=lambda key, size, s: seen.append(size)).start()
  futures = batcher.submit("m", [1, 2, 3])
  assert run.started.wait(5)
  closer = threading.Thread(target=batcher.close)
  closer.start()
  deadline = time.monotonic() + 10
  while not batcher.closed and time.monotonic() < deadline:
    time.sleep(0.01)
  with pytest.raises(batcher_lib.QueueFull, match="shutting down"):
    batcher.submit("m", [4])
  run.release.set()
  closer.join(5)
  assert not closer.is_alive()
  assert _results(futures) == ["m:1", "m:2", "m:3"]
  assert seen == [2, 1]


@pytest.mark.parametrize("kwargs", [dict(max_batch=0), dict(max_wait_ms=-1),
                                    dict(max_batch=8, max_queue=4),
                                    dict(batch_sizes=[2, 4])])
def test_bad_bounds_are_refused(kwargs):
  with pytest.raises(ValueError):
    batcher_lib.DynamicBatcher(lambda k, p: p, **kwargs)
