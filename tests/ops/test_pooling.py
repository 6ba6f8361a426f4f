"""The slice-based max-pool equals flax's reduce_window max-pool, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax.ops import pooling


def _reference(x, stride_w, pad_w):
  return nn.max_pool(x, (2, 2), strides=(2, stride_w), padding=((0, 0), (pad_w, pad_w)))


@pytest.mark.parametrize("stride_w,pad_w", [(2, 0), (1, 1)])
@pytest.mark.parametrize("shape", [(2, 8, 13, 3), (1, 4, 26, 2), (3, 2, 7, 1)])
def test_values_and_gradients_match_reduce_window(shape, stride_w, pad_w):
  with jax.enable_x64(True):
    # Random values have no ties, so the max's gradient is unique.
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float64)
    ours = pooling.max_pool_2x2(x, stride_w=stride_w, pad_w=pad_w)
    ref = _reference(x, stride_w, pad_w)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)
    cot = jnp.asarray(np.random.default_rng(1).normal(size=ref.shape), jnp.float64)
    g_ours = jax.grad(lambda v: (pooling.max_pool_2x2(v, stride_w=stride_w, pad_w=pad_w)
                                 * cot).sum())(x)
    g_ref = jax.grad(lambda v: (_reference(v, stride_w, pad_w) * cot).sum())(x)
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-12)
