"""Tests of background discovery and loading for the scene renderer."""

import numpy as np
import pytest
from PIL import Image

from crnn_jax.synth import backgrounds


def test_user_directory_is_searched_recursively_and_sorted(tmp_path):
  (tmp_path / "sub").mkdir()
  for name in ("b.png", "sub/a.jpg", "notes.txt"):
    path = tmp_path / name
    if name.endswith("txt"):
      path.write_text("not an image")
    else:
      Image.new("RGB", (80, 70), (10, 20, 30)).save(path)
  found = backgrounds.discover_backgrounds([tmp_path], builtin=False)
  assert len(found) == 2 and found == sorted(found)
  assert {p.rsplit("/", 1)[-1] for p in found} == {"b.png", "a.jpg"}
  assert backgrounds.discover_backgrounds("", builtin=False) == []


def test_missing_or_empty_directories_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    backgrounds.discover_backgrounds([tmp_path / "nope"], builtin=False)
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="holds no images"):
    backgrounds.discover_backgrounds([tmp_path / "empty"], builtin=False)


def test_loading_shrinks_flattens_and_skips_bad_files(tmp_path):
  big = tmp_path / "big.png"
  Image.new("RGBA", (2000, 1000), (255, 0, 0, 0)).save(big)  # Transparent: flattened on gray.
  image = backgrounds.load_background(str(big))
  assert image.shape == (backgrounds.MAX_SIDE // 2, backgrounds.MAX_SIDE, 3)
  assert image.dtype == np.uint8 and (image == 128).all()
  tiny = tmp_path / "icon.png"
  Image.new("RGB", (16, 16)).save(tiny)
  assert backgrounds.load_background(str(tiny)) is None
  broken = tmp_path / "broken.jpg"
  broken.write_bytes(b"\xff\xd8 not really a jpeg")
  assert backgrounds.load_background(str(broken)) is None


def test_builtin_pool_lists_only_images():
  found = backgrounds.discover_backgrounds()
  assert found == sorted(found)
  assert all(p.lower().endswith(backgrounds.IMAGE_SUFFIXES) for p in found)
  assert not any("/lens" in p or "/effect" in p for p in found)
