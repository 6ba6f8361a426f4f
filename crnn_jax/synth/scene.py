"""The 'scene' augmentation level: word crops that look like photographs of signs and print.

`render_scene` draws one word in colour over a photograph, texture or plain background and
returns an RGB image; the input pipeline converts it to grayscale exactly as it converts the
model's inputs (`preprocess.to_grayscale`). The stages, each with its own probability (see
`SceneParams`), follow the design of SynthTIGER (Yim et al., ICDAR 2021) and MJSynth:

  1. Layout: font size, character spacing from tight to very wide, stroke weight (dilated or
     eroded glyphs), parts of neighbouring words and lines drawn around the word.
  2. Text effects: outline (border), hollow letters (the outline alone), inline letters (a
     line of another colour running inside the strokes), drop shadow, 3-D extrusion, bevel
     (shaded ink).
  3. Geometry: arc-shaped baselines, projective transform (corner jitter, rotation, shear),
     all applied to every layer at once with OpenCV.
  4. Crop: tight to loose margins around the transformed word box (which spans the capital
     height and the descenders, so that case stays visible), sometimes cutting the glyph tops
     or bottoms a little, as real word boxes do.
  5. Background: a random crop of a photograph or texture (`backgrounds`), a flat or
     gradient colour, or procedural noise; text colours are drawn against the mean colour of
     the background under the word, from strong to low contrast, either polarity; blend modes
     normal, multiply and textured fill.
  6. Photometric: uneven lighting, Gaussian, motion and defocus blur, low resolution (the image
     is returned at a random height of 24 to 64 pixels, or 12 to 24), noise, JPEG compression
     at quality 15-95.

Each stage is a function that draws from its own stream of the record (`renderer.Streams`:
'layout', 'weight', 'neighbours', 'effects', 'inline', 'geometry', 'crop', 'background',
'colour', 'bevel', 'lighting', 'blur', 'resolution', 'noise', 'jpeg'), so an image is a pure
function of (seed, index) on one installation (fonts, Pillow, FreeType and OpenCV versions),
and a new effect with its own stream leaves every other stage's draws as they were.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from crnn_jax.synth import backgrounds as backgrounds_lib
from crnn_jax.synth import grayscale
from crnn_jax.synth import params as params_lib
from crnn_jax.synth.params import SceneParams

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601-2, as PIL's convert('L').


DEFAULT_PARAMS = params_lib.DEFAULT_SCENE


def luma(rgb) -> np.ndarray:
  """Gray level(s) of RGB colour(s) `[..., 3]`, as the model's grayscale conversion."""
  return np.asarray(rgb, np.float32) @ _LUMA


def colour_with_luma(rng: np.random.Generator, target: float) -> np.ndarray:
  """A random colour whose luma is `target` (clipped to [0, 255]): float32 `[3]`."""
  saturation = rng.uniform(0.0, 1.0) ** 1.5  # Many near-gray colours, some vivid ones.
  hue = rng.random(3).astype(np.float32)
  target = float(np.clip(target, 0.0, 255.0))
  # A chroma of zero luma (the weights sum to 1), scaled down until every channel is in range.
  chroma = saturation * 255.0 * (hue - float(hue @ _LUMA))
  room = np.where(chroma > 0, (255.0 - target) / np.maximum(chroma, 1e-6),
                  target / np.maximum(-chroma, 1e-6))
  colour = target + min(1.0, float(room.min())) * chroma
  return np.clip(colour, 0.0, 255.0).astype(np.float32)


def text_colour(rng: np.random.Generator, background_luma: float, params: SceneParams):
  """A text colour at a random contrast from the background's luma, either polarity."""
  low = rng.random() < params.low_contrast_prob
  delta = rng.uniform(*(params.low_contrast if low else params.contrast))
  can_dark, can_light = background_luma - delta >= 0, background_luma + delta <= 255
  if not (can_dark or can_light):  # Too much contrast asked for this background.
    delta = max(background_luma, 255 - background_luma)
    can_dark = background_luma >= 128
    can_light = not can_dark
  dark = can_dark and (not can_light or rng.random() < 0.5)
  return colour_with_luma(rng, background_luma - delta if dark else background_luma + delta)


