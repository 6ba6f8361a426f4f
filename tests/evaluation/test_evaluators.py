"""Tests of crnn_jax/evaluation/evaluators.py: the split, dataset and decoder-comparison loops."""

import collections
import subprocess
import sys

import numpy as np
import pytest

from crnn_jax import evaluation
from crnn_jax import run_files, sharding
from crnn_jax.data import pipeline
from crnn_jax.data import sources
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.decoding import greedy
from crnn_jax.evaluation import evaluators
from crnn_jax.evaluation import protocol


def test_the_evaluation_package_does_not_import_train_lib():
  code = ("import sys, crnn_jax.evaluation.evaluators; "
          "assert 'crnn_jax.train_lib' not in sys.modules, 'train_lib imported'")
  subprocess.run([sys.executable, "-c", code], check=True)


def _hand_loop(model, charset, batches):
  """Greedy decoding of every batch straight from flax, scored by RecognitionMetrics."""
  score = evaluation.RecognitionMetrics()
  examples = []
  for batch in batches:
    logits, lengths = model.module.apply(model.variables, batch["image"], batch["width"],
                                         train=False)
    ids, confidence = greedy.best_reading(np.asarray(logits, np.float32), np.asarray(lengths))
    mask = np.asarray(batch["mask"], bool)
    texts = [charset.decode(s) for s in greedy.collapse(ids)]
    preds = [t for t, m in zip(texts, mask) if m]
    targets = [t for t, m in zip(batch["text"], mask) if m]
    score.update(preds, targets, confidence[mask])
    examples.extend(zip(preds, targets, confidence[mask].tolist()))
  return score.result(), examples


def test_split_evaluator_equals_a_hand_loop_over_the_batches(tiny_workdir):
  model = run_files.load_model(tiny_workdir)
  config, charset = model.config, model.charset
  config.eval_batch_size = 4
  evaluator = evaluators.SplitEvaluator(config, charset, sharding.make_mesh(1), "eval", 10)
  assert [int(np.sum(b["mask"])) for b in evaluator.batches] == [4, 4, 2]  # A padded last one.
  state = evaluators.model_state(model.module.apply, model.variables, model.step)
  assert state.step == model.step
  metrics, examples = evaluator.run(state, num_examples=6)
  expected, expected_examples = _hand_loop(
      model, charset, pipeline.eval_batches(config, charset, "eval", 10))
  assert metrics.keys() == expected.keys() and metrics["count"] == 10
  for key, value in expected.items():
    assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
  assert [e[:2] for e in examples] == [e[:2] for e in expected_examples[:6]]
  np.testing.assert_allclose([e[2] for e in examples], [e[2] for e in expected_examples[:6]],
                             rtol=1e-5, atol=1e-7)
  assert 0.0 < metrics["mean_confidence"] and metrics["one_minus_ned"] < 1.0  # Untrained.


def test_decoder_comparison_runs_the_model_once_per_batch():
  charset = Charset("abc")
  rng = np.random.default_rng(0)
  lengths = np.array([5, 4, 2])
  batches, tables = [], []
  for n, texts in enumerate([["ab", "c", "a"], ["ba", "cc", "b"]]):
    tables.append((rng.normal(size=(3, 5, 4)) * 3).astype(np.float32))
    batches.append({"image": np.full((3, 32, 16, 1), n, np.float32),
                    "width": np.array([16, 12, 4]), "text": np.array(texts, dtype=object),
                    "mask": np.array([1, 1, n == 0], bool)})
  calls = []

  def logits_fn(images, widths):  # Which batch it is: the images' fill value.
    calls.append(len(widths))
    return tables[int(images.flat[0])], lengths

  decoders = [decoder_lib.Decoder(charset, "greedy"),
              decoder_lib.Decoder(charset, "beam", beam_width=3),
              decoder_lib.Decoder(charset, "lexicon", lexicon=["ab", "c", "ba", "cc"])]
  results = evaluators.DecoderComparison(batches, decoders).run(logits_fn, num_examples=10)
  assert calls == [3, 3]  # Once per batch, whatever the number of decoders.
  assert list(results) == ["greedy", "beam3", "lexicon"]
  for d in decoders:
    score, examples = evaluation.RecognitionMetrics(), []
    for batch, table in zip(batches, tables):
      mask = batch["mask"]
      decoded = d.decode(greedy.log_softmax(table)[mask], lengths[mask])
      targets = list(batch["text"][mask])
      score.update([x.text for x in decoded], targets, [x.confidence for x in decoded])
      examples.extend((x.text, t) for x, t in zip(decoded, targets))
    got = results[d.label]
    assert got["count"] == 5
    for key, value in score.result().items():
      assert got[key] == pytest.approx(value, rel=1e-5), (d.label, key)
    assert [e[:2] for e in got["examples"]] == examples
  assert all(e[0] in ("ab", "c", "ba", "cc") for e in results["lexicon"]["examples"])


def _reader(batch):
  """Reads each protocol label back upper-cased (right under the case-insensitive standard),
  but 'beta' as 'BETO'."""
  texts = ["BETO" if t == "beta" else t.upper() for t in batch["text"]]
  return texts, np.full(len(texts), 0.25, np.float32)


