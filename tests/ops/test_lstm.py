"""ops/lstm.py against flax's `nn.Bidirectional(nn.RNN(OptimizedLSTMCell))`, the plain layer."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.models import crnn
from crnn_jax.ops import lstm

LENGTHS = np.array([7, 4, 1])  # Frames 4..6 of sample 1 and 1..6 of sample 2 are padding.


class FlaxBidirectionalLSTM(nn.Module):
  """The plain layer: what crnn.BidirectionalLSTM computed before ops/lstm.py."""

  hidden: int
  out_features: int
  dtype: jnp.dtype = jnp.float64

  @nn.compact
  def __call__(self, x, lengths):
    cell = lambda name: nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype,
                                             param_dtype=self.dtype, name=name)
    bidir = nn.Bidirectional(nn.RNN(cell("forward_cell"), name="forward"),
                             nn.RNN(cell("backward_cell"), name="backward"), name="bilstm")
    y = bidir(x, seq_lengths=lengths)
    return nn.Dense(self.out_features, dtype=self.dtype, param_dtype=self.dtype,
                    name="projection")(y)


def _ours(params, x, lengths):
  y = lstm.bidirectional_lstm(x, lengths, params["forward_cell"], params["backward_cell"])
  return y @ params["projection"]["kernel"] + params["projection"]["bias"]


@pytest.fixture
def float64():
  jax.config.update("jax_enable_x64", True)
  yield
  jax.config.update("jax_enable_x64", False)


def _setup(hidden=4, features=5, frames=7):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(len(LENGTHS), frames, features)))
  plain = FlaxBidirectionalLSTM(hidden, 3)
  params = plain.init(jax.random.key(0), x, jnp.asarray(LENGTHS))["params"]
  real = (np.arange(frames)[None, :] < LENGTHS[:, None])[..., None]
  return rng, x, plain, params, real


def test_values_and_gradients_equal_flax_on_real_frames(float64):
  rng, x, plain, params, real = _setup()
  lengths = jnp.asarray(LENGTHS)
  expected = plain.apply({"params": params}, x, lengths)
  got = _ours(params, x, lengths)
  assert np.abs(np.where(real, expected, 0)).max() > 0.1
  np.testing.assert_allclose(np.where(real, got, 0), np.where(real, expected, 0),
                             rtol=1e-12, atol=1e-12)

  weights = jnp.asarray(rng.normal(size=expected.shape))
  def loss(f):  # Only real frames count, as in the model's CTC loss.
    return lambda p, x: jnp.sum(jnp.where(real, f(p, x), 0) * weights)
  expected_grads = jax.grad(loss(lambda p, x: plain.apply({"params": p}, x, lengths)),
                            argnums=(0, 1))(params, x)
  got_grads = jax.grad(loss(lambda p, x: _ours(p, x, lengths)), argnums=(0, 1))(params, x)
  flat_expected = jax.tree_util.tree_leaves_with_path(expected_grads)
  for (path, e), g in zip(flat_expected, jax.tree.leaves(got_grads)):
    assert np.abs(e).max() > 0, jax.tree_util.keystr(path)  # Every gradient is exercised.
    np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, err_msg=jax.tree_util.keystr(path))


def test_padding_frames_are_zero_and_do_not_reach_real_frames(float64):
  _, x, _, params, real = _setup()
  lengths = jnp.asarray(LENGTHS)
  y = lstm.bidirectional_lstm(x, lengths, params["forward_cell"], params["backward_cell"])
  assert np.all(np.asarray(y)[~np.broadcast_to(real, y.shape)] == 0)
  garbage = x + 100 * jnp.asarray(~real, x.dtype)  # Change only the padding frames.
  y2 = lstm.bidirectional_lstm(garbage, lengths, params["forward_cell"], params["backward_cell"])
  np.testing.assert_array_equal(y2, y)


def test_model_layer_has_flax_parameters_and_results():
  """crnn.BidirectionalLSTM declares flax's parameter tree and initial values, and computes
  flax's outputs (float32)."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(3, 7, 5)), jnp.float32)
  lengths = jnp.asarray(LENGTHS)
  layer = crnn.BidirectionalLSTM(hidden=4, out_features=3)
  plain = FlaxBidirectionalLSTM(4, 3, dtype=jnp.float32)
  params = layer.init(jax.random.key(0), x, lengths)["params"]
  plain_params = plain.init(jax.random.key(0), x, lengths)["params"]
  assert jax.tree.structure(params) == jax.tree.structure(plain_params)
  jax.tree.map(np.testing.assert_array_equal, params, plain_params)
  real = (np.arange(7)[None, :] < LENGTHS[:, None])[..., None]
  np.testing.assert_allclose(np.where(real, layer.apply({"params": params}, x, lengths), 0),
                             np.where(real, plain.apply({"params": params}, x, lengths), 0),
                             rtol=1e-5, atol=1e-6)