def measured_contrast(image: np.ndarray, text_alpha: np.ndarray, box: np.ndarray) -> float:
  """Luma difference between the ink (alpha > 0.5) and the rest of the word box.

  Args:
    image: float `[H, W, 3]` RGB.
    text_alpha: float `[H, W]` coverage of the word's glyphs.
    box: float `[H, W]` coverage of the word box.

  Returns:
    |mean luma of ink - mean luma of the box's other pixels|; 255 when either is empty.
  """
  gray = image @ _LUMA
  ink = text_alpha > 0.5
  surround = (box > 0.5) & (text_alpha < 0.1)
  if not ink.any() or not surround.any():
    return 255.0
  return abs(float(gray[ink].mean()) - float(gray[surround].mean()))


# ---------------------------------------------------------------------------------------------
# Backgrounds.


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
  """Noise in [0, 1] varying over about `cell` pixels: float32 `[H, W]`."""
  coarse = rng.random((max(2, round(height / cell)) + 1, max(2, round(width / cell)) + 1),
                      dtype=np.float32)
  return np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def _photo_crop(rng: np.random.Generator, image: np.ndarray, height: int, width: int):
  ih, iw = image.shape[:2]
  zoom = math.exp(rng.uniform(math.log(0.5), math.log(4.0)))  # Source pixels per output pixel.
  ch, cw = min(ih, max(2, round(height * zoom))), min(iw, max(2, round(width * zoom)))
  if cw / ch > width / height:  # Keep the output's aspect ratio.
    cw = max(2, round(ch * width / height))
  else:
    ch = max(2, round(cw * height / width))
  y = int(rng.integers(0, ih - ch + 1))
  x = int(rng.integers(0, iw - cw + 1))
  crop = image[y:y + ch, x:x + cw]
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  return cv2.resize(np.ascontiguousarray(crop), (width, height),
                    interpolation=cv2.INTER_AREA if zoom > 1 else cv2.INTER_LINEAR)


def make_background(rng: np.random.Generator, height: int, width: int,
                    images: Sequence[str], params: SceneParams = DEFAULT_PARAMS) -> np.ndarray:
  """A float32 `[H, W, 3]` RGB background: a photo crop, flat, gradient or noise texture."""
  u = rng.random()
  if images and u < params.photo_prob:
    image = backgrounds_lib.load_background(images[int(rng.integers(len(images)))])
    if image is not None:
      crop = _photo_crop(rng, image, height, width).astype(np.float32)
      if rng.random() < params.photo_fade_prob:  # A panel: the photo's detail, faded.
        mean = crop.mean(axis=(0, 1))
        level = colour_with_luma(rng, rng.uniform(0, 255)) if rng.random() < 0.5 else mean
        crop = level + rng.uniform(0.15, 0.7) * (crop - mean)
      return np.clip(crop, 0, 255)
  base = colour_with_luma(rng, rng.uniform(0, 255))
  if u < params.photo_prob + params.flat_prob:
    return np.broadcast_to(base, (height, width, 3)).copy()
  other = colour_with_luma(rng, rng.uniform(0, 255))
  amount = rng.uniform(0.1, 0.6)
  other = base + amount * (other - base)
  if u < params.photo_prob + params.flat_prob + params.gradient_prob:
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    field = math.cos(angle) * xs / max(width, 1) + math.sin(angle) * ys / max(height, 1)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
  else:
    field = _smooth_noise(rng, height, width, rng.uniform(2.0, 24.0))
    if rng.random() < 0.3:  # Fine grain on top (paper, concrete).
      field = 0.7 * field + 0.3 * rng.random((height, width), dtype=np.float32)
  return base + field[..., None] * (other - base)


# ---------------------------------------------------------------------------------------------
# Text layers.


def _draw_line(size: tuple[int, int], origin, text: str, xs, font) -> np.ndarray:
  mask = Image.new("L", size, 0)
  grayscale.draw_text(ImageDraw.Draw(mask), origin, text, xs, font)
  return np.asarray(mask, dtype=np.float32) * np.float32(1 / 255)


