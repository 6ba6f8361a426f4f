"""CTC loss: agreement with a brute-force sum over alignments, masking of infeasible labels."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.ops import ctc


def _collapse(path):
  out, prev = [], None
  for c in path:
    if c != prev and c != 0:
      out.append(c)
    prev = c
  return tuple(out)


def _brute_force_nll(logits, label):
  """-log sum over all K^T frame paths that collapse to `label`."""
  log_probs = jax.nn.log_softmax(jnp.asarray(logits, jnp.float64), -1)
  t, k = logits.shape
  total = 0.0
  for path in itertools.product(range(k), repeat=t):
    if _collapse(path) == tuple(label):
      total += float(jnp.exp(sum(log_probs[i, c] for i, c in enumerate(path))))
  return -np.log(total) if total > 0 else np.inf


@pytest.mark.parametrize("label,frames", [((1,), 3), ((1, 2), 4), ((2, 2), 4), ((1, 2, 1), 5),
                                          ((3,), 1), ((1, 1), 3)])
def test_loss_equals_brute_force_sum_over_alignments(label, frames):
  with jax.enable_x64(True):
    rng = np.random.default_rng(len(label) * 10 + frames)
    k = 4
    logits = rng.normal(size=(frames, k))
    # Put the sample inside a padded batch: extra frames and label padding must be ignored.
    batch_logits = np.concatenate([logits, rng.normal(size=(3, k)) * 5])[None]
    labels = np.zeros((1, 6), np.int32)
    labels[0, :len(label)] = label
    out = ctc.ctc_loss(jnp.asarray(batch_logits), jnp.array([frames]), jnp.asarray(labels),
                       jnp.array([len(label)]))
    assert bool(out["feasible"][0])
    np.testing.assert_allclose(float(out["loss"]), _brute_force_nll(logits, label), rtol=1e-4)


def test_required_frames_counts_repeats():
  labels = jnp.array([[1, 1, 2, 0], [3, 3, 3, 3], [1, 2, 3, 0], [5, 0, 0, 0]])
  lengths = jnp.array([3, 4, 3, 1])
  np.testing.assert_array_equal(ctc.required_frames(labels, lengths), [4, 7, 3, 1])


def test_infeasible_labels_are_masked_out_and_counted():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(4, 5, 6)), jnp.float32)
  frames = jnp.array([5, 5, 3, 5])
  labels = jnp.array([[1, 2, 0, 0, 0, 0],    # fits
                      [1, 1, 1, 0, 0, 0],    # 3 + 2 repeats = 5 frames: fits exactly
                      [1, 2, 3, 4, 0, 0],    # 4 > 3 frames: infeasible
                      [2, 2, 2, 2, 0, 0]])   # 4 + 3 = 7 > 5: infeasible
  lengths = jnp.array([2, 3, 4, 4])
  out = ctc.ctc_loss(logits, frames, labels, lengths)
  np.testing.assert_array_equal(out["feasible"], [True, True, False, False])
  assert int(out["num_feasible"]) == 2 and int(out["num_infeasible"]) == 2
  # The loss is the mean over the two feasible samples only, nowhere near optax's 1e5.
  alone = ctc.ctc_loss(logits[:2], frames[:2], labels[:2], lengths[:2])
  np.testing.assert_allclose(out["loss"], alone["loss"], rtol=1e-6)
  assert float(out["loss"]) < 100


def test_padding_samples_and_empty_labels_are_not_counted_as_infeasible():
  logits = jnp.zeros((3, 4, 3))
  out = ctc.ctc_loss(logits, jnp.array([4, 4, 4]), jnp.array([[1, 0], [0, 0], [2, 1]]),
                     jnp.array([1, 0, 2]), sample_mask=jnp.array([True, True, False]))
  np.testing.assert_array_equal(out["feasible"], [True, False, False])
  assert int(out["num_infeasible"]) == 1  # The empty label; the padding sample is not counted.


def test_all_infeasible_gives_zero_loss_and_zero_gradient():
  logits = jnp.ones((2, 2, 4))
  def loss(l):
    return ctc.ctc_loss(l, jnp.array([2, 2]), jnp.array([[1, 2, 3], [1, 1, 1]]),
                        jnp.array([3, 3]))["loss"]
  assert float(loss(logits)) == 0.0
  np.testing.assert_array_equal(jax.grad(loss)(logits), 0.0)