def test_dataset_evaluator_counts_skipped_and_altered_records(gt_folder):
  from configs import tiny  # pylint: disable=import-outside-toplevel
  root, good, bad = gt_folder
  entries = sources.find_datasets(str(root.parent))
  assert [e.name for e in entries] == ["mylines"]
  evaluator = evaluators.DatasetEvaluator(entries, tiny.get_config().data, protocol.STANDARD, 4,
                                          max_examples=1)
  results = evaluator.run(_reader)
  [row] = results["datasets"]
  labels = [label for _, label, _ in good]
  # 'gamma delta' (space) and 'Ünïcode' (accents) count, stripped to [0-9a-z]: altered.
  altered = [t for t in labels if any(c not in protocol.STANDARD.charset for c in t.lower())]
  assert sorted(altered) == ["gamma delta", "Ünïcode"]
  assert row["records"] == len(good) + len(bad)
  assert row["count"] == len(good) and row["altered"] == len(altered)
  assert {r: v["count"] for r, v in row["skipped"].items()} == collections.Counter(bad.values())
  assert all(len(v["first"]) == 1 for v in row["skipped"].values())  # max_examples=1.
  assert row["word_accuracy"] == pytest.approx((len(good) - 1) / len(good))  # All but 'beta'.
  assert row["one_minus_ned"] == pytest.approx(1 - (1 / 4) / len(good))
  assert row["mean_confidence"] == pytest.approx(0.25)
  total = results["total"]
  assert (total["records"], total["count"], total["altered"]) == (
      row["records"], row["count"], row["altered"])
  assert results["protocol"] == protocol.STANDARD.to_dict() and results["groups"] == {}
  table = protocol.markdown_table(results)
  assert (f"| mylines | {row['records']} | {len(good)} | {len(altered)} | "
          f"{100 * row['word_accuracy']:.2f} |") in table
  # Two processes, each reading its share of the records, add up to the whole.
  parts = [evaluators.DatasetEvaluator(entries, tiny.get_config().data, protocol.STANDARD, 4,
                                       process_index=p, process_count=2).run(_reader)
           for p in range(2)]
  np.testing.assert_allclose(np.sum([part["datasets"][0]["sums"] for part in parts], axis=0),
                             row["sums"])


def test_sum_over_processes_keeps_float64_totals(monkeypatch):
  import jax  # pylint: disable=import-outside-toplevel
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  totals = np.array([3.0, 1 / 3, 1e7 + 0.1, 2.5e-9])
  # Two processes with the same totals; JAX gathers float32 arrays.
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(multihost_utils, "process_allgather",
                      lambda x: np.stack([np.asarray(x, np.float32)] * 2))
  summed = evaluators.sum_over_processes(totals)
  assert summed.dtype == np.float64
  np.testing.assert_allclose(summed, 2 * totals, rtol=1e-13)
  assert abs(2 * np.float32(totals[2]) - 2 * totals[2]) > 1e-3  # What float32 alone loses.


_DATASET_WORKER = """
import json, sys
from crnn_jax import distributed
distributed.initialize()
import functools, jax
from crnn_jax import run_files, sharding, train_lib
from crnn_jax.data import sources
from crnn_jax.evaluation import evaluators, protocol
model = run_files.load_model(sys.argv[1])
mesh = sharding.make_mesh()
predict = functools.partial(evaluators.greedy_predictor(model.charset, mesh),
                            train_lib.inference_state(model))
evaluator = evaluators.DatasetEvaluator(
    sources.find_datasets(sys.argv[2]), model.config.data, protocol.STANDARD, 4,
    process_index=jax.process_index(), process_count=jax.process_count(),
    allreduce=evaluators.sum_over_processes if jax.process_count() > 1 else None)
print("RESULT " + json.dumps(evaluator.run(predict)["total"]), flush=True)
"""


@pytest.mark.slow
def test_dataset_evaluator_in_two_processes_with_keep_ratio_widths(tiny_workdir, tmp_path):
  """Two `jax.distributed` processes whose local batches fall in different width buckets
  (keep-ratio crops from 20 to 400 px) feed one global batch and add up to one process's
  totals."""
  import json  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  import pathlib  # pylint: disable=import-outside-toplevel
  import socket  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel

  folder = tmp_path / "crops"
  folder.mkdir()
  rng = np.random.default_rng(5)
  lines = []
  for i, width in enumerate([20, 400, 24, 380, 30, 300, 22, 350, 40, 260]):
    image = rng.integers(0, 255, (32, width)).astype(np.uint8)
    Image.fromarray(image).save(folder / f"{i}.png")
    lines.append(f"{i}.png\tword{i}")
  (folder / "gt.txt").write_text("\n".join(lines) + "\n")
  root = pathlib.Path(__file__).resolve().parents[2]
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]

  def start(name, env):  # Output to files: a full pipe would stall a process's heartbeats.
    with (tmp_path / f"{name}.out").open("w") as out:
      return subprocess.Popen([sys.executable, "-c", _DATASET_WORKER, str(tiny_workdir),
                               str(folder)], cwd=root, stdout=out, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PYTHONPATH=str(root),
                                       XLA_FLAGS="--xla_force_host_platform_device_count=1",
                                       **env))

  def results(procs, names):
    try:
      codes = [p.wait(timeout=240) for p in procs]
    finally:
      for p in procs:
        p.kill()
    outs = [(tmp_path / f"{n}.out").read_text() for n in names]
    for code, out in zip(codes, outs):
      assert code == 0, out[-3000:]
    return [json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
            for out in outs]

  pair = [start(f"p{i}", dict(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                              JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i))) for i in range(2)]
  totals = results(pair, ["p0", "p1"])
  (single,) = results([start("single", {})], ["single"])
  assert totals[0] == totals[1]
  assert totals[0]["count"] == single["count"] == 10
  for key, value in single.items():
    assert totals[0][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