def _neighbours(rng, text: str, word, params) -> None:
  """Stage 'neighbours': parts of the lines above and below, drawn into `word.mask` (in place).

  A neighbouring line sits a full line height away, so the crop's top or bottom margin (at
  most `margin_y` of the word's height) shows only its edge, as in real word boxes. Letters
  to the left or right are not drawn: a whole extra letter in the margin would contradict
  the label.
  """
  if rng.random() >= params.neighbour_prob:
    return
  left, top, right, bottom = word.box
  ox, oy = word.origin
  font, canvas = word.font, word.mask
  layer = Image.fromarray((canvas * 255).astype(np.uint8))
  draw = ImageDraw.Draw(layer)
  chars = [c for c in text if not c.isspace()] or ["x"]
  for side in rng.permutation(2)[:int(rng.integers(1, 3))]:
    other = "".join(chars[i] for i in rng.integers(len(chars), size=int(rng.integers(4, 16))))
    gap = rng.uniform(0.1, 0.5) * (bottom - top)
    x = ox + left + rng.uniform(-0.6, 0.3) * (right - left)
    y = oy + (top - gap - max(bottom, 0) if side == 0 else bottom + gap - top)
    draw.text((x, y), other, fill=255, font=font, anchor="ls")
  canvas[...] = np.asarray(layer, dtype=np.float32) * np.float32(1 / 255)


def _shift(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
  matrix = np.float32([[1, 0, dx], [0, 1, dy]])
  return cv2.warpAffine(mask, matrix, (mask.shape[1], mask.shape[0]), flags=cv2.INTER_LINEAR)


def _disk(radius: int) -> np.ndarray:
  return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _curve(stack: np.ndarray, rng, box, origin, size: int, amount: float) -> np.ndarray:
  """Bends the layers' rows along an arc: y moves by `amount * size * ((x - cx) / half)^2`."""
  height, width = stack.shape[:2]
  left, _, right, _ = box
  cx = origin[0] + (left + right) / 2
  half = max((right - left) / 2, 1.0)
  xs = np.arange(width, dtype=np.float32)
  offset = amount * size * ((xs - cx) / half) ** 2
  offset -= offset[int(np.clip(round(cx), 0, width - 1))]
  map_x = np.broadcast_to(xs, (height, width)).astype(np.float32)
  map_y = (np.arange(height, dtype=np.float32)[:, None] - offset[None, :]).astype(np.float32)
  return cv2.remap(stack, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)


def _bevel(rng, ink: np.ndarray, text_alpha: np.ndarray, size: int) -> np.ndarray:
  """`ink` `[H, W, 3]` lit from a random direction across the glyphs' soft edges.

  The slope of the blurred glyph mask, projected on the light direction, brightens the strokes'
  sides that face the light and darkens the others (a raised letter; an engraved one with the
  light from the other side).
  """
  if min(text_alpha.shape) < 2:  # A crop one pixel high or wide has no slope to shade.
    return ink
  soft = cv2.GaussianBlur(text_alpha, (0, 0), max(0.6, size * rng.uniform(0.02, 0.06)))
  grad_y, grad_x = np.gradient(soft)
  angle = rng.uniform(0, 2 * math.pi)
  shade = grad_x * math.cos(angle) + grad_y * math.sin(angle)
  shade /= max(float(np.abs(shade).max()), 1e-6)
  return ink + np.float32(rng.uniform(60.0, 140.0)) * shade[..., None]


def _inline(rng, mask: np.ndarray, params: SceneParams) -> np.ndarray | None:
  """Coverage `[H, W]` of a line running inside the glyph strokes of `mask` `[H, W]`.

  The line lies where the distance to the stroke's edge is between two fractions of the
  stroke's half-width (its 90th percentile over the ink, so one value serves the word), taken
  at random from `params.inline_band`: around the centre line that gives one line per stroke
  (engraved or inline letters), nearer the edge two parallel ones. None where the strokes
  are too thin (under 2 pixels' half-width) to hold a visible line.
  """
  binary = (mask > 0.5).astype(np.uint8)
  if not binary.any():
    return None
  distance = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
  half_width = float(np.percentile(distance[binary > 0], 90))
  if half_width < 2.0:
    return None
  low, high = params.inline_band
  inner = rng.uniform(low, (low + high) / 2) * half_width
  outer = max(inner + 1.5, rng.uniform((low + high) / 2, high) * half_width)
  # Soft edges, a pixel wide, so that the warps and resizes that follow do not alias it.
  return np.clip(np.minimum(distance - inner, outer - distance) + 0.5, 0, 1).astype(np.float32)


def _homography(rng, box_corners: np.ndarray, box_height: float, params: SceneParams):
  """A random projective map of the word box (corner jitter, rotation, shear)."""
  centre = box_corners.mean(axis=0)
  corners = box_corners - centre
  if rng.random() < 0.5:
    shear = rng.uniform(-params.shear_range, params.shear_range)
    corners = corners @ np.array([[1.0, 0.0], [-shear, 1.0]], np.float32)
  angle = math.radians(rng.normal(0.0, params.rotation_deg / 2))
  angle = float(np.clip(angle, -math.radians(params.rotation_deg * 2),
                        math.radians(params.rotation_deg * 2)))
  if params.rotation_min_deg:  # Forced tilts (the irregular test set); 0 leaves the draws.
    angle = math.copysign(abs(angle) + math.radians(params.rotation_min_deg), angle or 1.0)
  rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]],
                      np.float32)
  corners = corners @ rotation
  corners = corners + rng.uniform(-1, 1, size=(4, 2)) * params.corner_jitter * box_height
  target = (corners + centre).astype(np.float32)
  return cv2.getPerspectiveTransform(box_corners.astype(np.float32), target)


