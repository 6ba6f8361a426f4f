"""Tests of image preprocessing: grayscale conversion (transparency, EXIF), resizing."""

import io

import numpy as np
import pytest
from PIL import Image

from crnn_jax import inference
from crnn_jax.data import preprocess
from crnn_jax.data import records


def _text_mask(height=20, width=50):
  mask = np.zeros((height, width), bool)
  mask[5:15, 10:14] = True  # A bar of "ink".
  mask[5:15, 30:34] = True
  return mask


def _rgba(ink_rgb, mask):
  rgba = np.zeros(mask.shape + (4,), np.uint8)
  rgba[mask, :3] = ink_rgb
  rgba[mask, 3] = 255
  return rgba  # Transparent (and black) elsewhere.


@pytest.mark.parametrize("ink,background", [((0, 0, 0), 255), ((255, 255, 255), 0),
                                            ((200, 30, 30), 255)])
def test_transparent_images_are_composited_not_dropped(ink, background):
  mask = _text_mask()
  rgba = _rgba(ink, mask)
  expected_ink = round(0.299 * ink[0] + 0.587 * ink[1] + 0.114 * ink[2])
  for image in (rgba, Image.fromarray(rgba, "RGBA"),
                Image.fromarray(rgba, "RGBA").convert("LA")):
    gray = preprocess.to_grayscale(image)
    assert gray.shape == mask.shape and gray.dtype == np.uint8
    assert abs(int(np.median(gray[~mask])) - background) <= 1, type(image)
    assert abs(int(np.median(gray[mask])) - expected_ink) <= 1, type(image)


def test_palette_transparency_and_two_channel_arrays():
  mask = _text_mask()
  palette = Image.fromarray(mask.astype(np.uint8), "P")
  palette.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)  # Index 0 and 1 both black...
  palette.info["transparency"] = 0  # ...but index 0 is transparent.
  gray = preprocess.to_grayscale(palette)
  assert (gray[~mask] == 255).all() and (gray[mask] == 0).all()
  la = np.stack([np.zeros(mask.shape, np.uint8), mask.astype(np.uint8) * 255], -1)
  gray = preprocess.to_grayscale(la)
  assert (gray[~mask] == 255).all() and (gray[mask] == 0).all()
  floats = la.astype(np.float32) / 255.0  # Floats in [0, 1], alpha too.
  np.testing.assert_array_equal(preprocess.to_grayscale(floats), gray)


def test_opaque_images_are_unchanged():
  rgb = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
  expected = np.asarray(Image.fromarray(rgb).convert("L"))
  np.testing.assert_allclose(preprocess.to_grayscale(rgb).astype(int), expected, atol=1)
  rgba = np.concatenate([rgb, np.full((8, 9, 1), 255, np.uint8)], -1)
  np.testing.assert_array_equal(preprocess.to_grayscale(rgba), preprocess.to_grayscale(rgb))
  dark = np.ones((4, 4, 3), np.uint8)  # A uint8 image is never rescaled, however dark.
  assert (preprocess.to_grayscale(dark) == 1).all()


def _rotated_jpeg(path):
  """A wide image stored rotated, with the EXIF tag that puts it upright (orientation 6)."""
  upright = np.full((20, 60), 255, np.uint8)
  upright[:, :20] = 0  # Dark on the left when upright.
  stored = Image.fromarray(upright).rotate(90, expand=True)  # 60 x 20, as a phone stores it.
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
  stored.save(path, format="JPEG", exif=exif, quality=95)
  return upright


def test_exif_orientation_is_applied_everywhere_images_enter(tmp_path):
  path = tmp_path / "phone.jpg"
  upright = _rotated_jpeg(path)
  for gray in (inference.load_image(path),
               records.decode_image(path.read_bytes()),
               preprocess.to_grayscale(Image.open(path))):
    assert gray.shape == upright.shape
    assert gray[:, :15].mean() < 60 and gray[:, 25:].mean() > 200


def test_transparent_png_bytes_in_datasets(tmp_path):
  mask = _text_mask()
  buffer = io.BytesIO()
  Image.fromarray(_rgba((0, 0, 0), mask), "RGBA").save(buffer, format="PNG")
  gray = records.decode_image(buffer.getvalue())
  assert (gray[~mask] == 255).all() and (gray[mask] == 0).all()
