"""What a config's data engine renders: a contact sheet of its records, beside real crops.

  crnn-jax data samples --config configs/scene_en.py:stage=9 --output grid.png
  crnn-jax data samples --config configs/scene_en.py:stage=9 --output grid.png --real crops/ \\
      --count 48

`rendered_samples` draws records with the config's own renderer settings (`config.data`'s
synthetic fields: text mix, fonts, augmentation level, scene parameters), from the config's
training seed unless told otherwise, as the images are before the model's resizing (colour at
the 'scene' level); `real_samples` reads crops from a folder (labels from its gt.txt files,
when it has them). `contact_sheet` tiles each set as a panel of cells, the image scaled to the
cell height (narrowed to the cell width when wider) over its label, the panels side by side,
so that rendered and real images can be compared at a glance while tuning augmentation.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

Sample = tuple[np.ndarray, str]  # (uint8 [H, W] or [H, W, 3] image, label)

BACKGROUND = (255, 255, 255)
_TITLE = (0, 0, 0)
_LABEL = (60, 60, 60)
_FRAME = (200, 200, 200)


def rendered_samples(config, count: int, seed: int | None = None) -> list[Sample]:
  """`count` records of the config's renderer (default seed: `config.data.train_seed`).

  Raises:
    ValueError: count < 1, or the renderer's own errors (e.g. fonts of its pool missing).
  """
  from crnn_jax.synth import sources as synthetic_sources  # pylint: disable=import-outside-toplevel
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  if count < 1:
    raise ValueError(f"count must be at least 1, got {count}")
  seed = int(config.data.train_seed if seed is None else seed)
  source = synthetic_sources.source_from_config(config.data, Charset.from_config(config.text),
                                                seed=seed, num_records=count)
  out = []
  for i in range(count):
    record = source[i]
    out.append((np.asarray(record["image"], np.uint8), str(record["text"])))
  return out


def real_samples(directory: str | pathlib.Path, count: int
                 ) -> tuple[list[Sample], list[str]]:
  """At most `count` crops of a folder (recursive), evenly spread over the sorted list, with
  their labels from the gt.txt files of gt.txt folders (none for files they do not list, or
  list with a bad label).

  Returns:
    (samples, why each image that could not be read was left out).

  Raises:
    FileNotFoundError: no such directory.
    ValueError: not a directory, or no image in it that can be read.
  """
  from crnn_jax.data import records  # pylint: disable=import-outside-toplevel
  from crnn_jax.data import sources  # pylint: disable=import-outside-toplevel
  directory = pathlib.Path(directory).expanduser()
  if not directory.exists():
    raise FileNotFoundError(f"real crops: {directory} does not exist")
  if not directory.is_dir():
    raise ValueError(f"real crops: {directory} is not a directory")
  labels: dict[pathlib.Path, str] = {}
  for folder in sources.find_gt_folders(directory):
    source = sources.FolderSource(folder)
    for i in range(len(source)):
      record = source[i]
      if record.get("missing"):
        continue
      try:
        label = records.decode_label(record["label"])
      except records.BadRecord:
        continue
      labels[(source.root / record["key"].split(":", 2)[2]).resolve()] = label
  files = sorted(p for p in directory.rglob("*")
                 if p.is_file() and p.suffix.lower() in records.IMAGE_SUFFIXES)
  if not files:
    raise ValueError(f"real crops: {directory} holds no image file (searched recursively for "
                     f"{', '.join(records.IMAGE_SUFFIXES)})")
  if len(files) > count:
    files = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, count).round()
                                         .astype(int))]
  out, skipped = [], []
  for path in files:
    try:
      image = records.decode_image(path.read_bytes())
    except (OSError, records.BadRecord) as e:
      skipped.append(f"{path}: cannot read image ({getattr(e, 'detail', e)})")
      continue
    out.append((image, labels.get(path.resolve(), "")))
  if not out:
    raise ValueError(f"real crops: no image of {directory} can be read ({skipped[0]})")
  return out, skipped


def _rgb(image: np.ndarray) -> Image.Image:
  image = np.asarray(image, np.uint8)
  return Image.fromarray(image).convert("RGB")


def cell_image(image: np.ndarray, height: int, max_width: int) -> Image.Image:
  """An image scaled to `height` rows keeping its aspect ratio, narrowed to `max_width`."""
  picture = _rgb(image)
  width = max(1, round(picture.width * height / max(picture.height, 1)))
  return picture.resize((min(width, max_width), height), Image.BILINEAR)


def contact_sheet(panels: Sequence[tuple[str, Sequence[Sample]]], *, columns: int = 4,
                  cell_height: int = 48, cell_width: int = 200
                  ) -> tuple[Image.Image, list[list[tuple[int, int, int, int]]]]:
  """Tiles each (title, samples) panel in `columns` columns, the panels side by side.

  Returns:
    (the RGB sheet, per panel the (x, y, width, height) box of each sample's image).
  """
  from crnn_jax import visualize  # pylint: disable=import-outside-toplevel
  if columns < 1:
    raise ValueError(f"columns must be at least 1, got {columns}")
  font = visualize._font(12)  # pylint: disable=protected-access
  title_font = visualize._font(16)  # pylint: disable=protected-access
  pad, label_height, title_height = 6, 16, 26
  step_x, step_y = cell_width + pad, cell_height + label_height + pad
  widths = [columns * step_x + pad for _ in panels]
  rows = [max(1, -(-len(samples) // columns)) for _, samples in panels]
  sheet = Image.new("RGB", (sum(widths) + pad * (len(panels) - 1),
                            title_height + max(rows) * step_y + pad), BACKGROUND)
  draw = ImageDraw.Draw(sheet)
  boxes, left = [], 0
  for (title, samples), width in zip(panels, widths):
    draw.text((left + pad, 4), title, fill=_TITLE, font=title_font)
    panel_boxes = []
    for n, (image, label) in enumerate(samples):
      x = left + pad + (n % columns) * step_x
      y = title_height + (n // columns) * step_y
      picture = cell_image(image, cell_height, cell_width)
      sheet.paste(picture, (x, y))
      draw.rectangle((x - 1, y - 1, x + picture.width, y + picture.height), outline=_FRAME)
      draw.text((x, y + cell_height + 2), label[:32], fill=_LABEL, font=font)
      panel_boxes.append((x, y, picture.width, picture.height))
    boxes.append(panel_boxes)
    left += width + pad
  return sheet, boxes


def describe_config(config) -> str:
  """A short title for the rendered panel: level, font pool, seed."""
  synthetic = config.data.synthetic
  return (f"rendered: {synthetic.get('augment', '?')} level, {synthetic.get('font_pool', '?')} "
          f"fonts")


def write_samples(config, output: str | pathlib.Path, *, count: int = 32, seed: int | None = None,
                  real: str | pathlib.Path | None = None, columns: int = 4,
                  config_name: str = "") -> dict[str, Any]:
  """Renders `count` records (and reads `count` real crops) into a contact sheet PNG.

  Returns:
    {'output', 'rendered', 'real', 'size', 'skipped': [why each unreadable real crop was
    left out]}.
  """
  panels = [(f"{config_name + ' ' if config_name else ''}{describe_config(config)}",
             rendered_samples(config, count, seed))]
  skipped = []
  if real:
    crops, skipped = real_samples(real, count)
    panels.append((f"real: {pathlib.Path(real).name}", crops))
  sheet, _ = contact_sheet(panels, columns=columns)
  output = pathlib.Path(output)
  if output.parent:
    output.parent.mkdir(parents=True, exist_ok=True)
  sheet.save(output)
  return dict(output=str(output), rendered=len(panels[0][1]),
              real=len(panels[1][1]) if real else 0, size=sheet.size, skipped=skipped)
