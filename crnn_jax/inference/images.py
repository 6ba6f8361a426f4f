"""The images a Recognizer reads: loading files and uploads, and preprocessing them as in training.

`load_image` reads a file or an encoded image's bytes as uint8 grayscale `[H, W]` and names what
went wrong (`ImageError`); `expand_inputs` finds the image files of directories.
`Preprocessing` resizes an image as the model was trained: to its input height keeping the
aspect ratio up to `max_width` columns, or stretched to `fixed_width` (models trained with
`data.resize = 'fixed'`), and scales the pixels to [-1, 1] (`crnn_jax.data.preprocess`).
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import re
from typing import Any, Iterable

import numpy as np
from PIL import Image

from crnn_jax.data import preprocess
from crnn_jax.data.records import IMAGE_SUFFIXES  # The suffixes Pillow reads, one list.

# A fixed-width model warns for inputs this many times wider (relative to their height) than
# its input shape: 10:1 for 32 x 128, the longest words the synthetic renderer draws.
TOO_WIDE_FACTOR = 2.5


class TooWideWarning(UserWarning):
  """Inputs far wider than the model's training images (see `Preprocessing.max_aspect_ratio`)."""


class ImageError(ValueError):
  """An input that cannot be read as an image (see `load_image`).

  Attributes:
    reason: why, one of IMAGE_ERROR_REASONS: 'empty' (0 bytes), 'not_an_image' (missing, or
      no image format recognizes it), 'truncated' (the header reads but the pixels do not:
      truncated or corrupt), 'too_many_pixels' (over the pixel limit: a decompression bomb).
  """

  def __init__(self, message: str, reason: str):
    super().__init__(message)
    self.reason = reason


IMAGE_ERROR_REASONS = ("empty", "not_an_image", "truncated", "too_many_pixels")


def load_image(source: str | pathlib.Path | bytes, *, name: str | None = None,
               max_pixels: int | None = None) -> np.ndarray:
  """Reads an image file, or the bytes of an encoded image, as uint8 grayscale `[H, W]`.

  Any format Pillow reads; turned upright by its EXIF orientation and transparency composited
  as `preprocess.to_grayscale` does, so that files, uploads and records read the same pixels.

  Args:
    source: a file path, or the encoded image's bytes (e.g. an upload).
    name: what error messages call the image (default: the path, or '<bytes>').
    max_pixels: refuse images with more pixels than this (width x height, read from the header
      before any pixel is decoded: decompression bombs); default: only Pillow's own limit
      (`Image.MAX_IMAGE_PIXELS`).

  Raises:
    ImageError (a ValueError): naming the image, when it is missing, empty, not an image,
      truncated or over the pixel limit; `reason` says which.
  """
  is_bytes = isinstance(source, (bytes, bytearray, memoryview))
  name = name or ("<bytes>" if is_bytes else str(source))

  def fail(reason, detail):
    return ImageError(f"{name}: cannot read image ({detail})", reason)

  if is_bytes:
    data = bytes(source)
    if not data:
      raise fail("empty", "empty file")
    opened = io.BytesIO(data)
  else:
    opened = pathlib.Path(source)
    if opened.is_file() and opened.stat().st_size == 0:
      raise fail("empty", "empty file")
  try:
    image = Image.open(opened)
  except Image.DecompressionBombError as e:
    raise fail("too_many_pixels", f"DecompressionBombError: {_clean(e)}") from None
  except Exception as e:  # pylint: disable=broad-except
    # Pillow raises OSError (UnidentifiedImageError), SyntaxError, ValueError, ... on bad data.
    raise fail("not_an_image", f"{type(e).__name__}: {_clean(e)}") from None
  with image:
    width, height = image.size
    if max_pixels and width * height > max_pixels:
      raise fail("too_many_pixels", f"{width} x {height} pixels, more than the limit of "
                 f"{max_pixels:,}")
    try:
      image.load()
      array = preprocess.to_grayscale(image)
    except Exception as e:  # pylint: disable=broad-except
      raise fail("truncated", f"{type(e).__name__}: {_clean(e)}") from None
  return array


def _clean(error: Exception) -> str:
  """An exception's message without the address of an in-memory file."""
  return re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(error))[:200]


def expand_inputs(paths: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
  """Files as given, and the image files (by suffix, sorted) of directories, recursively."""
  out = []
  for path in map(pathlib.Path, paths):
    if path.is_dir():
      out.extend(sorted(p for p in path.rglob("*")
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    else:
      out.append(path)
  return out


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How a model's inputs are made: resized as it was trained, scaled to [-1, 1].

  Attributes:
    height: the model's input height (32).
    max_width: keep-ratio models: wider resized images are squeezed to this width.
    fixed_width: if set, every image is stretched to height x fixed_width (models trained with
      `data.resize = 'fixed'`); otherwise the aspect ratio is kept.
  """

  height: int = 32
  max_width: int = preprocess.DEFAULT_MAX_WIDTH
  fixed_width: int | None = None

  def __post_init__(self):
    object.__setattr__(self, "fixed_width", self.fixed_width or None)

  def prepare(self, image: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """(float32 `[height, W]` in [-1, 1], the input's (height, width)) of a path, an encoded
    image's bytes, a PIL image or an array (`[H, W]` grayscale or `[H, W, 3|4]` color).

    Raises:
      ValueError: naming the file, for a path or bytes that cannot be read (`load_image`).
    """
    if isinstance(image, (str, pathlib.Path, bytes, bytearray, memoryview)):
      image = load_image(image)
    gray = preprocess.to_grayscale(image)
    resized = preprocess.resize(gray, height=self.height, fixed_width=self.fixed_width,
                                max_width=self.max_width)
    return preprocess.normalize(resized), gray.shape

  @property
  def max_aspect_ratio(self) -> float:
    """Widest input (width / height) read without a warning.

    A fixed-width model was trained on images stretched to `fixed_width / height` (4 for
    32 x 128), from crops of about 0.3 to 10 times as wide as high; an input more than
    `TOO_WIDE_FACTOR` times its input shape's ratio is squeezed further than training ever
    did. A keep-ratio model squeezes inputs wider than `max_width / height`.
    """
    if self.fixed_width:
      return TOO_WIDE_FACTOR * self.fixed_width / self.height
    return self.max_width / self.height
