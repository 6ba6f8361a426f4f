"""Tests of the CRNN model: layout, parameter count, shapes and padding invariance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.models import crnn

# crnn.pytorch counts 8,331,301 parameters for 37 classes with PyTorch's two LSTM bias vectors
# (b_ih and b_hh). Flax's LSTM cell has one bias per gate: 4 LSTMs x 4 gates x 256 fewer.
CRNN_PYTORCH_PARAMS = 8_331_301
OUR_PARAMS = CRNN_PYTORCH_PARAMS - 4 * 4 * 256


def _init(model, width=100, batch=1):
  images = jnp.zeros((batch, 32, width, 1))
  return model.init(jax.random.key(0), images, jnp.full((batch,), width), train=False)


def _shapes(model, width=100):
  """The variables' shapes and dtypes, without compiling or running anything."""
  images = jax.ShapeDtypeStruct((1, 32, width, 1), jnp.float32)
  widths = jax.ShapeDtypeStruct((1,), jnp.int32)
  return jax.eval_shape(lambda x, w: model.init(jax.random.key(0), x, w), images, widths)


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_parameter_count_matches_crnn_pytorch_layout():
  variables = _shapes(crnn.CRNN(num_classes=37))
  assert _count(variables["params"]) == OUR_PARAMS == 8_327_205
  assert abs(_count(variables["params"]) / CRNN_PYTORCH_PARAMS - 1) < 0.01
  # Running statistics exist for the three BatchNorm layers (256 + 512 + 512 channels).
  assert _count(variables["batch_stats"]) == 2 * (256 + 512 + 512)


def test_layer_shapes():
  params = _shapes(crnn.CRNN(num_classes=37))["params"]
  cnn = params["cnn"]
  expected = [(3, 3, 1, 64), (3, 3, 64, 128), (3, 3, 128, 256), (3, 3, 256, 256),
              (3, 3, 256, 512), (3, 3, 512, 512), (2, 2, 512, 512)]
  assert [cnn[f"conv{i}"]["kernel"].shape for i in range(7)] == expected
  assert sorted(k for k in cnn if k.startswith("bn")) == ["bn2", "bn4", "bn6"]
  assert params["rnn0"]["projection"]["kernel"].shape == (512, 256)
  assert params["rnn1"]["projection"]["kernel"].shape == (512, 37)
  assert params["rnn0"]["forward_cell"]["ii"]["kernel"].shape == (512, 256)
  assert params["rnn1"]["backward_cell"]["hi"]["kernel"].shape == (256, 256)


def test_paper_batch_norm_layout():
  params = _shapes(crnn.CRNN(num_classes=37, batch_norm_layout="paper"))["params"]
  assert sorted(k for k in params["cnn"] if k.startswith("bn")) == ["bn4", "bn5"]
  with pytest.raises(ValueError, match="batch_norm_layout"):
    _shapes(crnn.CRNN(num_classes=37, batch_norm_layout="nope"))


