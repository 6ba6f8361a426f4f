"""Image preprocessing shared by training, evaluation and prediction.

Images of any size become grayscale (upright by their EXIF orientation, transparency composited
onto a plain background), height 32, either stretched to a fixed width (as in the
paper) or resized keeping the aspect ratio with a maximum width; pixel values are scaled to
[-1, 1] like crnn.pytorch's `(x / 255 - 0.5) / 0.5`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Narrowest image the model is given (2 output frames).
MIN_WIDTH = 8
# Widest keep-ratio input read at inference and evaluation (32:1 at height 32); wider images are
# squeezed to it. Training uses `config.data.max_width`, usually narrower.
DEFAULT_MAX_WIDTH = 1024


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601-2 luma, as PIL's convert('L').


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """Composites gray levels `[H, W]` with coverage `alpha` in [0, 1] onto a plain background.

  The background is the one the opaque pixels imply: white under dark ink, black under light
  ink (the alpha-weighted mean gray level decides), so that text on a transparent background
  stays readable whichever colour it is. Fully opaque images are returned unchanged.
  """
  gray = gray.astype(np.float32)
  alpha = alpha.astype(np.float32)
  if alpha.min() >= 1.0:
    return gray
  weight = float(alpha.sum())
  ink = float((gray * alpha).sum()) / weight if weight > 0 else 0.0
  background = 255.0 if ink <= 127.5 else 0.0
  return gray * alpha + background * (1.0 - alpha)


def to_grayscale(image) -> np.ndarray:
  """A PIL image or a `[H, W]`, `[H, W, 1|2|3|4]` array as a uint8 `[H, W]` array.

  PIL images are turned upright by their EXIF orientation tag (phone photos). Transparency
  (LA, RGBA, PA or palette images with a transparent colour; 2- and 4-channel arrays, whose
  last channel is alpha) is composited onto white, or onto black when the visible pixels are
  light (see `_flatten_alpha`), never dropped. Float arrays are taken to be in [0, 1] if their
  maximum is <= 1, else in [0, 255].
  """
  if isinstance(image, Image.Image):
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("LA", "RGBA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info)
    if has_alpha:
      rgba = np.asarray(image.convert("RGBA"), np.float32)
      gray = _flatten_alpha(rgba[..., :3] @ _LUMA, rgba[..., 3] / 255.0)
      return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if image.mode not in ("L", "RGB"):
      image = image.convert("RGB")
    return np.asarray(image.convert("L"))
  array = np.asarray(image)
  is_uint8 = array.dtype == np.uint8  # Of the input: converted channels are float.
  alpha = None
  if array.ndim == 3 and array.shape[-1] in (1, 2, 3, 4) and array.size:
    channels = array.shape[-1]
    if channels in (2, 4):
      array, alpha = array[..., :-1], array[..., -1]
    if channels <= 2:
      array = array[..., 0]
    else:
      array = array[..., :3].astype(np.float32) @ _LUMA
  if array.ndim != 2:
    raise ValueError(f"expected a 2-D grayscale or 3-D color image, got shape {array.shape}")
  if array.size == 0:
    raise ValueError(f"empty image of shape {array.shape}")
  if array.dtype != np.uint8 or alpha is not None:
    array = array.astype(np.float32)
    if array.max() <= 1.0 and not is_uint8:
      array = array * 255.0
    if alpha is not None:
      alpha = alpha.astype(np.float32)
      if is_uint8 or alpha.max() > 1.0:
        alpha = alpha / np.float32(255.0)
      array = _flatten_alpha(array, alpha)
    array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
  return array


def target_width(height: int, width: int, *, target_height: int = 32,
                 fixed_width: int | None = None, max_width: int | None = None) -> int:
  """Width after resizing an image of `height` x `width` to `target_height`."""
  if fixed_width:
    return fixed_width
  new_width = max(MIN_WIDTH, int(round(width * target_height / height)))
  return min(new_width, max_width) if max_width else new_width


def resize(image: np.ndarray, *, height: int = 32, fixed_width: int | None = None,
           max_width: int | None = None) -> np.ndarray:
  """Resizes a uint8 `[h, w]` image to `[height, W]` (bilinear, antialiased when shrinking).

  Args:
    image: uint8 `[h, w]`.
    height: output height.
    fixed_width: if set, the output width (aspect ratio not kept).
    max_width: with keep-ratio resizing, the widest output (wider images are squeezed).

  Returns:
    uint8 `[height, W]`.
  """
  h, w = image.shape
  new_w = target_width(h, w, target_height=height, fixed_width=fixed_width, max_width=max_width)
  if (h, w) == (height, new_w):
    return image
  return np.asarray(Image.fromarray(image).resize((new_w, height), Image.BILINEAR))


def normalize(image: np.ndarray) -> np.ndarray:
  """uint8 `[H, W]` -> float32 `[H, W]` in [-1, 1]."""
  return image.astype(np.float32) * (2.0 / 255.0) - 1.0


def pad_to_width(images: list[np.ndarray], width: int) -> np.ndarray:
  """Stacks float `[H, w_i]` images into `[B, H, width, 1]`, right-padded with zeros."""
  batch = np.zeros((len(images), images[0].shape[0], width, 1), np.float32)
  for i, image in enumerate(images):
    batch[i, :, :image.shape[1], 0] = image
  return batch
