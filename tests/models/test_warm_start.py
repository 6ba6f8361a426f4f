"""Tests for crnn_jax.models.warm_start: copying trained weights into another alphabet or width."""

import jax
import numpy as np
import pytest

from crnn_jax.models import crnn
from crnn_jax.models import warm_start


def _variables(chars: str, channels=(4, 4, 8, 8, 8, 8, 8), hidden=8, seed=0):
  model = crnn.CRNN(num_classes=len(chars) + 1, conv_channels=channels, lstm_hidden=hidden)
  variables = model.init(jax.random.PRNGKey(seed), np.zeros((1, 32, 16, 1), np.float32),
                         np.array([16]))
  return jax.tree.map(np.array, variables)  # Writable copies.


def test_partial_copies_every_same_shape_array_and_maps_shared_classes():
  theirs = _variables("abc1", seed=1)
  ours = _variables("中a文1x", seed=2)
  merged, report = warm_start.transfer(ours, theirs, mode="partial", run_chars="中a文1x",
                                       weights_chars="abc1")
  kernel = merged["params"]["rnn1"]["projection"]["kernel"]
  bias = merged["params"]["rnn1"]["projection"]["bias"]
  their_kernel = theirs["params"]["rnn1"]["projection"]["kernel"]
  our_kernel = ours["params"]["rnn1"]["projection"]["kernel"]
  # Run classes: 0 blank, 1 中, 2 a, 3 文, 4 1, 5 x. Weights: 0 blank, 1 a, 2 b, 3 c, 4 1.
  for run_class, weight_class in ((0, 0), (2, 1), (4, 4)):
    np.testing.assert_array_equal(kernel[:, run_class], their_kernel[:, weight_class])
    assert bias[run_class] == theirs["params"]["rnn1"]["projection"]["bias"][weight_class]
  for fresh_class in (1, 3, 5):
    np.testing.assert_array_equal(kernel[:, fresh_class], our_kernel[:, fresh_class])
  # Every other array is the trained one.
  np.testing.assert_array_equal(merged["params"]["cnn"]["conv0"]["kernel"],
                                theirs["params"]["cnn"]["conv0"]["kernel"])
  np.testing.assert_array_equal(merged["params"]["rnn0"]["forward_cell"]["hi"]["kernel"],
                                theirs["params"]["rnn0"]["forward_cell"]["hi"]["kernel"])
  assert report.class_mapped == [
      "['params']['rnn1']['projection']['bias']: 3 of 6 classes",
      "['params']['rnn1']['projection']['kernel']: 3 of 6 classes"]
  assert report.fresh == [] and report.sliced == [] and report.unused == []
  n_arrays = len(jax.tree.leaves(ours))
  assert len(report.copied) == n_arrays - 2


def test_same_size_alphabet_in_another_order_is_mapped_not_copied():
  theirs = _variables("ab", seed=1)
  ours = _variables("ba", seed=2)
  merged, _ = warm_start.transfer(ours, theirs, mode="partial", run_chars="ba",
                                  weights_chars="ab")
  their_bias = theirs["params"]["rnn1"]["projection"]["bias"]
  np.testing.assert_array_equal(merged["params"]["rnn1"]["projection"]["bias"],
                                their_bias[[0, 2, 1]])


def test_partial_leaves_other_shapes_fresh_and_names_them():
  theirs = _variables("ab", hidden=8, seed=1)
  ours = _variables("ab", hidden=4, seed=2)
  merged, report = warm_start.transfer(ours, theirs, mode="partial", run_chars="ab",
                                       weights_chars="ab")
  np.testing.assert_array_equal(merged["params"]["rnn0"]["forward_cell"]["hi"]["kernel"],
                                ours["params"]["rnn0"]["forward_cell"]["hi"]["kernel"])
  np.testing.assert_array_equal(merged["params"]["cnn"]["conv0"]["kernel"],
                                theirs["params"]["cnn"]["conv0"]["kernel"])
  assert ("['params']['rnn0']['forward_cell']['ii']['kernel']: run (8, 4), weights (8, 8)"
          in report.fresh)
  assert "left fresh" in report.summary()


