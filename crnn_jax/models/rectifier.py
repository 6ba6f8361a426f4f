"""A thin-plate-spline (TPS) rectifier in front of the CRNN: RARE's spatial transformer.

Shi, Wang, Lyu, Yao and Bai, "Robust Scene Text Recognition with Automatic Rectification"
(CVPR 2016), and the "Trans" stage of deep-text-recognition-benchmark (DTRB): a small
localization network looks at the image and predicts K fiducial points (K = 20: K / 2 along
the top edge of the text, K / 2 along the bottom); a thin-plate spline maps the canonical
points, evenly spaced along the top and bottom edges of the output, onto the predicted ones,
and the output image is sampled bilinearly from the input at the mapped positions. Curved and
slanted words come out straight, and the CRNN reads the output as it reads a plain image.

Coordinates. Each image is normalized to [-1, 1]^2 over its *true* size: x = -1 is the left
edge of column 0 and x = 1 the right edge of column `width - 1` (pixel centre j is at
`(2j + 1) / width - 1`), y likewise over the H rows. With keep-ratio widths every image of a
padded batch has its own normalization, so the canonical points sit on its own edges and the
sampling never reads its padding: source positions are clamped to the real region (columns
`[0, width - 1]`, DTRB's 'border' padding), and the output keeps the input's size `[B, H, W]`
with the same true widths (columns beyond are zero).

Identity at initialization. The last layer of the localization network starts with zero
weights and a bias equal to the canonical points, so its output is exactly the canonical
points. The grid is computed as the identity plus the TPS of the points' *displacements*
`C' - C` (the same map, since a TPS reproduces affine maps and is linear in its targets): zero
displacements give zero coefficients and source positions exactly on the pixel centres, and
bilinear sampling there returns the input pixels bit for bit. A model with a fresh rectifier
thus reads exactly as the same CRNN without one (tests/models/test_rectifier.py), and a CRNN's
trained weights start a rectifier model with it at identity (`init_weights_mode='partial'`).

Padding. The localization network sees only each image's real columns: the input is zeroed
beyond its width, every convolution's output is zeroed beyond the valid columns (as in
`crnn.ConvStack`; masked BatchNorm statistics in training), and its features are averaged over
K / 2 column bins spanning each image's own valid columns (a masked adaptive average pool, in
place of DTRB's global pool over a fixed 32 x 100 input: the bins keep where along the word a
feature was seen). A sample's output therefore does not depend on its batch's padding.

Layout (defaults): four 3x3 convolutions (32, 64, 128, 256 channels) each with BatchNorm and
ReLU, 2x2 max-pools after the first three (32 x W -> 4 x W / 8), the mean over height and the
column bins (`[B, K / 2, 256]`), Dense 256 + ReLU, Dense 2K (the points). About 1 M parameters
and 6% of the paper-size CRNN's multiply-adds; the grid and the sampling are elementwise work
of O(H W K) per image. Its cost in time: benchmarks/rectifier.py.

`crnn_jax.onnx_graph` writes the same computation as native ONNX operators (GatherElements
for the sampling).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from crnn_jax.ops import fast_layers
from crnn_jax.ops import pooling

KINDS = ("none", "tps")
DEFAULT_POINTS = 20  # DTRB's F.
DEFAULT_CHANNELS = (32, 64, 128, 256)
DEFAULT_HIDDEN = 256
POOL_FACTOR = 8  # Three stride-2 max-pools in the localization network.
# The TPS kernel U(r) = r^2 log(r^2 / 4): the same spline as r^2 log r^2 (the difference,
# -log 4 r^2, sums to a constant under the spline's side conditions and goes into its affine
# part), with terms a third as large over the image (r^2 <= 8), so that float32 evaluation of
# the sum, which largely cancels, loses less. KERNEL_EPS keeps U(0) = 0 * log(eps) finite.
KERNEL_SCALE = 0.25
KERNEL_EPS = 1e-9


def canonical_points(num_points: int = DEFAULT_POINTS) -> np.ndarray:
  """The K canonical fiducial points, float64 `[K, 2]` (x, y) in normalized coordinates.

  K / 2 evenly spaced along the top edge (y = -1) from x = -1 to 1, then K / 2 along the
  bottom edge (y = 1), as DTRB's `_build_C`.
  """
  if num_points < 4 or num_points % 2:
    raise ValueError(f"the TPS needs an even number of fiducial points >= 4, got {num_points}")
  xs = np.linspace(-1.0, 1.0, num_points // 2)
  top = np.stack([xs, -np.ones_like(xs)], axis=1)
  bottom = np.stack([xs, np.ones_like(xs)], axis=1)
  return np.concatenate([top, bottom], axis=0)


def tps_kernel(r2):
  """The TPS radial basis U(r) = r^2 log(r^2 / 4) of squared distances (numpy or jax arrays)."""
  if isinstance(r2, np.ndarray):
    return r2 * np.log(r2 * KERNEL_SCALE + KERNEL_EPS)
  return r2 * jnp.log(r2 * KERNEL_SCALE + KERNEL_EPS)


def tps_solver(points: np.ndarray) -> np.ndarray:
  """The matrix that turns target values at `points` into TPS coefficients, float64 `[K+3, K]`.

  The TPS through values v `[K, D]` at the points c_k is
  f(p) = a0 + a1 x + a2 y + sum_k w_k U(|p - c_k|), with coefficients
  `[a0, a1, a2, w_1 .. w_K] = solver @ v` (the interpolation conditions plus
  sum w = sum w x = sum w y = 0).
  """
  k = len(points)
  r2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
  system = np.zeros((k + 3, k + 3))
  system[:k, 0] = 1.0
  system[:k, 1:3] = points
  system[:k, 3:] = tps_kernel(r2)
  system[k, 3:] = 1.0
  system[k + 1:, 3:] = points.T
  return np.linalg.inv(system)[:, :k]


def valid_feature_width(widths):
  """Valid columns of the localization network's last features for true widths `widths`."""
  return widths // POOL_FACTOR


