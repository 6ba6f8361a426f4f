"""Tests of the text-line renderer."""

import numpy as np
import pytest

from crnn_jax.synth import fonts
from crnn_jax.synth import grayscale as renderer
from crnn_jax.synth.renderer import SingleStream


def _rng(seed: int) -> SingleStream:
  """Every stage drawing in turn from one generator, which calls in a row share."""
  return SingleStream(np.random.default_rng(seed))


@pytest.fixture(scope="module")
def font_paths():
  return fonts.discover_fonts()


@pytest.fixture(scope="module")
def dejavu(font_paths):
  return next(p for p in font_paths if p.name == "DejaVuSans.ttf")


def _background_level(image):
  """The most common gray level of the image border (the background)."""
  border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
  return float(np.median(border))


@pytest.mark.parametrize("augment", renderer.AUGMENT_LEVELS)
def test_every_level_draws_visible_text(augment, font_paths):
  rng = _rng(0)
  for i in range(12):
    font = font_paths[(7 * i) % len(font_paths)]
    image = renderer.render_text("Hello42", font, rng, font_size=40, augment=augment)
    assert image.dtype == np.uint8 and image.ndim == 2
    height, width = image.shape
    assert 20 <= height <= 110, image.shape
    assert width > height  # Seven characters are wider than tall.
    # Text contrasts with the background (either polarity).
    background = _background_level(image)
    darker = background - np.percentile(image, 1)
    lighter = np.percentile(image, 99) - background
    assert max(darker, lighter) >= 40, (augment, i, background, darker, lighter)


def test_none_is_black_on_white_with_margin(dejavu):
  image = renderer.render_text("Wjgy", dejavu, _rng(0), font_size=40,
                               augment="none")
  assert image.min() == 0
  border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
  assert (border == 255).all()  # Nothing touches the edge: no glyph is cropped.
  # Most of the image is white background.
  assert (image == 255).mean() > 0.5


def test_none_ignores_rng_and_scales_with_font_size(dejavu):
  a = renderer.render_text("text", dejavu, _rng(0), font_size=32, augment="none")
  b = renderer.render_text("text", dejavu, _rng(9), font_size=32, augment="none")
  np.testing.assert_array_equal(a, b)
  big = renderer.render_text("text", dejavu, _rng(0), font_size=64,
                             augment="none")
  assert 1.7 < big.shape[0] / a.shape[0] < 2.3
  assert 1.7 < big.shape[1] / a.shape[1] < 2.3


def test_line_height_does_not_depend_on_letters(dejavu):
  """Short letters get the same line box as capitals (no giant x-height after resizing)."""
  low = renderer.render_text("ace", dejavu, None, font_size=40, augment="none")
  caps = renderer.render_text("ACE", dejavu, None, font_size=40, augment="none")
  assert abs(low.shape[0] - caps.shape[0]) <= 2  # Round letters overshoot the baseline.


@pytest.mark.parametrize("augment", ["light", "strong"])
def test_same_rng_state_gives_same_image(augment, dejavu):
  a = renderer.render_text("Sample", dejavu, _rng(5), font_size=36,
                           augment=augment)
  b = renderer.render_text("Sample", dejavu, _rng(5), font_size=36,
                           augment=augment)
  np.testing.assert_array_equal(a, b)
  others = [
      renderer.render_text("Sample", dejavu, _rng(s), font_size=36,
                           augment=augment)
      for s in range(6, 10)
  ]
  assert any(o.shape != a.shape or not np.array_equal(o, a) for o in others)


def test_light_has_both_polarities_and_varied_sizes(dejavu):
  rng = _rng(1)
  dark_text = light_text = 0
  heights = set()
  for _ in range(40):
    image = renderer.render_text("Mo", dejavu, rng, font_size=40, augment="light")
    heights.add(image.shape[0])
    background = _background_level(image)
    if image.min() < background - 50:
      dark_text += 1
    if image.max() > background + 50:
      light_text += 1
  assert dark_text >= 5 and light_text >= 3, (dark_text, light_text)
  assert len(heights) >= 5


@pytest.fixture
def clean_strong(monkeypatch):
  """'strong' geometry only: no noise, blur, textures, lines or size jitter; black on white."""
  monkeypatch.setitem(
      renderer._PARAMS, "strong",
      dict(renderer._PARAMS["strong"], noise_sigma=(0.0, 0.0), blur_prob=0.0, size_jitter=0.0),
  )
  monkeypatch.setattr(renderer, "_STRAY_LINES_PROB", 0.0)
  monkeypatch.setattr(renderer, "_UNDERLINE_PROB", 0.0)
  monkeypatch.setattr(renderer, "_BACKGROUND_AMPLITUDE", (0.0, 0.0))
  monkeypatch.setattr(renderer, "_gray_levels", lambda rng, contrast, amplitude: (255.0, 0.0))


def test_strong_never_crops_glyphs(clean_strong, font_paths):
  """Rotated, sheared and spaced text keeps all its ink, away from the image border."""
  rng = _rng(3)
  texts = ["Wjgy", "fQ|", "Typography", "j", "MW", "Hq"]  # No ligatures (ffi).
  for i in range(60):
    font = font_paths[(11 * i) % len(font_paths)]
    text = texts[i % len(texts)]
    image = renderer.render_text(text, font, rng, font_size=40, augment="strong")
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    assert border.min() >= 253, (i, font.name)
    # Rotation and shear preserve area: the ink matches the untransformed rendering.
    plain = renderer.render_text(text, font, None, font_size=40, augment="none")
    ink = (255.0 - image).sum()
    plain_ink = (255.0 - plain).sum()
    assert abs(ink / plain_ink - 1) < 0.03, (i, font.name, ink / plain_ink)


def test_strong_geometry_differs_from_light(dejavu):
  """Rotation/shear and spacing change the box: strong widths vary more than light ones."""
  def widths(augment):
    rng = _rng(2)
    return [
        renderer.render_text("minimum", dejavu, rng, font_size=40, augment=augment).shape[1]
        for _ in range(30)
    ]
  assert np.std(widths("strong")) > np.std(widths("light"))


def test_bad_arguments(dejavu):
  with pytest.raises(ValueError, match="augment"):
    renderer.render_text("a", dejavu, _rng(0), font_size=40, augment="heavy")
  with pytest.raises(ValueError, match="empty"):
    renderer.render_text("", dejavu, _rng(0), font_size=40, augment="none")