def test_subset_takes_leading_channels_and_splits_the_projection_by_direction():
  theirs = _variables("ab", channels=(4, 4, 8, 8, 8, 8, 8), hidden=8, seed=1)
  ours = _variables("ab", channels=(2, 2, 4, 4, 4, 4, 4), hidden=4, seed=2)
  merged, report = warm_start.transfer(ours, theirs, mode="subset", run_chars="ab",
                                       weights_chars="ab")
  np.testing.assert_array_equal(merged["params"]["cnn"]["conv1"]["kernel"],
                                theirs["params"]["cnn"]["conv1"]["kernel"][:, :, :2, :2])
  projection = theirs["params"]["rnn0"]["projection"]["kernel"]  # [2 * 8, 8]
  np.testing.assert_array_equal(merged["params"]["rnn0"]["projection"]["kernel"],
                                np.concatenate([projection[:4, :4], projection[8:12, :4]]))
  # The class scores: rows per direction, every class (same alphabet).
  scores = theirs["params"]["rnn1"]["projection"]["kernel"]
  np.testing.assert_array_equal(merged["params"]["rnn1"]["projection"]["kernel"],
                                np.concatenate([scores[:4], scores[8:12]]))
  assert report.fresh == []
  assert report.sliced
  # Partial mode leaves those arrays fresh instead.
  _, partial = warm_start.transfer(ours, theirs, mode="partial", run_chars="ab",
                                   weights_chars="ab")
  assert len(partial.fresh) == len(report.sliced) + 1  # + the class-score kernel.


def test_a_subset_model_reads_as_the_wide_one_when_the_extra_channels_are_zero():
  """Slicing is consistent across layers: a wide model whose extra channels carry nothing and a
  narrow model made by `subset` compute the same scores."""
  wide = _variables("ab", channels=(4, 4, 8, 8, 8, 8, 8), hidden=8, seed=1)
  narrow_init = _variables("ab", channels=(2, 2, 4, 4, 4, 4, 4), hidden=4, seed=2)
  # Zero what reads the extra channels of the wide model, so they contribute nothing.
  params = wide["params"]
  convs = sorted(k for k in params["cnn"] if k.startswith("conv"))
  for name, n_in in zip(convs[1:], (2, 2, 4, 4, 4, 4)):
    params["cnn"][name]["kernel"][:, :, n_in:, :] = 0
  for layer in ("rnn0", "rnn1"):
    for direction in ("forward_cell", "backward_cell"):
      cell = params[layer][direction]
      for gate in "ifgo":
        cell[f"i{gate}"]["kernel"][4:] = 0  # Extra conv channels / projection outputs.
        cell[f"h{gate}"]["kernel"][4:] = 0
    projection = params[layer]["projection"]["kernel"]
    projection[4:8] = 0
    projection[12:] = 0
  narrow, _ = warm_start.transfer(narrow_init, wide, mode="subset", run_chars="ab",
                                  weights_chars="ab")
  images = np.random.default_rng(0).uniform(-1, 1, (2, 32, 24, 1)).astype(np.float32)
  widths = np.array([24, 17])
  wide_model = crnn.CRNN(num_classes=3, conv_channels=(4, 4, 8, 8, 8, 8, 8), lstm_hidden=8)
  narrow_model = crnn.CRNN(num_classes=3, conv_channels=(2, 2, 4, 4, 4, 4, 4), lstm_hidden=4)
  a, _ = wide_model.apply(wide, images, widths)
  b, _ = narrow_model.apply(narrow, images, widths)
  # The wide model's LSTM units 4..7 still run (their inputs are zero, not their states), but
  # nothing reads them: their outputs meet only zeroed rows.
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_unknown_mode_and_unused_arrays():
  theirs = _variables("ab", seed=1)
  theirs["params"]["extra"] = np.zeros(3)
  ours = _variables("ab", seed=2)
  _, report = warm_start.transfer(ours, theirs, mode="partial", run_chars="ab",
                                  weights_chars="ab")
  assert report.unused == ["['params']['extra']"]
  with pytest.raises(ValueError, match="'partial' or 'subset'"):
    warm_start.transfer(ours, theirs, mode="exact")


def test_only_the_class_scores_are_mapped_by_character():
  """An array elsewhere whose last axis happens to equal the class count is copied whole (or
  left fresh), never remapped (e.g. a rectifier's 40 outputs against a 39-character alphabet)."""
  theirs = _variables("ab", seed=1)
  ours = _variables("ba", seed=2)
  theirs["params"]["extra"] = {"kernel": np.arange(6.0).reshape(2, 3)}  # 3 = the class count.
  ours["params"]["extra"] = {"kernel": np.zeros((2, 3))}
  merged, report = warm_start.transfer(ours, theirs, mode="partial", run_chars="ba",
                                       weights_chars="ab")
  np.testing.assert_array_equal(merged["params"]["extra"]["kernel"], np.arange(6.0).reshape(2, 3))
  assert "['params']['extra']['kernel']" in report.copied
  assert len(report.class_mapped) == 2
