"""Greedy (best-path) decoding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.text.charset import Charset
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.decoding import greedy


def _one_hot_logits(frames, k, scale=10.0):
  logits = np.zeros((len(frames), k), np.float32)
  logits[np.arange(len(frames)), frames] = scale
  return logits


def test_collapse_merges_repeats_and_drops_blanks():
  ids = np.array([[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 0, 0, 0, 0, 0, 0, 0, 0]])
  assert greedy.collapse(ids) == [[1, 1, 2, 3], []]


def test_greedy_decode_texts_and_confidence():
  charset = Charset("abc")
  batch = np.stack([_one_hot_logits([1, 1, 0, 2, 0, 3, 3], 4),
                    _one_hot_logits([3, 0, 3, 0, 0, 0, 0], 4)])
  # Second sample has 3 real frames: 'c-c'; the rest is padding that must be ignored.
  batch[1, 3:] = _one_hot_logits([1, 2, 3, 1], 4)
  decoded = decoder_lib.Decoder(charset, "greedy").decode(
      np.asarray(jax.nn.log_softmax(jnp.asarray(batch), -1)), np.array([7, 3]))
  texts, conf = [d.text for d in decoded], np.array([d.confidence for d in decoded])
  assert texts == ["abc", "cc"]
  # Confidence is the product over real frames of the max softmax probability.
  p = jax.nn.softmax(jnp.asarray(batch), -1).max(-1)
  np.testing.assert_allclose(conf, [np.prod(p[0]), np.prod(p[1, :3])], rtol=1e-5)


def test_best_path_is_jittable_with_fixed_shapes():
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(3, 6, 5)), jnp.float32)
  ids, conf = jax.jit(greedy.best_path)(logits, jnp.array([6, 2, 0]))
  assert ids.shape == (3, 6) and conf.shape == (3,)
  np.testing.assert_array_equal(ids[0], np.argmax(logits[0], -1))
  np.testing.assert_array_equal(ids[1, 2:], 0)
  np.testing.assert_array_equal(ids[2], 0)
  assert float(conf[2]) == 1.0  # No frames: the empty path is certain.


def test_an_empty_reading_has_confidence_zero_in_every_decoder():
  from crnn_jax.decoding import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  charset = Charset("ab")
  # Sample 0: every frame surely blank (path probability ~1, text ''); sample 1: "ab".
  sure_blank = np.log(np.array([[0.98, 0.01, 0.01]] * 4))
  reads_ab = np.log(np.array([[0.02, 0.97, 0.01], [0.9, 0.05, 0.05], [0.02, 0.01, 0.97],
                              [0.9, 0.05, 0.05]]))
  log_probs = np.stack([sure_blank, reads_ab]).astype(np.float32)
  lengths = np.array([4, 4])
  ids, confidence = greedy.best_reading(log_probs, lengths)
  texts = [charset.decode(seq) for seq in greedy.collapse(np.asarray(ids))]
  assert texts == ["", "ab"]
  assert confidence[0] == 0.0
  np.testing.assert_allclose(confidence[1], 0.97 * 0.9 * 0.97 * 0.9, rtol=1e-5)
  for name in ("greedy", "beam"):
    decoded = decoder_lib.Decoder(charset, name).decode(log_probs, lengths)
    assert [d.text for d in decoded] == ["", "ab"]
    assert decoded[0].confidence == 0.0 and decoded[1].confidence > 0.5, name


def test_training_evaluation_scores_an_empty_reading_zero():
  """SplitEvaluator.run (periodic evaluation, `crnn-jax eval --checkpoint`) through the real
  eval_step and best_path: the same rule."""
  from typing import Any, Callable  # pylint: disable=g-import-not-at-top
  from flax import struct  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from crnn_jax import sharding  # pylint: disable=g-import-not-at-top
  from crnn_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top

  @struct.dataclass
  class State:  # What evaluation reads of a TrainState.
    params: Any
    batch_stats: Any
    apply_fn: Callable = struct.field(pytree_node=False)

  sure_blank = np.log(np.array([[0.98, 0.01, 0.01]] * 4))
  reads_ab = np.log(np.array([[0.02, 0.97, 0.01], [0.9, 0.05, 0.05], [0.02, 0.01, 0.97],
                              [0.9, 0.05, 0.05]]))
  logits = jnp.asarray(np.stack([sure_blank, reads_ab]), jnp.float32)
  state = State(params={}, batch_stats={},
                apply_fn=lambda variables, image, width, train: (logits, jnp.array([4, 4])))
  batches = [dict(mask=np.array([True, True]), text=np.array(["", "ab"]),
                  image=np.zeros((2, 32, 8, 1), np.float32), width=np.full(2, 8, np.int32))]
  config = ml_collections.ConfigDict(dict(eval_batch_size=2))
  evaluator = evaluators.SplitEvaluator(config, Charset("ab"), sharding.make_mesh(1),
                                        batches=batches)
  metrics, examples = evaluator.run(state, num_examples=2)
  ab = 0.97 * 0.9 * 0.97 * 0.9
  assert examples == [("", "", 0.0), ("ab", "ab", pytest.approx(ab, rel=1e-5))]
  assert metrics["mean_confidence"] == pytest.approx(ab / 2, rel=1e-5)


def test_best_reading_on_numpy_arrays_equals_the_jax_one():
  rng = np.random.default_rng(3)
  logits = (rng.normal(size=(4, 9, 5)) * 3).astype(np.float32)
  logits[1, :, 0] = 50.0  # All blank: an empty reading.
  lengths = np.array([9, 5, 3, 1], np.int32)
  ids, confidence = greedy.best_reading(logits, lengths)
  assert isinstance(ids, np.ndarray) and ids.dtype == np.int32
  assert confidence.dtype == np.float32 and confidence[1] == 0.0
  jax_ids, jax_confidence = greedy.best_reading(jnp.asarray(logits), jnp.asarray(lengths))
  np.testing.assert_array_equal(ids, np.asarray(jax_ids))
  np.testing.assert_allclose(confidence, np.asarray(jax_confidence), rtol=1e-5)
  assert (ids[2, 3:] == 0).all() and (ids[0] != 0).any()  # Padding frames are blank.