@pytest.mark.parametrize("width", [8, 33, 100, 101, 102, 103, 160])
def test_output_shapes_and_frames(width):
  model = crnn.CRNN(num_classes=11, conv_channels=(4, 4, 8, 8, 8, 8, 8), lstm_hidden=8)
  variables = _init(model, width=width, batch=2)
  logits, lengths = model.apply(variables, jnp.zeros((2, 32, width, 1)),
                                jnp.full((2,), width), train=False)
  assert logits.shape == (2, width // 4 + 1, 11)
  assert logits.dtype == jnp.float32
  np.testing.assert_array_equal(lengths, [width // 4 + 1] * 2)


def test_feature_map_is_1x26x512_for_32x100():
  stack = crnn.ConvStack()
  x = jnp.zeros((1, 32, 100, 1))
  variables = stack.init(jax.random.key(0), x, jnp.array([100]), train=False)
  assert stack.apply(variables, x, jnp.array([100]), train=False).shape == (1, 1, 26, 512)


def _random_batch_stats(variables, rng):
  """Non-trivial running statistics, so that inference-mode BatchNorm is not the identity."""
  def perturb(path, x):
    key = jax.random.fold_in(rng, hash(jax.tree_util.keystr(path)) % 2**31)
    if path[-1].key == "mean":
      return 0.05 * jax.random.normal(key, x.shape)
    return jax.random.uniform(key, x.shape, minval=0.5, maxval=1.5)
  return dict(variables, batch_stats=jax.tree_util.tree_map_with_path(
      perturb, variables["batch_stats"]))


@pytest.mark.parametrize("layout,width", [("torch", 57), ("torch", 40), ("torch", 42),
                                          ("torch", 43), ("paper", 41)])
def test_padding_does_not_change_a_samples_logits(layout, width):
  model = crnn.CRNN(num_classes=13, conv_channels=(8, 16, 16, 16, 32, 32, 32), lstm_hidden=16,
                    batch_norm_layout=layout)
  rng = np.random.default_rng(0)
  variables = _random_batch_stats(_init(model, width=64), jax.random.key(1))
  alone = jnp.asarray(rng.uniform(-1, 1, (1, 32, width, 1)), jnp.float32)
  logits_alone, len_alone = model.apply(variables, alone, jnp.array([width]))

  # The same image inside a wider batch, its padding filled with garbage.
  batch = rng.uniform(-1, 1, (3, 32, 131, 1)).astype(np.float32)
  batch[1, :, :width] = alone[0]
  logits_batch, len_batch = model.apply(variables, jnp.asarray(batch),
                                        jnp.array([131, width, 90]))
  frames = int(len_alone[0])
  # The check is only meaningful if the logits carry signal from the image.
  assert float(jnp.std(logits_alone[0], axis=0).mean()) > 1e-3
  assert int(len_batch[1]) == frames == width // 4 + 1
  np.testing.assert_allclose(logits_batch[1, :frames], logits_alone[0], rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_batch_norm_statistics_in_training():
  model = crnn.CRNN(num_classes=5, conv_channels=(4, 4, 8, 8, 8, 8, 8), lstm_hidden=4)
  variables = _init(model, width=40)
  rng = np.random.default_rng(1)
  image = rng.uniform(-1, 1, (2, 32, 40, 1)).astype(np.float32)
  _, tight = model.apply(variables, jnp.asarray(image), jnp.array([40, 40]), train=True,
                         mutable=["batch_stats"])
  padded = np.concatenate([image, rng.uniform(-1, 1, (2, 32, 24, 1)).astype(np.float32)], 2)
  _, loose = model.apply(variables, jnp.asarray(padded), jnp.array([40, 40]), train=True,
                         mutable=["batch_stats"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               tight["batch_stats"], loose["batch_stats"])


def test_backward_lstm_starts_at_last_real_frame():
  """The BiLSTM output on real frames ignores padded frames entirely."""
  layer = crnn.BidirectionalLSTM(hidden=6, out_features=3)
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(1, 7, 5)), jnp.float32)
  variables = layer.init(jax.random.key(0), x, jnp.array([7]))
  y = layer.apply(variables, x, jnp.array([7]))
  garbage = jnp.asarray(rng.normal(size=(1, 4, 5)) * 100, jnp.float32)
  y_padded = layer.apply(variables, jnp.concatenate([x, garbage], 1), jnp.array([7]))
  np.testing.assert_allclose(y_padded[:, :7], y, rtol=1e-5, atol=1e-6)
  # Without the length, the padding would leak into the backward direction.
  y_leaky = layer.apply(variables, jnp.concatenate([x, garbage], 1), jnp.array([11]))
  assert not np.allclose(y_leaky[:, :7], y, atol=1e-3)


def test_height_other_than_32_is_rejected_clearly():
  model = crnn.CRNN(num_classes=5, conv_channels=(4, 4, 8, 8, 8, 8, 8), lstm_hidden=4)
  with pytest.raises(ValueError, match="height"):
    model.init(jax.random.key(0), jnp.zeros((1, 64, 40, 1)), jnp.array([40]))