# ---------------------------------------------------------------------------------------------
# The whole image, stage by stage: each stage draws from its own stream.


@dataclasses.dataclass
class _Word:
  """The laid-out word: its drawn size and font, its glyph mask and box layers, where it is."""
  size: int
  font: Any
  mask: np.ndarray  # float32 [H, W] glyph coverage.
  guide: np.ndarray  # float32 [H, W] the word box: it decides the crop, ink never does.
  origin: tuple[float, float]  # Of the layout (baseline at y=0) in the layers.
  box: tuple[float, float, float, float]  # (left, top, right, bottom) in layout coordinates.
  pad: tuple[int, int]  # (x, y) of the box's corner in the layers.


@dataclasses.dataclass
class _Effects:
  """The layers of stage 'effects' (None: not drawn)."""
  border: np.ndarray | None
  shadow: np.ndarray | None
  hollow: bool  # The border alone draws the letters.


def render_scene(text: str, font_path: str, streams, *, font_size: int = 40,
                 backgrounds: Sequence[str] = (),
                 params: SceneParams = DEFAULT_PARAMS, font_index: int = 0) -> np.ndarray:
  """Renders one word as a colour photograph-like crop.

  Args:
    text: the characters to draw (non-empty); the font must have all of them.
    font_path: a .ttf/.otf/.ttc file.
    streams: the record's per-stage generators (`renderer.Streams`): 'layout', 'weight',
      'neighbours', 'effects', 'inline', 'geometry', 'crop', 'background', 'colour', 'bevel',
      'lighting', 'blur', 'resolution', 'noise', 'jpeg'.
    font_size: the nominal font size in pixels (jittered).
    backgrounds: image paths for photographic backgrounds (`backgrounds.discover_backgrounds`);
      empty: procedural backgrounds only.
    params: probabilities and ranges.
    font_index: the face of a .ttc/.otc collection (0 for a single-face file).

  Returns:
    uint8 `[H, W, 3]` RGB, H from 12 to `params.output_height[1]` pixels.
  """
  if not text:
    raise ValueError("cannot render an empty text")
  word = _layout(streams("layout"), text, str(font_path), font_size, int(font_index), params)
  word.mask = _weight(streams("weight"), word.mask, word.size, params)
  _neighbours(streams("neighbours"), text, word, params)
  effects = _effects(streams("effects"), word.mask, word.size, params)
  inline = _inline_layer(streams("inline"), word.mask, params, effects.hollow)
  layers = [word.mask, word.guide] + [layer for layer in (effects.border, effects.shadow, inline)
                                      if layer is not None]
  stack = _geometry(streams("geometry"), np.stack(layers, axis=-1), word, params)
  stack = _crop(streams("crop"), stack, params)
  image = _compose(streams, stack, effects, inline is not None, word.size, backgrounds, params)
  return _degrade(streams, image, word.size, params)


