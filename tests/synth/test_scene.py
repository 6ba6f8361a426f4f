"""Tests of the 'scene' renderer: colour word crops over photographs and textures."""

import cv2
import numpy as np
import pytest
from PIL import Image

from crnn_jax.synth import fonts
from crnn_jax.data import preprocess
from crnn_jax.synth import params as params_lib
from crnn_jax.synth import scene
from crnn_jax.synth.renderer import Streams


@pytest.fixture(scope="module")
def font_paths():
  return [str(p) for p in fonts.discover_fonts()[:12]]


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
  """Two 'photographs': smooth colour fields with a known mean colour."""
  root = tmp_path_factory.mktemp("photos")
  ys, xs = np.mgrid[0:200, 0:300]
  red = np.stack([200 + 40 * np.sin(xs / 9.0), 30 + 0 * xs, 40 + 20 * np.cos(ys / 7.0)], -1)
  Image.fromarray(red.clip(0, 255).astype(np.uint8)).save(root / "red.jpg")
  green = np.zeros((120, 160, 3), np.uint8)
  green[..., 1] = 180
  Image.fromarray(green).save(root / "green.png")
  return root


def _render(text, font, seed, **kwargs):
  return scene.render_scene(text, font, Streams(seed, 0), **kwargs)


def test_images_are_rgb_at_varied_heights(font_paths):
  heights = set()
  for seed in range(40):
    image = _render("Market", font_paths[seed % len(font_paths)], seed)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert 12 <= image.shape[0] <= 64 and image.shape[1] >= 2
    heights.add(image.shape[0])
  assert len(heights) > 10  # Low resolution: heights from 12 to 64 pixels.


def test_same_seed_same_image_different_seed_different(font_paths):
  a = _render("HOTEL", font_paths[0], 7)
  np.testing.assert_array_equal(a, _render("HOTEL", font_paths[0], 7))
  assert not np.array_equal(a, _render("HOTEL", font_paths[0], 8)[:a.shape[0], :a.shape[1]])


