"""Inference with a trained model: `Recognizer` loads a checkpoint and reads images.

Images of any size are resized to height 32 keeping their aspect ratio, grouped by width and run
in padded batches whose widths are rounded up to a multiple of `width_step`, so a stream of
mixed-size images compiles only a handful of programs.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from crnn_jax import checkpointing, train_lib
from crnn_jax.data import preprocess
from crnn_jax.data.charset import Charset
from crnn_jax.decoding import greedy
from crnn_jax.models import crnn

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                  ".ppm", ".pbm")


@dataclasses.dataclass(frozen=True)
class Prediction:
  """One recognized text line."""

  text: str
  confidence: float  # Probability of the best CTC path.


def load_image(path: str | pathlib.Path) -> np.ndarray:
  """Reads an image file as uint8 grayscale `[H, W]`.

  Raises:
    ValueError: naming the file when it is missing, not an image, truncated or empty.
  """
  path = pathlib.Path(path)
  try:
    with Image.open(path) as image:
      image.load()
      array = preprocess.to_grayscale(image)
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise ValueError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None
  return array


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


class Recognizer:
  """A trained CRNN ready to read text-line images.

  Attributes:
    model: the flax module.
    variables: its params and batch_stats.
    charset: the charset it was trained with.
  """

  def __init__(self, model: crnn.CRNN, variables: dict[str, Any], charset: Charset, *,
               height: int = 32, max_width: int = 1024, width_step: int = 32):
    self.model = model
    self.variables = jax.device_put(variables)
    self.charset = charset
    self.height = height
    self.max_width = max_width
    self.width_step = width_step
    self._forward = jax.jit(self._forward_impl)

  @classmethod
  def from_checkpoint(cls, workdir: str | pathlib.Path, step: int | None = None,
                      **kwargs) -> "Recognizer":
    """Loads the latest (or given) checkpoint of a training workdir."""
    config = train_lib.load_config(workdir)
    charset = Charset.from_config(config.text)
    model = crnn.from_config(config.model, charset.num_classes)
    _, variables = checkpointing.restore_variables(workdir, step)
    return cls(model, variables, charset, height=config.data.height, **kwargs)

  def _forward_impl(self, variables, images, widths):
    logits, lengths = self.model.apply(variables, images, widths, train=False)
    return greedy.best_path(logits, lengths)

  def preprocess(self, image) -> np.ndarray:
    """A path, PIL image or array -> float32 `[32, W]` in [-1, 1]."""
    if isinstance(image, (str, pathlib.Path)):
      image = load_image(image)
    gray = preprocess.to_grayscale(image)
    return preprocess.normalize(
        preprocess.resize(gray, height=self.height, max_width=self.max_width))

  def recognize(self, images: Sequence[Any], batch_size: int = 64) -> list[Prediction]:
    """Reads text from images (paths, PIL images or arrays), returned in input order."""
    arrays = [self.preprocess(image) for image in images]
    return self.recognize_preprocessed(arrays, batch_size)

  def recognize_preprocessed(self, arrays: Sequence[np.ndarray], batch_size: int = 64
                             ) -> list[Prediction]:
    """Like `recognize` for float32 `[32, W]` arrays already preprocessed."""
    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
    results: list[Prediction | None] = [None] * len(arrays)
    for start in range(0, len(order), batch_size):
      idx = order[start:start + batch_size]
      widest = max(arrays[i].shape[1] for i in idx)
      width = -(-widest // self.width_step) * self.width_step
      images = preprocess.pad_to_width([arrays[i] for i in idx], width)
      widths = np.array([arrays[i].shape[1] for i in idx], np.int32)
      # Pad the batch itself to a power of two to bound the number of compiled shapes.
      rows = 1 << (len(idx) - 1).bit_length()
      if rows > len(idx):
        images = np.concatenate([images, np.zeros((rows - len(idx),) + images.shape[1:],
                                                  np.float32)])
        widths = np.concatenate([widths, np.full(rows - len(idx), preprocess.MIN_WIDTH,
                                                 np.int32)])
      ids, confidence = jax.device_get(self._forward(self.variables, jnp.asarray(images),
                                                     jnp.asarray(widths)))
      for row, i in enumerate(idx):
        text = self.charset.decode(greedy.collapse(ids[row:row + 1])[0])
        results[i] = Prediction(text, float(confidence[row]))
    return results
