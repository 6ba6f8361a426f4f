"""Pictures of predictions: per-image alignment PNGs and a TensorBoard grid of eval examples.

`render_prediction` draws what the model saw (the height-32 resized input, enlarged), under it
the per-frame alignment (`a-----v--a-i-l-a-bb-l-ee--`), one character per output frame placed
under the image columns that frame is centred on (frame t at column 4t, see
`crnn_jax.inference`), a bar under each recognized character spanning its frames, and the
decoded text with its confidence. `crnn-jax predict --visualize OUT_DIR` writes one such PNG
per image. For a model with a rectifier (`model.rectifier = 'tps'`) the picture shows the
input with the predicted fiducial points (the top edge's in blue, the bottom's in orange), under
it the rectified image that the convolutions read, and the alignment under the rectified
image's columns (`rectify_arrays` computes them).

`examples_grid` tiles validation images with their prediction and ground truth (wrong ones in
red, with a red frame), and `log_eval_examples` writes that grid to TensorBoard.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_jax.models import crnn

FRAME_STEP = crnn.FRAME_STEP  # Input columns per output frame.
_GOOD = (20, 130, 40)
_BAD = (200, 30, 30)
_BLANK = (150, 150, 150)
_INK = (0, 0, 0)
_SPAN_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
  """DejaVu Sans Mono (shipped with matplotlib) at `size` px, else Pillow's default font."""
  spec = importlib.util.find_spec("matplotlib")
  if spec and spec.origin:
    path = pathlib.Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    if path.is_file():
      return ImageFont.truetype(str(path), size)
  return ImageFont.load_default(size=size)


def to_uint8(image: Any) -> np.ndarray:
  """A model input (float in [-1, 1], `[H, W]` or `[H, W, 1]`) or uint8 image as uint8 `[H, W]`.

  Float arrays are always read as model inputs (x / 127.5 - 1), never as [0, 1] images.
  """
  array = np.asarray(image)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  if array.ndim != 2:
    raise ValueError(f"expected a grayscale [H, W] image, got shape {array.shape}")
  if array.dtype == np.uint8:
    return array
  array = (array.astype(np.float32) + 1.0) * 127.5  # Floats are model inputs in [-1, 1].
  return np.clip(np.rint(array), 0, 255).astype(np.uint8)


RECTIFIED_GAP = 6  # Pixels between the input and the rectified image.


def render_prediction(image: Any, prediction, *, zoom: int = 3, rectified: Any = None,
                      points: Any = None) -> np.ndarray:
  """Draws one prediction over the model's view of the image.

  Args:
    image: the resized model input, float `[32, W]` in [-1, 1] (as from
      `Recognizer.preprocess`) or uint8 `[32, W]`.
    prediction: a `crnn_jax.inference.Prediction` (uses text, confidence, path, spans).
    zoom: enlargement of the image (frame spacing is 4 * zoom pixels).
    rectified: for a model with a rectifier, its output for `image` (same size and scaling);
      drawn under the input, and the path is aligned under it.
    points: with `rectified`, the fiducial points as `[K, 2]` (column, row) pixel positions
      in `image` (`rectifier.pixel_points`), drawn over the input: the first K / 2 (top edge)
      and the last K / 2 (bottom edge) joined by lines.

  Returns:
    uint8 `[H, W', 3]` RGB picture: the image (and the rectified image), the per-frame path
    aligned under its columns, character span bars, and the text with its confidence.
  """
  gray = to_uint8(image)
  height, width = gray.shape
  step = FRAME_STEP * zoom
  char_size = max(8, int(step * 1.25))
  text_size = 16
  path = prediction.path
  label = f"{prediction.text!r}  confidence {prediction.confidence:.3g}"
  label_width = int(_font(text_size).getlength(label)) + 8
  frames_right = (len(path) - 1) * step + step // 2 + 2 if path else 0
  canvas_width = max(width * zoom, frames_right, label_width) + 8
  top = 4
  view_top = top  # The image the frames are aligned with.
  if rectified is not None:
    rectified = to_uint8(rectified)
    if rectified.shape != gray.shape:
      raise ValueError(f"rectified image {rectified.shape} and input {gray.shape} differ")
    view_top = top + height * zoom + RECTIFIED_GAP
  path_y = view_top + height * zoom + 4
  bar_y = path_y + char_size + 4
  label_y = bar_y + 8
  canvas = Image.new("RGB", (canvas_width, label_y + text_size + 8), (255, 255, 255))
  enlarged = Image.fromarray(gray).resize((width * zoom, height * zoom), Image.NEAREST)
  canvas.paste(enlarged.convert("RGB"), (4, top))
  draw = ImageDraw.Draw(canvas)
  if rectified is not None:
    if points is not None:  # Before the rectified image, which hides points below the input.
      _draw_points(draw, np.asarray(points, np.float64), zoom, top)
    canvas.paste(Image.fromarray(rectified).resize((width * zoom, height * zoom),
                                                   Image.NEAREST).convert("RGB"), (4, view_top))
  font = _font(char_size)
  for t, char in enumerate(path):
    x = 4 + t * step  # Frame t is centred on input column 4t.
    draw.line([(x, view_top + height * zoom), (x, path_y - 1)], fill=_BLANK)
    draw.text((x, path_y), char, fill=_BLANK if char == "-" else _INK, font=font, anchor="mt")
  for i, span in enumerate(prediction.spans):
    x0 = 4 + span.first_frame * step - step // 2
    x1 = 4 + span.last_frame * step + step // 2 - 1
    draw.rectangle([x0, bar_y, x1, bar_y + 3], fill=_SPAN_COLORS[i % len(_SPAN_COLORS)])
  draw.text((4, label_y), label, fill=_INK, font=_font(text_size))
  return np.asarray(canvas)