def _layout(rng, text: str, path: str, font_size: int, font_index: int,
            params: SceneParams) -> _Word:
  """Stage 'layout': the drawn size, the character spacing (tight to very wide), the mask."""
  size = max(10, round(font_size * rng.uniform(*params.size_range)))
  font = grayscale.load_font(path, size, font_index)
  gaps = None
  if len(text) > 1 and rng.random() < params.spacing_prob and grayscale.spacing_jitter_ok(text):
    if rng.random() < params.wide_spacing_prob:
      tracking = rng.uniform(*params.wide_tracking)
    else:
      tracking = rng.uniform(-0.05, 0.12)
    gaps = (tracking + rng.uniform(-0.02, 0.02, size=len(text) - 1)) * size
  xs, (left, top, right, bottom) = grayscale.layout(font, text, gaps)
  top = min(top, grayscale.cap_top(path, size, font_index))
  bottom, right = max(bottom, 0), max(right, left + 1)
  box_w, box_h = right - left, bottom - top
  pad_x, pad_y = round(0.8 * size + 0.1 * box_w), round(1.2 * size)
  width, height = math.ceil(box_w) + 2 * pad_x, math.ceil(box_h) + 2 * pad_y
  origin = (pad_x - left, pad_y - top)
  mask = _draw_line((width, height), origin, text, xs, font)
  guide = np.zeros_like(mask)
  guide[round(pad_y):round(pad_y + box_h), round(pad_x):round(pad_x + box_w)] = 1.0
  return _Word(size, font, mask, guide, origin, (left, top, right, bottom), (pad_x, pad_y))


def _weight(rng, mask: np.ndarray, size: int, params: SceneParams) -> np.ndarray:
  """Stage 'weight': heavier (dilated, 2/3) or lighter (eroded) glyphs."""
  if rng.random() >= params.weight_prob:
    return mask
  radius = max(1, round(size * rng.uniform(0.01, 0.05)))
  if rng.random() < 2 / 3:
    return cv2.dilate(mask, _disk(radius))
  if radius > 1 or size >= 40:
    return cv2.erode(mask, _disk(1))
  return mask


def _effects(rng, mask: np.ndarray, size: int, params: SceneParams) -> _Effects:
  """Stage 'effects': an outline (or hollow letters: the outline alone), and a drop shadow or
  a 3-D extrusion."""
  border = shadow = None
  u = rng.random()
  hollow = u < params.border_prob * params.hollow_prob
  if u < params.border_prob:
    radius = max(2 if hollow else 1, round(size * rng.uniform(*params.border_width)))
    border = cv2.dilate(mask, _disk(radius))
  effect = rng.random()
  if effect < params.shadow_prob:
    dx, dy = rng.uniform(-0.12, 0.12, size=2) * size
    shadow = cv2.GaussianBlur(_shift(mask, dx, dy), (0, 0), max(0.3, rng.uniform(0, 0.08) * size))
  elif effect < params.shadow_prob + params.extrude_prob:
    steps = max(2, round(size * rng.uniform(0.04, 0.12)))
    dx, dy = rng.choice([-1.0, 1.0], size=2) * rng.uniform(0.3, 1.0, size=2)
    shadow = np.max([_shift(mask, dx * k, dy * k) for k in range(1, steps + 1)], axis=0)
  return _Effects(border, shadow, hollow)


def _inline_layer(rng, mask: np.ndarray, params: SceneParams, hollow: bool) -> np.ndarray | None:
  """Stage 'inline': a line inside the strokes (not in hollow letters), or None."""
  if rng.random() >= params.inline_prob or hollow:
    return None
  return _inline(rng, mask, params)


