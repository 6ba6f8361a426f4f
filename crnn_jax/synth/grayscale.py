"""Draws one line of text as a grayscale image, with optional random augmentation.

`render_text` is a pure function of its arguments: each stage (layout, margins, geometry,
glyph effects, stray lines, blur, background, colour, noise) draws from its own generator of
the record's streams (`renderer.Streams`), so a sample is reproducible from its seed and index.
Images are drawn with Pillow (FreeType) and post-processed with numpy; they are not resized (the input pipeline
resizes them to the model height), so their height is about the font size plus margins.

Augmentation levels:
  'none': black text on white, the line box plus a small margin.
  'light': font size jitter, random margins, random gray levels for text and background
    (a guaranteed minimum contrast, either polarity), mild Gaussian noise, occasional blur.
  'strong': 'light' plus a small rotation and horizontal shear, a gradient or smooth-noise
    background, stronger noise and blur, character spacing jitter, occasional underline
    and stray lines.

Glyphs are never cropped: the canvas is computed from the glyph bounding boxes (transformed,
when the text is rotated or sheared) before drawing.
"""

from __future__ import annotations

import functools
import math
import pathlib
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from crnn_jax.synth import glyph as glyph_lib

AUGMENT_LEVELS = ("none", "light", "strong")

# Per-level augmentation parameters. Lengths are in units of the (jittered) font size.
_PARAMS = {
    "light": dict(
        size_jitter=0.1,
        margin_x=(0.02, 0.35),
        margin_y=(0.03, 0.2),
        min_contrast=90,
        noise_sigma=(0.0, 5.0),
        blur_prob=0.25,
        blur_radius=(0.3, 0.9),
    ),
    "strong": dict(
        size_jitter=0.2,
        margin_x=(0.0, 0.5),
        margin_y=(0.0, 0.3),
        min_contrast=70,
        noise_sigma=(0.0, 12.0),
        blur_prob=0.4,
        blur_radius=(0.4, 1.4),
    ),
}
_DARK_TEXT_PROB = 0.7  # Probability of dark text on a light background.
_MAX_ROTATION_DEG = 3.0
_MAX_SHEAR = 0.3
_SPACING_PROB = 0.5  # 'strong': probability of character spacing jitter.
_TRACKING_RANGE = (-0.03, 0.1)  # Extra space per gap, the same for the line, in font sizes.
_GAP_JITTER = 0.025  # Additional per-gap variation, in font sizes.
_UNDERLINE_PROB = 0.1
_STRAY_LINES_PROB = 0.15
_MAX_BLUR_GAIN = 2.5  # Largest contrast restoration after blurring thin strokes.
_BACKGROUND_AMPLITUDE = (10.0, 50.0)  # Peak-to-peak gray variation of non-flat backgrounds.


@functools.lru_cache(maxsize=65536)
def _load_font(path: str, size: int, index: int = 0) -> ImageFont.FreeTypeFont:
  return ImageFont.truetype(path, size, index=index)


def load_font(path: str | pathlib.Path, size: int, index: int = 0) -> ImageFont.FreeTypeFont:
  """A cached Pillow font object for (path, size, face index of a .ttc/.otc collection)."""
  return _load_font(str(path), int(size), int(index))


@functools.lru_cache(maxsize=65536)
def cap_top(path: str, size: int, index: int = 0) -> int:
  """Top of the capital 'X' relative to the baseline (negative: above it)."""
  return _load_font(path, size, index).getbbox("X", anchor="ls")[1]


def spacing_jitter_ok(text: str) -> bool:
  """Whether characters can be drawn one by one without breaking shaping.

  Scripts that join or reorder letters (Hebrew, Arabic, Indic, Thai, ...; U+0590 to U+2E7F)
  are drawn as a whole string.
  """
  return all(ord(c) < 0x0590 or ord(c) >= 0x2E80 for c in text)


def layout(font, text: str, gaps: np.ndarray | None):
  """Character x positions (None: draw the whole string) and the ink box, baseline at y=0.

  Returns:
    (xs, (left, top, right, bottom)): xs are the pen positions of each character, relative
    to the start of the line; the box is relative to the same origin (top < 0 above the
    baseline).
  """
  if gaps is None:
    return None, font.getbbox(text, anchor="ls")
  extra = np.concatenate([[0.0], np.cumsum(gaps)])
  xs = [font.getlength(text[:i]) + float(extra[i]) for i in range(len(text))]
  left = top = math.inf
  right = bottom = -math.inf
  for x, char in zip(xs, text):
    l, t, r, b = font.getbbox(char, anchor="ls")
    if r <= l:  # A space: no ink.
      continue
    left, top = min(left, x + l), min(top, t)
    right, bottom = max(right, x + r), max(bottom, b)
  if left == math.inf:
    return xs, (0, 0, 0, 0)
  return xs, (left, top, right, bottom)


