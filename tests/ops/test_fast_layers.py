"""ops/fast_layers.py computes what flax's Conv and BatchNorm compute: values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.ops import fast_layers


def _normal(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float64)


def _assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def test_channel_sum_and_broadcast_gradient():
  with jax.enable_x64(True):
    x = _normal((3, 4, 5, 6))
    np.testing.assert_allclose(fast_layers.channel_sum(x), x.sum((0, 1, 2)), rtol=1e-12)
    v, cot = _normal((6,), 1), _normal((3, 4, 5, 6), 2)
    ours = jax.grad(lambda v: (fast_layers.channel_broadcast(v, cot.shape) * cot).sum())(v)
    plain = jax.grad(lambda v: (jnp.broadcast_to(v, cot.shape) * cot).sum())(v)
    np.testing.assert_allclose(ours, plain, rtol=1e-12)


@pytest.mark.parametrize("kernel,padding", [((3, 3), ((1, 1), (1, 1))), ((2, 2), "VALID")])
def test_conv_matches_flax_conv(kernel, padding):
  with jax.enable_x64(True):
    x = _normal((2, 6, 9, 3))
    ours = fast_layers.Conv(5, kernel, padding=padding, dtype=jnp.float64)
    plain = nn.Conv(5, kernel, padding=padding, dtype=jnp.float64, param_dtype=jnp.float64)
    # Same parameter names, shapes and initial values as flax's (float32 parameters).
    _assert_trees_close(ours.init(jax.random.key(0), x),
                        nn.Conv(5, kernel, padding=padding).init(jax.random.key(0), x),
                        rtol=0, atol=0)
    params = plain.init(jax.random.key(0), x)
    params = jax.tree.map(lambda p: p + _normal(p.shape, 3), params)  # A non-zero bias.
    np.testing.assert_allclose(ours.apply(params, x), plain.apply(params, x), rtol=1e-12)
    cot = _normal(plain.apply(params, x).shape, 4)

    def loss(module):
      return lambda p, x: (module.apply(p, x) * cot).sum()

    _assert_trees_close(jax.grad(loss(ours), argnums=(0, 1))(params, x),
                        jax.grad(loss(plain), argnums=(0, 1))(params, x))


def _bn_apply(module, variables, x, mask, train):
  return module.apply(variables, x, mask=mask, mutable=["batch_stats"] if train else False)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_matches_flax_batch_norm_with_mask(train):
  with jax.enable_x64(True):
    x = _normal((3, 2, 7, 4)) * 3 + 1
    mask = jnp.broadcast_to((jnp.arange(7) < jnp.array([7, 4, 2])[:, None])[:, None, :, None],
                            x.shape)
    kwargs = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                  dtype=jnp.float64)
    ours = fast_layers.BatchNorm(**kwargs)
    plain = nn.BatchNorm(**kwargs, param_dtype=jnp.float64)
    variables = plain.init(jax.random.key(0), x, mask=mask)
    assert jax.tree.structure(ours.init(jax.random.key(0), x, mask=mask)) == (
        jax.tree.structure(variables))
    variables = {
        "params": jax.tree.map(lambda p: p + _normal(p.shape, 5), variables["params"]),
        "batch_stats": {"mean": _normal((4,), 6), "var": jnp.exp(_normal((4,), 7))},
    }
    out_ours = _bn_apply(ours, variables, x, mask, train)
    out_plain = _bn_apply(plain, variables, x, mask, train)
    _assert_trees_close(out_ours, out_plain)
    y = out_plain[0] if train else out_plain
    cot = _normal(y.shape, 8)

    def loss(module):
      def f(params, x):
        out = _bn_apply(module, dict(variables, params=params), x, mask, train)
        return ((out[0] if train else out) * cot).sum()
      return f

    _assert_trees_close(jax.grad(loss(ours), argnums=(0, 1))(variables["params"], x),
                        jax.grad(loss(plain), argnums=(0, 1))(variables["params"], x))


def test_materialize_is_the_identity_and_passes_non_finite_values():
  x = jnp.array([[jnp.nan, 1.0], [jnp.inf, -0.0]])
  y, z = jax.jit(fast_layers.materialize)((x, jnp.arange(3)))
  np.testing.assert_array_equal(y, x)
  np.testing.assert_array_equal(z, jnp.arange(3))
