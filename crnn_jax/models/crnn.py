"""The CRNN model: a VGG-style convolution stack, map-to-sequence, two BiLSTMs, class scores.

Layout of the original Torch code and crnn.pytorch (Shi, Bai, Yao 2015):

  conv 3x3 64  -> pool 2x2/2
  conv 3x3 128 -> pool 2x2/2
  conv 3x3 256 + BN
  conv 3x3 256 -> pool (2,2)/(2,1), width padding 1
  conv 3x3 512 + BN
  conv 3x3 512 -> pool (2,2)/(2,1), width padding 1
  conv 2x2 512 (no padding) + BN
  -> [B, 1, T, 512] -> BiLSTM(256) -> Dense 256 -> BiLSTM(256) -> Dense K

A 32x100 image gives T = 26 frames; in general T = W // 4 + 1.

Variable widths: a batch is padded to a common width and carries each image's true width.
Every layer's output is zeroed beyond the sample's valid columns, BatchNorm statistics ignore
padded columns, and the backward LSTM starts at each sample's last real frame, so a sample's
logits on its real frames do not depend on how much padding it was given.

Rectifier: `rectifier='tps'` puts a thin-plate-spline rectifier (crnn_jax/models/rectifier.py,
Shi et al. 2016) in front of the convolutions; it is the identity until trained, and padding-
exact like the rest. Its variables live under 'rectifier'; 'none' (the default) has none.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from crnn_jax.models import rectifier as rectifier_lib
from crnn_jax.ops import fast_layers
from crnn_jax.ops import lstm
from crnn_jax.ops import pooling

# Convolutions (0-based) followed by BatchNorm in each layout.
BATCH_NORM_LAYOUTS = {
    "torch": (2, 4, 6),  # crnn.pytorch / original Torch code: after convolutions 3, 5, 7.
    "paper": (4, 5),  # The paper's Table 4: after convolutions 5 and 6.
}
FRAME_STEP = 4  # Input columns per output frame: the two stride-2 poolings of the width.

# Pooling after convolutions (0-based): (width stride, width padding).
_POOLS = {0: (2, 0), 1: (2, 0), 3: (1, 1), 5: (1, 1)}


def output_lengths(widths):
  """Number of output frames for images of the given true widths: `W // 4 + 1`.

  Args:
    widths: `[B]` integer widths in pixels (array or int).

  Returns:
    `[B]` frame counts T.
  """
  return widths // FRAME_STEP + 1


def frame_columns(first: int, last: int, width: int) -> tuple[int, int]:
  """Input columns `[x0, x1)` of frames `first..last` of an image `width` pixels wide.

  The receptive field of frame t is centred on column 4t: the two stride-2 poolings make the
  frame step 4 pixels, and frame t covers about columns [4t - 2, 4t + 2) of the (resized,
  height-32) model input. The range is clipped to the image.
  """
  half = FRAME_STEP // 2
  x0 = min(max(FRAME_STEP * first - half, 0), width)
  x1 = min(max(FRAME_STEP * last + half, x0), width)
  return x0, x1


def _valid_width_after(layer: int, width):
  """Valid columns after convolution `layer` (0-based) and its pooling, for input width `width`."""
  if layer == 6:  # The final 2x2 convolution without padding removes one column.
    return width - 1
  if layer in _POOLS:
    stride, pad = _POOLS[layer]
    return (width + 2 * pad - 2) // stride + 1
  return width


def _column_mask(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """`[B, 1, W, 1]` boolean mask of the first `valid[b]` columns of `x` `[B, H, W, C]`."""
  cols = jnp.arange(x.shape[2])
  return (cols[None, :] < valid[:, None])[:, None, :, None]


class ConvStack(nn.Module):
  """The VGG-style feature extractor.

  Attributes:
    channels: output channels of the seven convolutions.
    batch_norm_after: 0-based indices of the convolutions followed by BatchNorm.
    dtype: activation dtype.
  """

  channels: Sequence[int] = (64, 128, 256, 256, 512, 512, 512)
  batch_norm_after: Sequence[int] = BATCH_NORM_LAYOUTS["torch"]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jnp.ndarray, widths: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """Runs the convolutions.

    Args:
      images: `[B, H, W, 1]` normalized images (H = 32 for the standard layout).
      widths: `[B]` true widths; columns beyond are padding.
      train: BatchNorm uses batch statistics (and updates running ones) when True.

    Returns:
      `[B, H', T, C]` features (H' = 1 for H = 32), zero beyond each sample's frames.
    """
    if len(self.channels) != 7:
      raise ValueError(f"the CRNN conv stack has 7 convolutions, got channels={self.channels}")
    x = images.astype(self.dtype)
    valid = widths
    mask = _column_mask(x, valid)
    x = jnp.where(mask, x, 0)
    for layer, features in enumerate(self.channels):
      last = layer == 6
      # flax.linen.Conv and BatchNorm with gradients that suit XLA:CPU (ops/fast_layers.py).
      x = fast_layers.Conv(
          features,
          kernel_size=(2, 2) if last else (3, 3),
          padding="VALID" if last else ((1, 1), (1, 1)),
          dtype=self.dtype,
          name=f"conv{layer}",
      )(x)
      if last:
        mask = _column_mask(x, _valid_width_after(layer, valid))
      if layer in self.batch_norm_after:
        x = fast_layers.BatchNorm(
            use_running_average=not train,
            momentum=0.9,  # PyTorch's momentum 0.1.
            epsilon=1e-5,
            dtype=self.dtype,
            name=f"bn{layer}",
        )(x, mask=jnp.broadcast_to(mask, x.shape))
      x = nn.relu(x)
      if layer in _POOLS:
        # Padded columns must be zero before pooling: the stride-1 pools read one column beyond
        # the valid ones (where an unpadded image has the pool's own padding).
        x = jnp.where(mask, x, 0)
        stride, pad = _POOLS[layer]
        x = pooling.max_pool_2x2(x, stride_w=stride, pad_w=pad)
        valid = _valid_width_after(layer, valid)
        mask = _column_mask(x, valid)
      elif last:
        valid = _valid_width_after(layer, valid)
      x = jnp.where(mask, x, 0)
    return x


class BidirectionalLSTM(nn.Module):
  """A bidirectional LSTM followed by a linear projection of the concatenated states.

  Attributes:
    hidden: LSTM units per direction.
    out_features: size of the projection.
  """

  hidden: int
  out_features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
    """Args: x `[B, T, D]`, lengths `[B]` real frames. Returns `[B, T, out_features]`."""
    # flax OptimizedLSTMCell parameters, run by ops/lstm.py: the backward direction starts at
    # each sequence's last real frame, so padding never reaches the real frames.
    cells = [lstm.LSTMCellParams(self.hidden, name=f"{direction}_cell")(x.shape[-1])
             for direction in ("forward", "backward")]
    y = lstm.bidirectional_lstm(x, lengths, *cells, dtype=self.dtype)
    return nn.Dense(self.out_features, dtype=self.dtype, name="projection")(y)


class CRNN(nn.Module):
  """Convolutional recurrent network for text recognition.

  Attributes:
    num_classes: K, output classes including the CTC blank (index 0).
    conv_channels: channels of the seven convolutions.
    batch_norm_layout: 'torch' or 'paper' (see BATCH_NORM_LAYOUTS).
    lstm_hidden: LSTM units per direction.
    lstm_layers: number of BiLSTM layers.
    dtype: activation dtype (parameters are always float32; logits are returned as float32).
    rectifier: 'none' or 'tps' (a TPS rectifier in front, see crnn_jax/models/rectifier.py; it
      runs in float32).
    rectifier_points: its K fiducial points.
    rectifier_channels: its localization network's four convolution widths.
    rectifier_hidden: its localization network's hidden units.
  """

  num_classes: int
  conv_channels: Sequence[int] = (64, 128, 256, 256, 512, 512, 512)
  batch_norm_layout: str = "torch"
  lstm_hidden: int = 256
  lstm_layers: int = 2
  dtype: Any = jnp.float32
  rectifier: str = "none"
  rectifier_points: int = rectifier_lib.DEFAULT_POINTS
  rectifier_channels: Sequence[int] = rectifier_lib.DEFAULT_CHANNELS
  rectifier_hidden: int = rectifier_lib.DEFAULT_HIDDEN

  def rectifier_module(self) -> rectifier_lib.TPSRectifier | None:
    """The rectifier as a module of its own (apply it to `rectifier.variables_of(variables)`),
    or None for rectifier 'none'."""
    if self.rectifier not in rectifier_lib.KINDS:
      raise ValueError(f"rectifier must be one of {rectifier_lib.KINDS}, got {self.rectifier!r}")
    if self.rectifier == "none":
      return None
    return rectifier_lib.TPSRectifier(num_points=self.rectifier_points,
                                      channels=tuple(self.rectifier_channels),
                                      hidden=self.rectifier_hidden, parent=None)

  def rectify(self, variables, images, widths):
    """What the convolutions see: the rectified images and the fiducial points.

    Call it on the unbound module (not inside `apply`); it can be jitted.

    Args:
      variables: the CRNN's {'params', 'batch_stats'}.
      images: `[B, H, W, 1]` padded images in [-1, 1].
      widths: `[B]` true widths.

    Returns:
      (rectified float32 `[B, H, W, 1]`, points float32 `[B, K, 2]` normalized to each image,
      see `rectifier.pixel_points`), or None when the model has no rectifier.
    """
    module = self.rectifier_module()
    if module is None:
      return None
    return module.apply(rectifier_lib.variables_of(variables), images,
                        jnp.asarray(widths, jnp.int32), train=False)

  @nn.compact
  def __call__(self, images: jnp.ndarray, widths: jnp.ndarray, *, train: bool = False):
    """Computes per-frame class scores.

    Args:
      images: `[B, 32, W, 1]` images normalized to [-1, 1], padded to a common width W.
      widths: `[B]` int32 true widths (<= W).
      train: training mode (BatchNorm batch statistics).

    Returns:
      logits: `[B, T, K]` float32 unnormalized class scores, T = W // 4 + 1.
      lengths: `[B]` int32 real frames of each sample, `widths // 4 + 1`.
    """
    if self.batch_norm_layout not in BATCH_NORM_LAYOUTS:
      raise ValueError(f"batch_norm_layout must be one of {sorted(BATCH_NORM_LAYOUTS)}, "
                       f"got {self.batch_norm_layout!r}")
    widths = jnp.asarray(widths, jnp.int32)
    if self.rectifier_module() is not None:
      images, _ = rectifier_lib.TPSRectifier(
          num_points=self.rectifier_points, channels=tuple(self.rectifier_channels),
          hidden=self.rectifier_hidden, name="rectifier")(images, widths, train=train)
    features = ConvStack(self.conv_channels, BATCH_NORM_LAYOUTS[self.batch_norm_layout],
                         dtype=self.dtype, name="cnn")(images, widths, train=train)
    if features.shape[1] != 1:
      raise ValueError(f"the conv stack must reduce the height to 1 (use 32-pixel images), "
                       f"got feature height {features.shape[1]} for input {images.shape}")
    x = features[:, 0]  # Map-to-sequence: [B, T, C], columns left to right are time steps.
    lengths = output_lengths(widths)
    for layer in range(self.lstm_layers):
      last = layer == self.lstm_layers - 1
      x = BidirectionalLSTM(self.lstm_hidden, self.num_classes if last else self.lstm_hidden,
                            dtype=self.dtype, name=f"rnn{layer}")(x, lengths)
    return x.astype(jnp.float32), lengths


def from_config(model_config, num_classes: int) -> CRNN:
  """Builds a CRNN from a `config.model` ConfigDict."""
  return CRNN(
      num_classes=num_classes,
      conv_channels=tuple(model_config.conv_channels),
      batch_norm_layout=model_config.batch_norm_layout,
      lstm_hidden=model_config.lstm_hidden,
      lstm_layers=model_config.lstm_layers,
      dtype=jnp.dtype(model_config.dtype),
      # Configs written before the rectifier existed (shipped weights) have no such fields.
      rectifier=model_config.get("rectifier", "none"),
      rectifier_points=int(model_config.get("rectifier_points", rectifier_lib.DEFAULT_POINTS)),
      rectifier_channels=tuple(model_config.get("rectifier_channels",
                                                rectifier_lib.DEFAULT_CHANNELS)),
      rectifier_hidden=int(model_config.get("rectifier_hidden", rectifier_lib.DEFAULT_HIDDEN)),
  )