def draw_text(draw: ImageDraw.ImageDraw, origin, text: str, xs, font) -> None:
  ox, oy = origin
  if xs is None:
    draw.text((ox, oy), text, fill=255, font=font, anchor="ls")
    return
  for x, char in zip(xs, text):
    draw.text((ox + x, oy), char, fill=255, font=font, anchor="ls")


def _gray_levels(rng: np.random.Generator, min_contrast: float, bg_amplitude: float):
  """Background and text gray levels, at least `min_contrast` apart everywhere.

  The background varies by up to +-bg_amplitude / 2 around its level.
  """
  gap = min_contrast + bg_amplitude / 2
  if rng.random() < _DARK_TEXT_PROB:
    background = rng.uniform(max(gap, 130.0), 255.0)
    text = rng.uniform(0.0, background - gap)
  else:
    background = rng.uniform(0.0, min(255.0 - gap, 125.0))
    text = rng.uniform(background + gap, 255.0)
  return background, text


def _background(rng: np.random.Generator, shape, level: float, amplitude: float, kind: str):
  """The background gray levels: a float32 scalar (flat) or [H, W] array (gradient, texture).

  Non-flat backgrounds stay within level +- amplitude / 2.
  """
  height, width = shape
  if kind == "flat":
    return np.float32(level)
  if kind == "gradient":
    angle = rng.uniform(0.0, 2 * math.pi)
    dx, dy = math.cos(angle), math.sin(angle)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    field = (dx * xs + dy * ys) / max(abs(dx) + abs(dy), 1e-6)  # In [-0.5, 0.5].
    return np.float32(level) + np.float32(amplitude) * field
  # Smooth noise: a coarse random grid, upsampled bicubically.
  cell = rng.uniform(4.0, 14.0)
  coarse_shape = (max(2, round(height / cell)), max(2, round(width / cell)))
  coarse = rng.random(coarse_shape, dtype=np.float32)
  field = np.asarray(
      Image.fromarray(coarse - 0.5).resize((width, height), Image.Resampling.BICUBIC)
  )
  field = np.clip(field, -0.5, 0.5)  # Bicubic interpolation overshoots a little.
  return np.float32(level) + np.float32(amplitude) * field


def _render_plain(text: str, path: str, size: int, index: int = 0) -> np.ndarray:
  """'none': black on white, the line box plus a margin of 8% of the size on each side."""
  font = _load_font(path, size, index)
  margin = max(2, round(0.08 * size))
  xs, (left, top, right, bottom) = layout(font, text, None)
  top, bottom = min(top, cap_top(path, size, index)), max(bottom, 0)
  right = max(right, left + 1)
  width = math.ceil(right - left) + 2 * margin
  height = math.ceil(bottom - top) + 2 * margin
  mask = Image.new("L", (width, height), 0)
  draw_text(ImageDraw.Draw(mask), (margin - left, margin - top), text, xs, font)
  return 255 - np.asarray(mask, dtype=np.uint8)


def render_text(
    text: str,
    font_path: str | pathlib.Path,
    streams,
    *,
    font_size: int,
    augment: str,
    font_index: int = 0,
    glyph: "glyph_lib.GlyphParams | None" = None,
) -> np.ndarray:
  """Renders one line of text, stage by stage.

  Args:
    text: the line to draw (non-empty).
    font_path: a .ttf/.otf/.ttc file that has glyphs for every character of `text`.
    streams: the record's per-stage generators (`renderer.Streams` or `renderer.SingleStream`;
      unused, and may be None, for augment='none'). Stages: 'layout', 'margins', 'geometry',
      'glyph', 'stray_lines', 'blur', 'background', 'colour', 'noise'.
    font_size: the nominal font size in pixels (jittered by 'light' and 'strong').
    augment: 'none', 'light' or 'strong'.
    font_index: the face of a .ttc/.otc collection (0 for a single-face file).
    glyph: glyph-level effects (stroke weight, width, ink, wobble; `glyph.GlyphParams`) drawn
      on the text mask at the 'strong' level, from the 'glyph' stream.

  Returns:
    A [H, W] uint8 grayscale image; H is about font_size plus the vertical margins.

  Raises:
    ValueError: empty text or unknown augmentation level.
  """
  if not text:
    raise ValueError("cannot render an empty text")
  if augment not in AUGMENT_LEVELS:
    raise ValueError(f"augment must be one of {AUGMENT_LEVELS}, got {augment!r}")
  path = str(font_path)
  if augment == "none":
    return _render_plain(text, path, int(font_size), int(font_index))

  params = _PARAMS[augment]
  strong = augment == "strong"
  line = _layout(streams("layout"), text, path, font_size, int(font_index), params, strong)
  margins = _margins(streams("margins"), params, line.size)
  slant = _slant(streams("geometry")) if strong else None
  source, origin, box = _draw_mask(line, margins, strong)
  if strong and glyph is not None and glyph.enabled:
    source, origin, box = _glyph_effects(streams("glyph"), source, origin, box, glyph, line.size)
  mask = _transform(source, origin, box, margins, slant) if strong else source
  if strong:
    mask = _stray_lines(streams("stray_lines"), mask)
  mask, gain = _blur(streams("blur"), mask, params, line.size)
  return _colour_and_noise(streams, mask, gain, params, strong)


