"""Conv and BatchNorm layers whose gradients suit XLA:CPU (same parameters as flax's).

Two things make XLA:CPU's gradient of the plain flax conv stack slow, and both are fixed here
without changing what is computed:

1. Per-channel reductions. XLA:CPU rewrites a large reduction, such as a conv bias gradient
   (the sum of `[B, H, W, C]` over B, H, W) or a BatchNorm statistic, into an elemental
   `reduce-window` loop that runs far below memory bandwidth. `channel_sum` writes the sum over
   the N = B*H*W positions as the matrix-vector product `ones[N] @ x[N, C]` instead, a dot that
   YNNPACK runs. Autodiff turns every broadcast of a `[C]` vector (bias, BatchNorm mean, scale)
   into such a sum, so `channel_broadcast` carries a gradient that uses `channel_sum`.
2. Weight-gradient convolutions. XLA:CPU computes them as convolutions of transposed operands
   (`[B, H, W, C]` -> `[C, H, W, B]`). Its fusion pass merges each transpose with the
   elementwise producer of its operand (the previous layer's bias, BatchNorm, ReLU, mask and
   max-pool, recomputed), and the merged loop walks the producer's inputs in transposed order,
   missing the cache on almost every read. `conv2d` hands its backward pass operands that went
   through `materialize`, so the transposes read finished arrays.

What each change measured is in docs/benchmarks.md ("Speed on a 2-core CPU").

On other backends `channel_sum` is `jnp.sum` and `materialize` the identity (chosen at lowering
time by `lax.platform_dependent`), so GPU and TPU programs are the plain ones.
tests/ops/test_fast_layers.py compares values and gradients with flax's layers in float64.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def _dot_sum(x: jnp.ndarray) -> jnp.ndarray:
  flat = x.reshape(-1, x.shape[-1])
  ones = jnp.ones((1, flat.shape[0]), flat.dtype)
  return jnp.dot(ones, flat, preferred_element_type=jnp.promote_types(x.dtype, jnp.float32))[0]


def _plain_sum(x: jnp.ndarray) -> jnp.ndarray:
  return jnp.sum(x.reshape(-1, x.shape[-1]), axis=0,
                 dtype=jnp.promote_types(x.dtype, jnp.float32))


def channel_sum(x: jnp.ndarray) -> jnp.ndarray:
  """Sum over all axes but the last: `[..., C]` -> `[C]` (at least float32)."""
  return lax.platform_dependent(x, cpu=_dot_sum, default=_plain_sum)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def channel_broadcast(v: jnp.ndarray, shape: Sequence[int]) -> jnp.ndarray:
  """Broadcasts `[C]` to `shape` `[..., C]`; its gradient is a `channel_sum`."""
  return jnp.broadcast_to(v, shape)


def _broadcast_fwd(v, shape):
  return jnp.broadcast_to(v, shape), None


def _broadcast_bwd(shape, _, g):
  del shape
  return (channel_sum(g).astype(g.dtype),)


channel_broadcast.defvjp(_broadcast_fwd, _broadcast_bwd)


def _cond_identity(xs):
  # XLA:CPU drops optimization barriers before fusion, but fusion never crosses a
  # conditional. The predicate is always true (x | 1 != 0) yet only known at run time.
  first = jax.tree.leaves(xs)[0].reshape(-1)[0]
  bits = lax.bitcast_convert_type(first, jnp.dtype(f"uint{first.dtype.itemsize * 8}"))
  return lax.cond((bits | 1) != 0, lambda v: v, lambda v: jax.tree.map(jnp.zeros_like, v), xs)


def materialize(xs):
  """Identity on a pytree of arrays that XLA:CPU's fusion cannot look through (CPU only)."""
  return lax.platform_dependent(xs, cpu=_cond_identity, default=lambda v: v)


def _conv(x, kernel, padding):
  return lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d(x: jnp.ndarray, kernel: jnp.ndarray, padding) -> jnp.ndarray:
  """Stride-1 convolution, `x [B, H, W, Cin]`, `kernel [kh, kw, Cin, Cout]`, NHWC output.

  The gradient is autodiff's, computed from materialized `x` and output gradient.
  """
  return _conv(x, kernel, padding)


def _conv_fwd(x, kernel, padding):
  return _conv(x, kernel, padding), (x, kernel)


def _conv_bwd(padding, res, dy):
  x, kernel = res
  x, dy = materialize((x, dy))
  _, vjp = jax.vjp(lambda a, b: _conv(a, b, padding), x, kernel)
  return vjp(dy)


conv2d.defvjp(_conv_fwd, _conv_bwd)


class Conv(nn.Module):
  """`flax.linen.Conv` for NHWC stride-1 convolutions, same parameters, faster gradient.

  Attributes:
    features: output channels.
    kernel_size: `(kh, kw)`.
    padding: 'VALID', 'SAME' or `((top, bottom), (left, right))`.
    dtype: computation dtype (parameters are float32).
  """

  features: int
  kernel_size: Sequence[int]
  padding: Any = "SAME"
  dtype: Any = None
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """`[B, H, W, Cin]` -> `[B, H', W', features]`."""
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", self.bias_init, (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    padding = self.padding
    if not isinstance(padding, str):
      padding = tuple(tuple(p) for p in padding)
    y = conv2d(x, kernel, padding)
    return y + channel_broadcast(bias, y.shape)


class BatchNorm(nn.Module):
  """`flax.linen.BatchNorm` over the last axis, with a mask, statistics as `channel_sum`s.

  Same parameters (`scale`, `bias`), statistics (`batch_stats` `mean` and biased `var`),
  variance formula (E[x^2] - E[x]^2, flax's `use_fast_variance`) and update rule as flax's.

  Attributes:
    use_running_average: normalize with the running statistics instead of the batch's.
    momentum: decay of the running statistics.
    epsilon: added to the variance.
    dtype: dtype of the output (statistics are float32).
  """

  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jnp.ndarray, mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """Args: x `[..., C]`; mask bool broadcastable to x, True where statistics are taken."""
    channels = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((channels,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((channels,), jnp.float32))
    scale = self.param("scale", nn.initializers.ones_init(), (channels,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), (channels,), jnp.float32)
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if self.use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      if mask is None:
        count = xf.size // channels
        masked = xf
      else:
        mask = jnp.broadcast_to(mask, x.shape)
        count = channel_sum(mask[..., :1].astype(xf.dtype))[0]
        masked = jnp.where(mask, xf, 0)
      mean = channel_sum(masked) / count
      var = jnp.maximum(0.0, channel_sum(masked * xf) / count - mean * mean)
      if not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    # (x - mean) * scale / std + bias as x * a + b: two broadcasts of [C] vectors.
    a = scale * lax.rsqrt(var + self.epsilon)
    b = bias - mean * a
    y = xf * channel_broadcast(a, x.shape) + channel_broadcast(b, x.shape)
    return y.astype(self.dtype or x.dtype)