def _geometry(rng, stack: np.ndarray, word: _Word, params: SceneParams) -> np.ndarray:
  """Stage 'geometry': an arc-shaped baseline, then a projective map, of every layer at once."""
  if rng.random() < params.curve_prob:
    amount = rng.uniform(-params.curve_range, params.curve_range)
    if params.curve_min:  # Arcs of at least curve_min (the irregular test set).
      amount = math.copysign(
          params.curve_min + abs(amount) / max(params.curve_range, 1e-9) *
          max(params.curve_range - params.curve_min, 0.0), amount or 1.0)
    stack = _curve(stack, rng, word.box, word.origin, word.size, amount)
  if rng.random() >= params.perspective_prob:
    return stack
  height, width = stack.shape[:2]
  pad_x, pad_y = word.pad
  left, top, right, bottom = word.box
  box_w, box_h = right - left, bottom - top
  corners = np.array([[pad_x, pad_y], [pad_x + box_w, pad_y], [pad_x + box_w, pad_y + box_h],
                      [pad_x, pad_y + box_h]], np.float32)
  matrix = _homography(rng, corners, box_h, params)
  outline = cv2.perspectiveTransform(
      np.array([[[0, 0], [width, 0], [width, height], [0, height]]], np.float32), matrix)[0]
  low, high = outline.min(axis=0), outline.max(axis=0)
  new_w, new_h = (int(min(math.ceil(v), 8 * d)) for v, d in zip(high - low, (width, height)))
  matrix = np.array([[1, 0, -low[0]], [0, 1, -low[1]], [0, 0, 1]], np.float64) @ matrix
  stack = cv2.warpPerspective(stack, matrix, (max(new_w, 1), max(new_h, 1)),
                              flags=cv2.INTER_LINEAR, borderValue=0)
  return stack[..., None] if stack.ndim == 2 else stack


def _crop(rng, stack: np.ndarray, params: SceneParams) -> np.ndarray:
  """Stage 'crop': the layers cut around the word box (layer 1) with random margins."""
  rows = np.flatnonzero(stack[..., 1].max(axis=1) > 0.5)
  cols = np.flatnonzero(stack[..., 1].max(axis=0) > 0.5)
  if not len(rows) or not len(cols):  # Degenerate warp: fall back to the whole layer.
    rows, cols = np.arange(stack.shape[0]), np.arange(stack.shape[1])
  word_h = rows[-1] - rows[0] + 1
  mx = rng.uniform(*params.margin_x, size=2) * word_h
  my = rng.uniform(*params.margin_y, size=2) * word_h
  y0, y1 = round(rows[0] - my[0]), round(rows[-1] + 1 + my[1])
  x0, x1 = round(cols[0] - mx[0]), round(cols[-1] + 1 + mx[1])
  if y1 - y0 < 4 or x1 - x0 < 4:
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
  pad = ((max(0, -y0), max(0, y1 - stack.shape[0])), (max(0, -x0), max(0, x1 - stack.shape[1])),
         (0, 0))
  stack = np.pad(stack, pad)
  y0, y1, x0, x1 = y0 + pad[0][0], y1 + pad[0][0], x0 + pad[1][0], x1 + pad[1][0]
  return stack[y0:y1, x0:x1]