class _Line(NamedTuple):
  """A laid-out line: the drawn size, its font, pen positions and box (baseline at y=0)."""
  text: str
  size: int
  font: ImageFont.FreeTypeFont
  xs: list[float] | None
  box: tuple[float, float, float, float]  # (left, top, right, bottom)
  underline: tuple[int, int] | None  # (y, thickness)


def _layout(rng, text: str, path: str, font_size: int, font_index: int, params,
            strong: bool) -> _Line:
  """Stage 'layout': size jitter, character spacing ('strong') and underline ('strong')."""
  jitter = params["size_jitter"]
  size = max(8, round(font_size * rng.uniform(1 - jitter, 1 + jitter)))
  font = _load_font(path, size, font_index)
  gaps = None
  if strong and len(text) > 1 and rng.random() < _SPACING_PROB and spacing_jitter_ok(text):
    tracking = rng.uniform(*_TRACKING_RANGE)
    gaps = (tracking + rng.uniform(-_GAP_JITTER, _GAP_JITTER, size=len(text) - 1)) * size
  xs, (left, top, right, bottom) = layout(font, text, gaps)
  top, bottom = min(top, cap_top(path, size, font_index)), max(bottom, 0)
  right = max(right, left + 1)
  underline = None
  if strong and rng.random() < _UNDERLINE_PROB:
    thickness = max(1, round(size * rng.uniform(0.03, 0.07)))
    y = bottom + max(1, round(size * rng.uniform(0.03, 0.1)))
    underline = (y, thickness)
    bottom = y + thickness
  return _Line(text, size, font, xs, (left, top, right, bottom), underline)


def _margins(rng, params, size: int) -> tuple[int, int, int, int]:
  """Stage 'margins': (left, right, top, bottom) margins in pixels, at least 1."""
  margin_x = rng.uniform(*params["margin_x"], size=2) * size
  margin_y = rng.uniform(*params["margin_y"], size=2) * size
  ml, mr = (max(1, round(m)) for m in margin_x)
  mt, mb = (max(1, round(m)) for m in margin_y)
  return ml, mr, mt, mb


def _slant(rng) -> tuple[float, float]:
  """Stage 'geometry' ('strong'): (rotation in radians, horizontal shear)."""
  angle = math.radians(rng.uniform(-_MAX_ROTATION_DEG, _MAX_ROTATION_DEG))
  shear = rng.uniform(-_MAX_SHEAR, _MAX_SHEAR)
  return angle, shear


_PAD = 2  # Pixels around the box of a mask that is transformed afterwards ('strong').


def _draw_mask(line: _Line, margins, strong: bool):
  """The text mask (mode 'L', 255 on glyphs): with the margins ('light') or a small pad
  ('strong', transformed afterwards). Returns (mask, origin of the layout in it, box)."""
  left, top, right, bottom = line.box
  ml, mr, mt, mb = margins
  box_w, box_h = math.ceil(right - left), math.ceil(bottom - top)
  if strong:
    source = Image.new("L", (box_w + 2 * _PAD, box_h + 2 * _PAD), 0)
    origin = (_PAD - left, _PAD - top)
  else:
    source = Image.new("L", (box_w + ml + mr, box_h + mt + mb), 0)
    origin = (ml - left, mt - top)
  draw = ImageDraw.Draw(source)
  draw_text(draw, origin, line.text, line.xs, line.font)
  if line.underline is not None:
    y, thickness = line.underline
    draw.rectangle(
        (origin[0] + left, origin[1] + y, origin[0] + right, origin[1] + y + thickness - 1),
        fill=255,
    )
  return source, origin, line.box