def bin_weights(valid, width: int, bins: int):
  """`[B, width, bins]` weights averaging each of `bins` column bins of the valid columns.

  Bin n spans columns `[floor(n v / N), ceil((n + 1) v / N))` of the `v = valid[b]` valid ones
  (at least one column; columns beyond v are zero features, read only when v = 0).
  """
  valid = jnp.asarray(valid, jnp.int32)[:, None, None]
  cols = jnp.arange(width, dtype=jnp.int32)[None, :, None]
  n = jnp.arange(bins, dtype=jnp.int32)[None, None, :]
  lo = (n * valid) // bins
  hi = jnp.maximum(((n + 1) * valid + bins - 1) // bins, lo + 1)
  inside = (cols >= lo) & (cols < hi)
  return inside.astype(jnp.float32) / (hi - lo).astype(jnp.float32)


def sampling_grid(points, widths, height: int, width: int, num_points: int):
  """Source pixel positions of every output pixel, for predicted fiducial points.

  Args:
    points: `[B, K, 2]` predicted fiducial points (x, y), normalized to each image.
    widths: `[B]` true widths.
    height, width: H and the padded width W of the output.
    num_points: K.

  Returns:
    (px, py) float32 `[B, H, W]`: the source column and row of each output pixel, not yet
    clamped; exactly (j, i) when the points are the canonical ones.
  """
  canon = canonical_points(num_points)
  solver = jnp.asarray(tps_solver(canon), jnp.float32)
  delta = points.astype(jnp.float32) - jnp.asarray(canon, jnp.float32)[None]
  coef = jnp.einsum("ak,bkd->bad", solver, delta)  # [B, K + 3, 2]
  w = jnp.maximum(jnp.asarray(widths, jnp.int32), 1).astype(jnp.float32)
  cols = jnp.arange(width, dtype=jnp.float32)
  rows = jnp.arange(height, dtype=jnp.float32)
  xs = (2.0 * cols[None, :] + 1.0) / w[:, None] - 1.0  # [B, W]
  ys = (2.0 * rows + 1.0) / height - 1.0  # [H]
  cx = jnp.asarray(canon[:, 0], jnp.float32)
  cy = jnp.asarray(canon[:, 1], jnp.float32)
  r2 = ((ys[:, None] - cy[None, :]) ** 2)[None, :, None, :] + (
      (xs[:, :, None] - cx[None, None, :]) ** 2)[:, None, :, :]  # [B, H, W, K]
  disp = (coef[:, None, None, 0, :] + xs[:, None, :, None] * coef[:, None, None, 1, :]
          + ys[None, :, None, None] * coef[:, None, None, 2, :]
          + jnp.einsum("bhwk,bkd->bhwd", tps_kernel(r2), coef[:, 3:]))  # [B, H, W, 2]
  px = cols[None, None, :] + 0.5 * w[:, None, None] * disp[..., 0]
  py = rows[None, :, None] + 0.5 * height * disp[..., 1]
  return px, py


def bilinear_sample(images, widths, px, py):
  """Samples `images` `[B, H, W, 1]` at (px, py) `[B, H, W]`, clamped to each real region.

  Positions are clamped to columns `[0, widths[b] - 1]` and rows `[0, H - 1]`, and both
  neighbours of the interpolation lie there, so the padding is never read. Returns float32
  `[B, H, W, 1]`, zero beyond each width.
  """
  batch, height, width = images.shape[0], images.shape[1], images.shape[2]
  wi = jnp.maximum(jnp.asarray(widths, jnp.int32), 1)[:, None, None]
  px = jnp.clip(px, 0.0, (wi - 1).astype(jnp.float32))
  py = jnp.clip(py, 0.0, float(height - 1))
  x0f, y0f = jnp.floor(px), jnp.floor(py)
  fx, fy = px - x0f, py - y0f
  x0, y0 = x0f.astype(jnp.int32), y0f.astype(jnp.int32)
  x1 = jnp.minimum(x0 + 1, wi - 1)
  y1 = jnp.minimum(y0 + 1, height - 1)
  flat = images.astype(jnp.float32).reshape(batch, height * width)

  def pick(y, x):
    index = (y * width + x).reshape(batch, height * width)
    return jnp.take_along_axis(flat, index, axis=1, mode="clip").reshape(batch, height, width)

  top = (1.0 - fx) * pick(y0, x0) + fx * pick(y0, x1)
  bottom = (1.0 - fx) * pick(y1, x0) + fx * pick(y1, x1)
  out = (1.0 - fy) * top + fy * bottom
  inside = jnp.arange(width)[None, None, :] < jnp.asarray(widths, jnp.int32)[:, None, None]
  return jnp.where(inside, out, 0.0)[..., None]


def _column_mask(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """`[B, 1, W, 1]` boolean mask of the first `valid[b]` columns of `x` `[B, H, W, C]`."""
  return (jnp.arange(x.shape[2])[None, :] < valid[:, None])[:, None, :, None]


def fiducial_bias_init(num_points: int):
  """Initializer of the last layer's bias: the canonical points, flattened (x0, y0, x1, ...)."""
  def init(key, shape, dtype=jnp.float32):
    del key
    value = jnp.asarray(canonical_points(num_points).reshape(-1), dtype)
    if value.shape != tuple(shape):
      raise ValueError(f"fiducial bias shape {shape}, expected {value.shape}")
    return value
  return init


class TPSRectifier(nn.Module):
  """Localization network, TPS grid and bilinear sampling (see the module docstring).

  Attributes:
    num_points: K fiducial points (even, >= 4).
    channels: output channels of the localization network's four convolutions.
    hidden: units of its hidden Dense layer.
  """

  num_points: int = DEFAULT_POINTS
  channels: Sequence[int] = DEFAULT_CHANNELS
  hidden: int = DEFAULT_HIDDEN

  @nn.compact
  def __call__(self, images: jnp.ndarray, widths: jnp.ndarray, *,
               train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Rectifies a padded batch.

    Args:
      images: `[B, H, W, 1]` images in [-1, 1], padded to a common width W.
      widths: `[B]` int32 true widths.
      train: BatchNorm uses (masked) batch statistics when True.

    Returns:
      rectified: float32 `[B, H, W, 1]`, the same true widths, zero beyond them.
      points: float32 `[B, K, 2]` predicted fiducial points (x, y), normalized to each image's
        true size ([-1, 1] spans it).
    """
    if len(self.channels) != 4:
      raise ValueError(f"the localization network has 4 convolutions, got {self.channels}")
    canonical_points(self.num_points)  # Validates K.
    widths = jnp.asarray(widths, jnp.int32)
    height, width = images.shape[1], images.shape[2]
    if height % POOL_FACTOR:
      raise ValueError(f"the rectifier needs a height divisible by {POOL_FACTOR}, got {height}")
    x = images.astype(jnp.float32)
    valid = widths
    mask = _column_mask(x, valid)
    x = jnp.where(mask, x, 0.0)
    for layer, features in enumerate(self.channels):
      x = fast_layers.Conv(features, kernel_size=(3, 3), padding=((1, 1), (1, 1)),
                           dtype=jnp.float32, name=f"conv{layer}")(x)
      x = fast_layers.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                dtype=jnp.float32, name=f"bn{layer}")(
                                    x, mask=jnp.broadcast_to(mask, x.shape))
      x = jnp.where(mask, nn.relu(x), 0.0)
      if layer < len(self.channels) - 1:
        x = pooling.max_pool_2x2(x, stride_w=2)
        valid = valid // 2
        mask = _column_mask(x, valid)
        x = jnp.where(mask, x, 0.0)
    bins = self.num_points // 2
    weights = bin_weights(valid, x.shape[2], bins)  # [B, W', N]
    pooled = jnp.einsum("bhwc,bwn->bnc", x, weights) / x.shape[1]  # [B, N, C]
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(pooled.reshape(pooled.shape[0], -1)))
    points = nn.Dense(2 * self.num_points, kernel_init=nn.initializers.zeros_init(),
                      bias_init=fiducial_bias_init(self.num_points), name="fiducials")(h)
    points = points.reshape(-1, self.num_points, 2)
    px, py = sampling_grid(points, widths, height, width, self.num_points)
    return bilinear_sample(images, widths, px, py), points


def pixel_points(points, widths, height: int) -> np.ndarray:
  """Normalized fiducial points `[B, K, 2]` as (column, row) pixel positions of each image."""
  points = np.asarray(points, np.float64)
  w = np.maximum(np.asarray(widths), 1).astype(np.float64)[:, None]
  return np.stack([((points[..., 0] + 1.0) * w - 1.0) / 2.0,
                   ((points[..., 1] + 1.0) * height - 1.0) / 2.0], axis=-1)


def variables_of(variables: dict[str, Any]) -> dict[str, Any]:
  """The rectifier's own {'params', 'batch_stats'} inside a CRNN's variables."""
  return {collection: tree["rectifier"] for collection, tree in variables.items()
          if isinstance(tree, Mapping) and "rectifier" in tree}
