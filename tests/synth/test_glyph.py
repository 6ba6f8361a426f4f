"""Tests for crnn_jax.synth.glyph: glyph-level effects on the text mask."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from crnn_jax.synth import glyph


def _bars(width=120, height=48, stroke=6) -> Image.Image:
  """Vertical bars `stroke` pixels wide, 12 pixels apart, with a margin."""
  mask = Image.new("L", (width, height), 0)
  draw = ImageDraw.Draw(mask)
  for x in range(10, width - 10, 18):
    draw.rectangle((x, 8, x + stroke - 1, height - 9), fill=255)
  return mask


def _mean_stroke(mask: Image.Image) -> float:
  """Ink pixels per bar per row: the mean stroke width in pixels."""
  a = np.asarray(mask, np.float32) / 255
  row = a[a.shape[0] // 2]
  runs = np.count_nonzero(np.diff((row > 0.5).astype(int)) == 1)
  return float((row > 0.5).sum() / max(runs, 1))


def _only(**kwargs) -> glyph.GlyphParams:
  return glyph.GlyphParams(**kwargs)


def test_no_effect_returns_the_mask_unchanged():
  mask = _bars()
  out = glyph.apply(mask, np.random.default_rng(0), glyph.GlyphParams(), 40)
  assert out is mask


@pytest.mark.parametrize("grow, wider", [(1.5, True), (-1.5, False)])
def test_weight_thickens_or_thins_every_stroke(grow, wider):
  mask = _bars()
  params = _only(weight_prob=1.0, weight_range=(grow, grow))
  out = glyph.apply(mask, np.random.default_rng(0), params, 40)
  before, after = _mean_stroke(mask), _mean_stroke(out)
  # Each edge moves by about `grow` pixels: the stroke changes by about 2 * grow.
  assert (after - before) == pytest.approx(2 * grow, abs=1.2)
  assert (after > before) == wider
  assert out.size == mask.size


def test_zero_weight_change_keeps_the_strokes():
  mask = _bars()
  out = glyph.apply(mask, np.random.default_rng(0), _only(weight_prob=1.0,
                                                           weight_range=(0.0, 0.0)), 40)
  assert _mean_stroke(out) == pytest.approx(_mean_stroke(mask), abs=0.6)


def test_width_scales_horizontally_only():
  mask = _bars()
  out = glyph.apply(mask, np.random.default_rng(0), _only(width_prob=1.0,
                                                           width_range=(0.5, 0.5)), 40)
  assert out.size == (60, 48)
  assert _mean_stroke(out) == pytest.approx(_mean_stroke(mask) / 2, abs=0.6)


def test_elastic_moves_ink_by_at_most_about_its_amplitude():
  mask = _bars()
  params = _only(elastic_prob=1.0, elastic_amplitude=1.5)
  out = np.asarray(glyph.apply(mask, np.random.default_rng(3), params, 40), np.float32)
  src = np.asarray(mask, np.float32)
  assert not np.array_equal(out, src)
  # Ink stays within 2 pixels of where it was: dilate the source by 2 and compare.
  dilated = np.asarray(mask.filter(ImageFilter.MaxFilter(5)))
  assert out[dilated == 0].max() < 60
  assert out.sum() == pytest.approx(src.sum(), rel=0.1)


def test_bleed_varies_the_stroke_weight_along_the_line():
  mask = _bars(width=400, stroke=6)
  params = _only(bleed_prob=1.0, bleed_amount=0.3, bleed_scale=6.0)
  out = np.asarray(glyph.apply(mask, np.random.default_rng(1), params, 40), np.float32) / 255
  # Per bar, the ink of the thresholded strokes (> 0.5) differs between bars.
  widths = []
  for x in range(10, 390, 18):
    widths.append((out[8:40, x - 3:x + 9] > 0.5).sum() / 32)
  assert np.std(widths) > 0.3
  # A faint halo where the mask had no ink, 2-4 pixels beside the strokes (x 10-15).
  assert 0.01 < out[12:36, 18:20].mean() < 0.3


def test_same_generator_state_same_result():
  mask = _bars()
  params = _only(width_prob=0.5, weight_prob=0.5, bleed_prob=0.5, elastic_prob=0.5)
  a = glyph.apply(mask, np.random.default_rng(7), params, 40)
  b = glyph.apply(mask, np.random.default_rng(7), params, 40)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_params_are_validated_and_read_from_a_mapping():
  assert glyph.GlyphParams.from_mapping({"width_range": [0.8, 1.2]}).width_range == (0.8, 1.2)
  assert not glyph.GlyphParams.from_mapping(None).enabled
  assert glyph.GlyphParams.from_mapping({"bleed_prob": 0.1}).enabled
  with pytest.raises(ValueError, match="unknown glyph effect field.*'slant'"):
    glyph.GlyphParams.from_mapping({"slant": 0.1})
  with pytest.raises(ValueError, match="probability"):
    glyph.GlyphParams(weight_prob=1.5)
  with pytest.raises(ValueError, match="low <= high"):
    glyph.GlyphParams(width_range=(1.2, 0.8))
  with pytest.raises(ValueError, match="positive"):
    glyph.GlyphParams(width_range=(0.0, 0.8))
