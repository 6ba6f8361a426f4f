"""Max-pooling written as the elementwise maximum of strided slices.

XLA differentiates `lax.reduce_window(max)` through an index-tracking select-and-scatter; the
elementwise maximum of the shifted, strided slices has a gradient made of cheap selects, which
XLA:CPU runs much faster (benchmarks/speed.py times the conv stack); on GPU both forms compile
to similar fused code. The results are
bit-identical to `flax.linen.max_pool`; tests/ops/test_pooling.py checks values and gradients.
"""

from __future__ import annotations

import jax.numpy as jnp


def max_pool_2x2(x: jnp.ndarray, *, stride_w: int = 2, pad_w: int = 0) -> jnp.ndarray:
  """2x2 max-pool with stride 2 in height and `stride_w` in width, NHWC.

  Args:
    x: `[B, H, W, C]` activations.
    stride_w: the width stride (2 for the first two CRNN pools, 1 for the last two).
    pad_w: columns of -inf padding added on each side in width before pooling.

  Returns:
    `[B, H // 2, (W + 2 * pad_w - 2) // stride_w + 1, C]`.
  """
  if pad_w:
    x = jnp.pad(x, ((0, 0), (0, 0), (pad_w, pad_w), (0, 0)), constant_values=-jnp.inf)
  h_out = x.shape[1] // 2
  w_out = (x.shape[2] - 2) // stride_w + 1
  w_span = (w_out - 1) * stride_w + 1
  out = None
  for dy in (0, 1):
    for dx in (0, 1):
      s = x[:, dy:dy + 2 * h_out:2, dx:dx + w_span:stride_w, :]
      out = s if out is None else jnp.maximum(out, s)
  return out