def test_colour_and_both_polarities(font_paths):
  """Images are coloured, and text is darker than its background in some, lighter in others."""
  coloured = darker = lighter = 0
  params = scene.SceneParams(blur_prob=0, motion_blur_prob=0, defocus_prob=0, jpeg_prob=0,
                             noise_sigma=(0, 0), low_resolution_prob=0, perspective_prob=0,
                             curve_prob=0, neighbour_prob=0, border_prob=0, shadow_prob=0,
                             extrude_prob=0, lighting_prob=0, margin_y=(0.2, 0.3))
  for seed in range(60):
    image = _render("WORD", font_paths[seed % len(font_paths)], seed, params=params)
    spread = image.astype(int).max(axis=2) - image.astype(int).min(axis=2)
    coloured += spread.mean() > 20
    gray = preprocess.to_grayscale(image).astype(float)
    edge = np.concatenate([gray[0], gray[-1]]).mean()  # Top and bottom rows: background.
    middle = gray[gray.shape[0] // 2]
    darker += middle.min() < edge - 30
    lighter += middle.max() > edge + 30
  assert coloured >= 15 and darker >= 10 and lighter >= 10, (coloured, darker, lighter)


def test_photographs_are_used_as_backgrounds(font_paths, photo_dir):
  from crnn_jax.synth import backgrounds  # pylint: disable=import-outside-toplevel
  images = backgrounds.discover_backgrounds([photo_dir], builtin=False)
  assert [p.rsplit("/", 1)[-1] for p in images] == ["green.png", "red.jpg"]
  params = scene.SceneParams(photo_prob=1.0, photo_fade_prob=0.0, lighting_prob=0,
                             jpeg_prob=0, noise_sigma=(0, 0))
  reds = greens = 0
  for seed in range(30):
    image = _render("a", font_paths[0], seed, backgrounds=images, params=params)
    corner = image[:2, :2].reshape(-1, 3).astype(int).mean(0)  # Mostly background.
    reds += corner[0] > 120 and corner[1] < 100
    greens += corner[1] > 120 and corner[0] < 100
  assert reds >= 5 and greens >= 5, (reds, greens)


def test_text_colour_meets_the_contrast_asked():
  rng = np.random.default_rng(0)
  params = scene.SceneParams(low_contrast_prob=0.0, contrast=(80.0, 90.0))
  for background in (0.0, 60.0, 128.0, 200.0, 255.0):
    for _ in range(20):
      colour = scene.text_colour(rng, background, params)
      assert colour.shape == (3,) and (0 <= colour).all() and (colour <= 255).all()
      assert abs(float(scene.luma(colour)) - background) >= 79, (background, colour)


def test_colour_with_luma_hits_the_target():
  rng = np.random.default_rng(1)
  for target in list(np.linspace(0, 255, 18)) * 5:
    colour = scene.colour_with_luma(rng, target)
    assert abs(float(scene.luma(colour)) - target) < 0.5


def test_measured_contrast():
  image = np.full((10, 20, 3), 200.0, np.float32)
  text = np.zeros((10, 20), np.float32)
  text[3:7, 5:15] = 1.0
  image[text > 0] = 50.0
  box = np.ones((10, 20), np.float32)
  assert scene.measured_contrast(image, text, box) == pytest.approx(150.0)
  assert scene.measured_contrast(image, np.zeros_like(text), box) == 255.0


def test_invisible_words_are_redrawn_at_full_contrast(font_paths):
  # Contrast 0 everywhere: without the guard every word would vanish into its background.
  params = scene.SceneParams(low_contrast_prob=1.0, low_contrast=(0.0, 0.0), photo_prob=0.0,
                             flat_prob=1.0, border_prob=0, shadow_prob=0, extrude_prob=0,
                             lighting_prob=0, blur_prob=0, motion_blur_prob=0, defocus_prob=0,
                             jpeg_prob=0, noise_sigma=(0, 0), neighbour_prob=0)
  for seed in range(10):
    gray = preprocess.to_grayscale(_render("HELLO", font_paths[seed], seed, params=params))
    assert int(gray.max()) - int(gray.min()) >= 60, seed


def test_word_box_keeps_the_case_height_cue(font_paths):
  """'o' and 'O' give images of the same height-to-ink ratio class: the box spans the capitals."""
  params = scene.SceneParams(perspective_prob=0, curve_prob=0, margin_y=(0.0, 0.0),
                             margin_x=(0.0, 0.0), low_resolution_prob=0,
                             output_height=(48, 48), neighbour_prob=0, weight_prob=0,
                             blur_prob=0, motion_blur_prob=0, defocus_prob=0, jpeg_prob=0,
                             noise_sigma=(0, 0), lighting_prob=0, border_prob=0,
                             shadow_prob=0, extrude_prob=0, photo_prob=0, flat_prob=1.0,
                             size_range=(1.0, 1.0))
  font = fonts.discover_fonts()[0]
  small, capital = (_render(t, str(font), 3, params=params) for t in "oO")
  def ink_rows(image):
    gray = preprocess.to_grayscale(image).astype(int)
    background = np.median(gray[:, 0])
    return int((np.abs(gray - background) > 40).any(axis=1).sum())
  assert ink_rows(capital) >= 0.8 * 48
  assert ink_rows(small) <= 0.8 * ink_rows(capital)


def test_empty_text_is_an_error(font_paths):
  with pytest.raises(ValueError, match="empty"):
    _render("", font_paths[0], 0)


_FLAT = dict(photo_prob=0.0, flat_prob=1.0, lighting_prob=0.0, blur_prob=0.0,
             motion_blur_prob=0.0, defocus_prob=0.0, jpeg_prob=0.0, noise_sigma=(0.0, 0.0),
             low_resolution_prob=0.0, multiply_prob=0.0, textured_fill_prob=0.0,
             border_prob=0.0, shadow_prob=0.0, extrude_prob=0.0, neighbour_prob=0.0,
             low_contrast_prob=0.0)


def test_bevel_shades_the_ink_and_nothing_else(font_paths):
  # Everything drawn before the bevel is the same at one seed; fixed height, no degradations.
  plain = params_lib.scene_params(dict(_FLAT, output_height=(32, 32)))
  bevelled = params_lib.scene_params(dict(_FLAT, output_height=(32, 32), bevel_prob=1.0))
  for seed in range(4):
    a = _render("HOTEL", font_paths[0], seed, params=plain).astype(int)
    b = _render("HOTEL", font_paths[0], seed, params=bevelled).astype(int)
    assert a.shape == b.shape
    diff = preprocess.to_grayscale(b.astype(np.uint8)).astype(int) - preprocess.to_grayscale(
        a.astype(np.uint8)).astype(int)
    ink = preprocess.to_grayscale(a.astype(np.uint8)).astype(int)
    background = np.median(np.concatenate([ink[0], ink[-1]]))
    far_from_ink = ink == background
    assert np.abs(diff[far_from_ink]).max() <= 4  # The background barely moves (faint edges).
    changed = diff[np.abs(diff) > 3]
    assert changed.size > 50 and (changed > 10).any() and (changed < -10).any(), seed


def test_bevel_off_keeps_the_records_of_earlier_configs(font_paths):
  # With bevel_prob 0 no random number is drawn for it: the images are those of the defaults.
  for seed in range(3):
    np.testing.assert_array_equal(
        _render("Main St", font_paths[1], seed),
        _render("Main St", font_paths[1], seed, params=params_lib.scene_params({"bevel_prob": 0.0})))


def test_hollow_letters_keep_the_outline_and_show_the_surface_inside(font_paths):
  # Same seed, same geometry and colours: only the glyphs' insides change. Thin outlines
  # (2 px at the drawn size) around DejaVu Sans Bold's thick strokes: eroding the pixels far
  # from the flat background keeps the filled strokes' cores and removes the outlines.
  bold = next(p for p in fonts.discover_fonts() if p.name == "DejaVuSans-Bold.ttf")
  outlined = dict(_FLAT, border_prob=1.0, border_width=(0.05, 0.05), output_height=(64, 64),
                  weight_prob=0.0, size_range=(1.0, 1.0))
  inked, cores = {}, {}
  for hollow_prob in (0.0, 1.0):
    params = params_lib.scene_params(dict(outlined, hollow_prob=hollow_prob))
    inked[hollow_prob] = cores[hollow_prob] = 0
    for seed in range(20):
      gray = preprocess.to_grayscale(_render("HOTEL", bold, seed, font_size=40, params=params))
      background = np.bincount(gray.ravel()).argmax()
      far = (np.abs(gray.astype(int) - int(background)) > 30).astype(np.uint8)
      inked[hollow_prob] += int(far.sum())
      cores[hollow_prob] += int(cv2.erode(far, np.ones((5, 5), np.uint8)).sum())
  assert cores[1.0] < 0.4 * cores[0.0], cores
  assert inked[1.0] > 0.4 * inked[0.0], inked  # The outlines are drawn, at contrast.


def test_hollow_letters_draw_no_random_number_of_their_own(font_paths):
  # Without borders, hollow_prob changes nothing: earlier configs keep their records.
  for seed in range(3):
    np.testing.assert_array_equal(
        _render("Main St", font_paths[1], seed, params=params_lib.scene_params({"border_prob": 0.0})),
        _render("Main St", font_paths[1], seed,
                params=params_lib.scene_params({"border_prob": 0.0, "hollow_prob": 1.0})))


def test_inline_line_lies_inside_thick_strokes_and_skips_thin_ones():
  # pylint: disable=protected-access
  params = params_lib.scene_params({"inline_band": (0.4, 0.6)})
  bar = np.zeros((60, 120), np.float32)
  bar[10:50, 10:110] = 1.0  # A stroke 40 px thick: half-width 20 (90th percentile ~17).
  line = scene._inline(np.random.default_rng(0), bar, params)
  assert line is not None and line.shape == bar.shape
  assert line[bar == 0].max() == 0  # Nothing outside the ink,
  assert line[10:14].max() == 0 and line[46:50].max() == 0  # nor at its edges,
  assert line[:, 58:62].max() > 0.7  # and a line across the stroke's half-width band.
  assert line[30, 58:62].max() == 0  # The centre line itself is not in a (0.4, 0.6) band.
  thin = np.zeros((60, 120), np.float32)
  thin[28:31, 10:110] = 1.0  # 3 px: no room for a visible line.
  assert scene._inline(np.random.default_rng(0), thin, params) is None


def test_inline_letters_change_only_the_strokes_insides(font_paths, monkeypatch):
  # The same draws with the line's coverage zeroed: the difference is the line alone.
  bold = next(p for p in fonts.discover_fonts() if p.name == "DejaVuSans-Bold.ttf")
  params = params_lib.scene_params(dict(_FLAT, inline_prob=1.0, output_height=(64, 64),
                                   weight_prob=0.0, size_range=(1.0, 1.0), perspective_prob=0.0,
                                   curve_prob=0.0))
  lined = [preprocess.to_grayscale(_render("HOTEL", bold, seed, font_size=48, params=params))
           for seed in range(8)]
  original = scene._inline  # pylint: disable=protected-access

  def no_line(*args):  # The same random draws, zero coverage.
    line = original(*args)
    return None if line is None else 0 * line

  monkeypatch.setattr(scene, "_inline", no_line)
  changed_total = 0
  for seed, with_line in enumerate(lined):
    without = preprocess.to_grayscale(_render("HOTEL", bold, seed, font_size=48, params=params))
    diff = np.abs(with_line.astype(int) - without.astype(int)) > 20
    background = np.bincount(without.ravel()).argmax()
    ink = (np.abs(without.astype(int) - int(background)) > 20).astype(np.uint8)
    near = cv2.dilate(ink, np.ones((3, 3), np.uint8)) > 0
    inside = cv2.erode(ink, np.ones((3, 3), np.uint8)) > 0
    assert not (diff & ~near).any(), seed  # Nothing on the background,
    assert (diff & inside).sum() >= 0.8 * diff.sum(), seed  # mostly inside the strokes,
    changed_total += int(diff.sum())
  assert changed_total > 200  # and a visible line in most words.


def test_wide_tracking_sets_the_letter_gaps(font_paths):
  spaced = dict(_FLAT, spacing_prob=1.0, wide_spacing_prob=1.0, perspective_prob=0.0,
                curve_prob=0.0, margin_x=(0.0, 0.0), margin_y=(0.0, 0.0), size_range=(1.0, 1.0),
                weight_prob=0.0)
  narrow = params_lib.scene_params(dict(spaced, wide_tracking=(0.2, 0.2)))
  wide = params_lib.scene_params(dict(spaced, wide_tracking=(1.0, 1.0)))
  for seed in range(3):
    a = _render("GRAND", font_paths[0], seed, params=narrow)
    b = _render("GRAND", font_paths[0], seed, params=wide)
    # 4 gaps of 0.8 em more at the same height: the aspect ratio grows by about 3.2 em / h.
    assert b.shape[1] / b.shape[0] > a.shape[1] / a.shape[0] + 1.5, (a.shape, b.shape)


def test_scene_params_overrides_are_checked():
  params = params_lib.scene_params({"bevel_prob": 0.2, "wide_tracking": [0.1, 1.0]})
  assert params.bevel_prob == 0.2 and params.wide_tracking == (0.1, 1.0)
  assert params.blur_prob == scene.DEFAULT_PARAMS.blur_prob
  assert params_lib.scene_params(None) == scene.DEFAULT_PARAMS
  with pytest.raises(ValueError, match="unknown scene parameter.*bevel_probability"):
    params_lib.scene_params({"bevel_probability": 0.2})
  with pytest.raises(ValueError, match="wide_tracking takes 2 values"):
    params_lib.scene_params({"wide_tracking": (0.1, 0.5, 0.9)})


def test_bevel_of_a_one_pixel_crop_leaves_the_ink():
  # A degenerate warp can leave a crop one pixel high; np.gradient cannot take its slope.
  for shape in ((1, 9), (9, 1)):
    ink = np.full(shape + (3,), 100.0, np.float32)
    out = scene._bevel(np.random.default_rng(0), ink, np.ones(shape, np.float32), 40)  # pylint: disable=protected-access
    np.testing.assert_array_equal(out, ink)


def test_least_arcs_and_tilts_force_every_word_irregular(font_paths, monkeypatch):
  """curve_min and rotation_min_deg (the irregular test set's) bound the arc and the tilt from
  below. At 0, their defaults, they change no draw (test_golden_renderer.py's records)."""
  amounts = []
  real_curve = scene._curve  # pylint: disable=protected-access

  def curve(stack, rng, box, origin, size, amount):
    amounts.append(amount)
    return real_curve(stack, rng, box, origin, size, amount)

  monkeypatch.setattr(scene, "_curve", curve)
  bent = params_lib.scene_params({"curve_prob": 1.0, "curve_min": 0.3, "curve_range": 0.7})
  for seed in range(30):
    _render("Harbour", font_paths[0], seed, params=bent)
  assert len(amounts) == 30 and all(0.3 <= abs(a) <= 0.7 for a in amounts), amounts
  assert min(amounts) < 0 < max(amounts)  # Arcs of both directions.

  # A pure rotation (no shear, no corner jitter): the map's angle is at least the least tilt.
  box = np.array([[0, 0], [100, 0], [100, 20], [0, 20]], np.float32)
  tilted = params_lib.scene_params({"rotation_deg": 10.0, "rotation_min_deg": 8.0,
                                    "shear_range": 0.0, "corner_jitter": 0.0})
  angles = []
  for seed in range(30):
    matrix = scene._homography(np.random.default_rng(seed), box, 20.0, tilted)  # pylint: disable=protected-access
    angles.append(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
  assert all(8.0 - 1e-6 <= abs(a) <= 28.0 + 1e-6 for a in angles), angles
  assert min(angles) < 0 < max(angles)