def _draw_points(draw: ImageDraw.ImageDraw, points: np.ndarray, zoom: int, top: int) -> None:
  """Fiducial points `[K, 2]` (column, row) over the enlarged input pasted at (4, top)."""
  xy = [(4 + (x + 0.5) * zoom, top + (y + 0.5) * zoom) for x, y in points]
  half = len(xy) // 2
  for edge, color in ((xy[:half], _SPAN_COLORS[0]), (xy[half:], _SPAN_COLORS[1])):
    if len(edge) > 1:
      draw.line(edge, fill=color, width=2)
    for x, y in edge:
      draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=color, width=2)


def rectify_arrays(model, variables, arrays: Sequence[np.ndarray], batch_size: int = 64,
                   width_step: int = 32) -> list[tuple[np.ndarray, np.ndarray]] | None:
  """The rectifier's view of preprocessed images, for `render_prediction`.

  Args:
    model: the CRNN module (`Recognizer.model`); None (an ONNX-only recognizer) gives None.
    variables: its variables.
    arrays: float32 `[32, W]` model inputs (`Recognizer.prepare`).
    batch_size: images per call (grouped by width; the rectifier is padding-exact).
    width_step: batch widths are rounded up to a multiple of this (fewer compilations).

  Returns:
    Per array, (rectified float32 `[32, W]`, fiducial points `[K, 2]` as (column, row) pixel
    positions), in input order; None when the model has no rectifier.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import preprocess  # pylint: disable=g-import-not-at-top
  from crnn_jax.models import rectifier  # pylint: disable=g-import-not-at-top
  if model is None or model.rectifier_module() is None:
    return None
  rectify = jax.jit(model.rectify)
  out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(arrays)
  order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[1])
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    widest = max(arrays[i].shape[1] for i in idx)
    images = preprocess.pad_to_width([np.asarray(arrays[i], np.float32).reshape(
        arrays[i].shape[0], -1) for i in idx], -(-widest // width_step) * width_step)
    widths = np.array([arrays[i].shape[1] for i in idx], np.int32)
    rectified, points = jax.device_get(rectify(variables, images, widths))
    pixels = rectifier.pixel_points(points, widths, images.shape[1])
    for row, i in enumerate(idx):
      out[i] = (np.asarray(rectified[row, :, :widths[row], 0]), pixels[row])
  return out


def save_prediction_png(path: str | pathlib.Path, image: Any, prediction, **kwargs) -> None:
  """Writes `render_prediction(image, prediction, **kwargs)` as a PNG."""
  Image.fromarray(render_prediction(image, prediction, **kwargs)).save(path)


def examples_grid(images: Sequence[Any], predictions: Sequence[str], targets: Sequence[str], *,
                  widths: Sequence[int] | None = None,
                  confidences: Sequence[float] | None = None, columns: int = 2,
                  zoom: int = 2) -> np.ndarray:
  """A grid of images with their prediction and ground truth; wrong ones marked in red.

  Args:
    images: N model inputs (float `[32, W(, 1)]` in [-1, 1], or uint8), e.g. a batch's
      `image` rows.
    predictions: N predicted texts.
    targets: N ground-truth texts.
    widths: N true widths (padding beyond is cropped); default: the full width.
    confidences: N confidences to print (optional).
    columns: cells per row.
    zoom: enlargement of the images.

  Returns:
    uint8 `[H, W, 3]` RGB grid (HWC), white background.
  """
  count = len(images)
  if not count:
    raise ValueError("no images for the grid")
  if len(predictions) != count or len(targets) != count:
    raise ValueError(f"{count} images, {len(predictions)} predictions, {len(targets)} targets")
  size = 14
  font = _font(size)
  cells = []
  for i in range(count):
    gray = to_uint8(images[i])
    if widths is not None:
      gray = gray[:, :max(1, int(widths[i]))]
    right = predictions[i] == targets[i]
    color = _GOOD if right else _BAD
    lines = [f"{'ok' if right else 'WRONG'}  pred {predictions[i]!r}",
             f"gt {targets[i]!r}" + (f"  conf {confidences[i]:.3g}"
                                    if confidences is not None else "")]
    text_width = max(int(font.getlength(line)) for line in lines)
    h, w = gray.shape
    cell_w = max(w * zoom, text_width) + 12
    cell = Image.new("RGB", (cell_w, h * zoom + 2 * (size + 4) + 14), (255, 255, 255))
    cell.paste(Image.fromarray(gray).resize((w * zoom, h * zoom), Image.NEAREST).convert("RGB"),
               (6, 6))
    draw = ImageDraw.Draw(cell)
    for j, line in enumerate(lines):
      draw.text((6, h * zoom + 8 + j * (size + 4)), line, fill=color if j == 0 else _INK,
                font=font)
    if not right:
      draw.rectangle([0, 0, cell.width - 1, cell.height - 1], outline=_BAD, width=3)
    cells.append(cell)
  columns = max(1, min(columns, count))
  rows = -(-count // columns)
  col_w = [max(cells[i].width for i in range(c, count, columns)) for c in range(columns)]
  row_h = [max(cells[i].height for i in range(r * columns, min(count, (r + 1) * columns)))
           for r in range(rows)]
  grid = Image.new("RGB", (sum(col_w) + 4 * (columns + 1), sum(row_h) + 4 * (rows + 1)),
                   (255, 255, 255))
  for i, cell in enumerate(cells):
    r, c = divmod(i, columns)
    grid.paste(cell, (4 + sum(col_w[:c]) + 4 * c, 4 + sum(row_h[:r]) + 4 * r))
  return np.asarray(grid)


def log_eval_examples(writer, images: Sequence[Any], preds: Sequence[str],
                      targets: Sequence[str], step: int, *, widths: Sequence[int] | None = None,
                      confidences: Sequence[float] | None = None,
                      tag: str = "eval/examples", max_images: int = 16) -> np.ndarray:
  """Writes `examples_grid` of the first `max_images` examples to TensorBoard.

  Args:
    writer: a `tensorboardX.SummaryWriter` (anything with `add_image(tag, img, step,
      dataformats=)`).
    images: model inputs (see `examples_grid`).
    preds: predicted texts.
    targets: ground-truth texts.
    step: the training step.
    widths: true widths (crop the padding).
    confidences: optional confidences.
    tag: the TensorBoard tag.
    max_images: at most this many examples.

  Returns:
    The grid `[H, W, 3]` uint8 that was written.
  """
  n = min(max_images, len(preds), len(targets), len(images))
  grid = examples_grid(list(images[:n]), list(preds[:n]), list(targets[:n]),
                       widths=None if widths is None else list(widths[:n]),
                       confidences=None if confidences is None else list(confidences[:n]))
  writer.add_image(tag, grid, step, dataformats="HWC")
  return grid
