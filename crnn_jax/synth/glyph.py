"""Glyph-level effects that imitate typefaces the renderer has no file for.

A model trained on a few families reads a new one worse when its strokes are heavier or
lighter, its letters narrower or wider, its edges rough from ink or its shapes slightly drawn
by hand. These effects change the text mask (`[H, W]` uint8, 255 on ink) before the renderer
slants, rotates and colours it (`renderer.render_text`, the 'strong' print level):

  width     condensed or expanded letters: the mask scaled horizontally;
  weight    heavier or lighter strokes: the mask blurred, then cut again at another level
            (a lower cut thickens every stroke by about the same width, a higher one thins it);
  bleed     ink that spreads and prints unevenly: the cut level varies smoothly over the line,
            and a faint halo surrounds the strokes;
  elastic   slight hand-drawn wobble: a smooth random displacement of every pixel.

Slant is not among them: the 'strong' level already shears every line (renderer._MAX_SHEAR).

Each effect is drawn with its own probability from the generator given to `apply`: the
record's 'glyph' stream (`renderer.Streams`), so turning the effects on or changing them leaves
the text, face, colours and geometry of every record as they were. Lengths are in pixels at font size 40 and scale with the drawn size.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageFilter

REFERENCE_SIZE = 40.0


@dataclasses.dataclass(frozen=True)
class GlyphParams:
  """Probabilities and ranges of the glyph effects (all off by default).

  Attributes:
    width_prob: share of lines scaled horizontally, by a factor in `width_range`.
    weight_prob: share of lines with heavier or lighter strokes, moved outwards by a width in
      `weight_range` (pixels at size 40; negative thins).
    bleed_prob: share of lines with uneven ink: the cut level varies by up to `bleed_amount`
      (of the blurred mask's range) over blobs of about `bleed_scale` pixels, with a halo.
    elastic_prob: share of lines displaced smoothly by up to `elastic_amplitude` pixels over
      `elastic_scale` pixels.
  """
  width_prob: float = 0.0
  width_range: tuple[float, float] = (0.75, 1.3)
  weight_prob: float = 0.0
  weight_range: tuple[float, float] = (-1.2, 1.8)
  bleed_prob: float = 0.0
  bleed_amount: float = 0.25
  bleed_scale: float = 6.0
  elastic_prob: float = 0.0
  elastic_amplitude: float = 1.2
  elastic_scale: float = 8.0

  def __post_init__(self):
    for name in ("width_prob", "weight_prob", "bleed_prob", "elastic_prob"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"glyph {name} is a probability in [0, 1], got {getattr(self, name)}")
    for name in ("width_range", "weight_range"):
      low, high = getattr(self, name)
      if not low <= high:
        raise ValueError(f"glyph {name} needs low <= high, got {getattr(self, name)}")
    if self.width_range[0] <= 0:
      raise ValueError(f"glyph width_range must be positive, got {self.width_range}")
    for name in ("bleed_amount", "bleed_scale", "elastic_amplitude", "elastic_scale"):
      if getattr(self, name) < 0:
        raise ValueError(f"glyph {name} must be >= 0, got {getattr(self, name)}")

  @property
  def enabled(self) -> bool:
    return max(self.width_prob, self.weight_prob, self.bleed_prob, self.elastic_prob) > 0

  @classmethod
  def from_mapping(cls, values: Mapping[str, Any] | None) -> "GlyphParams":
    """GlyphParams from a config mapping; unknown names are refused, naming the fields.

    Raises:
      ValueError: an unknown field or an invalid value.
    """
    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
      raise ValueError(f"unknown glyph effect field(s) {unknown}; fields are {sorted(fields)}")
    for name in ("width_range", "weight_range"):
      if name in values:
        values[name] = tuple(float(v) for v in values[name])
    return cls(**values)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
  """Noise of unit peak over blobs of about `scale` pixels: coarse uniform noise upsampled."""
  h, w = shape
  coarse = rng.uniform(-1.0, 1.0, (max(2, round(h / scale) + 2), max(2, round(w / scale) + 2)))
  image = Image.fromarray(coarse.astype(np.float32))  # Mode "F".
  return np.asarray(image.resize((w, h), Image.Resampling.BICUBIC), np.float32)


def _cut(blurred: np.ndarray, level: np.ndarray | float) -> np.ndarray:
  """A soft threshold of a blurred mask in [0, 1] at `level` (an edge about 1 pixel wide)."""
  return np.clip((blurred - level) * 4.0 + 0.5, 0.0, 1.0)


def apply(mask: Image.Image, rng: np.random.Generator, params: GlyphParams,
          font_size: float) -> Image.Image:
  """The text mask with the effects that `rng` draws (see the module docstring).

  Args:
    mask: mode 'L' text mask, 255 on ink, with a margin of at least 2 pixels.
    rng: the glyph effects' own generator.
    params: which effects and how strong.
    font_size: the drawn size in pixels (lengths scale with size / 40).

  Returns:
    A mode 'L' mask; its width changes with the 'width' effect, its height never.
  """
  scale = font_size / REFERENCE_SIZE
  draws = rng.random(4)  # Which effects: one draw each, always.
  if draws[0] < params.width_prob:
    factor = rng.uniform(*params.width_range)
    width = max(1, round(mask.width * factor))
    mask = mask.resize((width, mask.height), Image.Resampling.BILINEAR)
  alpha = None
  if draws[1] < params.weight_prob or draws[2] < params.bleed_prob:
    # Blur with sigma s, then cut: an edge moves by about s * sqrt(2 pi) * (0.5 - level).
    sigma = 1.5 * scale
    blurred = np.asarray(mask.filter(ImageFilter.GaussianBlur(sigma)), np.float32) / 255.0
    level = 0.5
    if draws[1] < params.weight_prob:
      grow = rng.uniform(*params.weight_range) * scale
      level = float(np.clip(0.5 - grow / (sigma * np.sqrt(2 * np.pi)), 0.08, 0.92))
    if draws[2] < params.bleed_prob:
      noise = _smooth_noise(rng, blurred.shape, params.bleed_scale * scale)
      level = np.clip(level + params.bleed_amount * noise, 0.05, 0.95)
      halo = np.asarray(mask.filter(ImageFilter.GaussianBlur(2.5 * scale)), np.float32) / 255
      alpha = np.maximum(_cut(blurred, level), halo * rng.uniform(0.2, 0.5))
    else:
      alpha = _cut(blurred, level)
  if draws[3] < params.elastic_prob:
    import cv2  # pylint: disable=import-outside-toplevel

    source = alpha if alpha is not None else np.asarray(mask, np.float32) / 255.0
    h, w = source.shape
    amplitude = params.elastic_amplitude * scale
    dx = _smooth_noise(rng, (h, w), params.elastic_scale * scale) * amplitude
    dy = _smooth_noise(rng, (h, w), params.elastic_scale * scale) * amplitude
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    alpha = cv2.remap(source, grid_x + dx, grid_y + dy, interpolation=cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
  if alpha is None:
    return mask
  return Image.fromarray(np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8))  # Mode "L".