def _compose(streams, stack: np.ndarray, effects: _Effects, has_inline: bool, size: int,
             backgrounds: Sequence[str], params: SceneParams) -> np.ndarray:
  """Stages 'background', 'colour' and 'bevel': the layers coloured over a background.

  Returns:
    float32 `[H, W, 3]` RGB, not clipped.
  """
  out_h, out_w = stack.shape[:2]
  background = make_background(streams("background"), out_h, out_w, backgrounds, params)
  rng = streams("colour")
  text_alpha, guide_alpha = stack[..., 0], stack[..., 1]
  weights = guide_alpha[..., None]
  local = (background * weights).sum(axis=(0, 1)) / max(float(weights.sum()), 1.0)
  fill = text_colour(rng, float(luma(local)), params)
  image = background
  k = 2
  hollow = effects.hollow
  border_alpha = None
  if effects.border is not None:
    border_alpha = stack[..., k]
    k += 1
    # Hollow letters: the outline is the ink, drawn against the background.
    border_colour = text_colour(rng, float(luma(local if hollow else fill)), params)
    image = image + (border_colour - image) * border_alpha[..., None]
  if effects.shadow is not None:
    shadow_alpha = stack[..., k] * rng.uniform(0.4, 1.0)
    k += 1
    shade = fill * rng.uniform(0.0, 0.6) if rng.random() < 0.7 else colour_with_luma(
        rng, rng.uniform(0, 255))
    image = image + (shade - image) * shadow_alpha[..., None]
  opacity = rng.uniform(0.75, 1.0) if rng.random() < 0.3 else 1.0
  alpha = (text_alpha * opacity)[..., None]
  u = rng.random()
  if u < params.multiply_prob and luma(fill) < luma(local):
    ink = image * (fill / 255.0)  # Multiply: the surface shows through the ink.
  elif u < params.multiply_prob + params.textured_fill_prob:
    grain = _smooth_noise(rng, out_h, out_w, rng.uniform(1.5, 8.0))[..., None]
    ink = fill * (1.0 + rng.uniform(0.1, 0.4) * (grain - 0.5))
  else:
    ink = fill
  bevel_rng = streams("bevel")
  if bevel_rng.random() < params.bevel_prob and not hollow:
    ink = _bevel(bevel_rng, np.broadcast_to(ink, image.shape), text_alpha, size)
  if hollow:
    ink = background  # The glyphs' insides show the surface again.
  under = image
  image = under + (ink - under) * alpha
  if has_inline:  # In a colour that stands out from the ink (often the surface's).
    line_colour = local if rng.random() < 0.5 else text_colour(rng, float(luma(fill)), params)
    line_alpha = (stack[..., k] * text_alpha)[..., None]
    image = image + (line_colour - image) * line_alpha
  # A word the effects made invisible (ink as dark as a dark photo, a shadow the colour of
  # the text) would teach the model to read nothing: redraw it at full contrast.
  drawn = np.clip(border_alpha - text_alpha, 0, 1) if hollow else text_alpha
  if measured_contrast(image, drawn, guide_alpha) < params.min_contrast:
    ink = np.float32(0.0 if luma(local) >= 128 else 255.0)
    image = under + (ink - under) * text_alpha[..., None]
  return image


def _degrade(streams, image: np.ndarray, size: int, params: SceneParams) -> np.ndarray:
  """Stages 'lighting', 'blur', 'resolution', 'noise' and 'jpeg': the photometric
  degradations, to uint8 `[H, W, 3]` at the output height."""
  out_h, out_w = image.shape[:2]
  rng = streams("lighting")
  if rng.random() < params.lighting_prob:
    field = _smooth_noise(rng, out_h, out_w, rng.uniform(0.5, 1.5) * max(out_h, out_w))
    image = image * (rng.uniform(0.55, 0.9) + rng.uniform(0.2, 0.6) * field)[..., None]
  image = np.clip(image, 0, 255).astype(np.float32)
  # Blur radii are in pixels of the drawn size (font size 40 is the nominal one).
  rng = streams("blur")
  if rng.random() < params.blur_prob:
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.8) * size / 40)
  if rng.random() < params.motion_blur_prob:
    length = max(2, round(rng.uniform(2, 9) * size / 40))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2),
                                       rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
  if rng.random() < params.defocus_prob:
    radius = max(1, round(rng.uniform(1, 3) * size / 40))
    disk = _disk(radius).astype(np.float32)
    image = cv2.filter2D(image, -1, disk / disk.sum())
  rng = streams("resolution")
  if rng.random() < params.low_resolution_prob:
    target_h = int(rng.integers(12, params.output_height[0] + 1))
  else:
    target_h = int(rng.integers(params.output_height[0], params.output_height[1] + 1))
  target_w = max(2, round(out_w * target_h / out_h))
  image = cv2.resize(image, (target_w, target_h),
                     interpolation=cv2.INTER_AREA if target_h < out_h else cv2.INTER_LINEAR)
  rng = streams("noise")
  sigma = rng.uniform(*params.noise_sigma)
  if sigma > 0.5:
    image = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
  image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
  rng = streams("jpeg")
  if rng.random() < params.jpeg_prob:
    quality = int(rng.integers(params.jpeg_quality[0], params.jpeg_quality[1] + 1))
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if ok:
      image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
  return np.ascontiguousarray(image)