def _glyph_effects(rng, source, origin, box, glyph, size: int):
  """Stage 'glyph': the glyph effects on the mask; a width change scales the layout box about
  its left edge."""
  stretched = glyph_lib.apply(source, rng, glyph, size)
  factor = stretched.width / source.width
  left, top, right, bottom = box
  return stretched, (origin[0] * factor, origin[1]), (left * factor, top, right * factor, bottom)


def _transform(source, origin, box, margins, slant) -> Image.Image:
  """The mask sheared, then rotated, into a canvas that holds it whole, plus the margins."""
  left, top, right, bottom = box
  ml, mr, mt, mb = margins
  angle, shear = slant
  # Forward map (layout coordinates): shear x by -shear * y (y grows downwards, so a
  # positive shear slants like italics), then rotate.
  cos, sin = math.cos(angle), math.sin(angle)
  forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, -shear], [0.0, 1.0]])
  corners = np.array(
      [[left - _PAD, top - _PAD], [right + _PAD, top - _PAD],
       [left - _PAD, bottom + _PAD], [right + _PAD, bottom + _PAD]]
  ).T
  moved = forward @ corners
  x0, y0 = moved.min(axis=1)
  x1, y1 = moved.max(axis=1)
  width = math.ceil(x1 - x0) + ml + mr
  height = math.ceil(y1 - y0) + mt + mb
  inverse = np.linalg.inv(forward)
  # Output pixel (u, v) is layout point inverse @ (u - ml + x0, v - mt + y0), which is at
  # that point + origin in the source image.
  offset = inverse @ np.array([x0 - ml, y0 - mt]) + np.array(origin)
  coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
  return source.transform(
      (width, height), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
  )


def _stray_lines(rng, mask: Image.Image) -> Image.Image:
  """Stage 'stray_lines' ('strong'): faint lines on a separate layer, merged with a maximum
  so they never erase glyphs."""
  if rng.random() >= _STRAY_LINES_PROB:
    return mask
  width, height = mask.size
  lines = Image.new("L", (width, height), 0)
  draw = ImageDraw.Draw(lines)
  for _ in range(rng.integers(1, 3)):
    x_a, x_b = rng.uniform(0, width, size=2)
    y_a, y_b = rng.uniform(0, height, size=2)
    draw.line((x_a, y_a, x_b, y_b), fill=int(rng.integers(60, 150)), width=1)
  return ImageChops.lighter(mask, lines)


def _blur(rng, mask: Image.Image, params, size: int) -> tuple[Image.Image, float]:
  """Stage 'blur': (the mask, maybe blurred; the gain that restores thin strokes' peak)."""
  if rng.random() >= params["blur_prob"]:
    return mask, 1.0
  radius = rng.uniform(*params["blur_radius"]) * size / 40
  peak = mask.getextrema()[1]
  mask = mask.filter(ImageFilter.GaussianBlur(radius))
  # Blur spreads thin strokes: restore their peak so the text keeps its contrast.
  return mask, min(_MAX_BLUR_GAIN, peak / max(mask.getextrema()[1], 1))


def _colour_and_noise(streams, mask: Image.Image, gain: float, params,
                      strong: bool) -> np.ndarray:
  """Stages 'background' (kind and field), 'colour' (gray levels) and 'noise': the image."""
  width, height = mask.size
  background_rng = streams("background")
  kind = "flat"
  amplitude = 0.0
  if strong:
    kind = ("flat", "gradient", "texture")[background_rng.integers(3)]
    if kind != "flat":
      amplitude = background_rng.uniform(*_BACKGROUND_AMPLITUDE)
  bg_level, text_level = _gray_levels(streams("colour"), params["min_contrast"], amplitude)
  background = _background(background_rng, (height, width), bg_level, amplitude, kind)

  alpha = np.asarray(mask, dtype=np.float32) * np.float32(1 / 255)
  if gain > 1.0:
    alpha = np.minimum(alpha * np.float32(gain), np.float32(1.0))
  image = background + (np.float32(text_level) - background) * alpha
  noise_rng = streams("noise")
  sigma = noise_rng.uniform(*params["noise_sigma"])
  if sigma > 0.5:
    noise = noise_rng.standard_normal((height, width), dtype=np.float32)
    image = image + noise * np.float32(sigma)
  return np.clip(image + 0.5, 0, 255).astype(np.uint8)
