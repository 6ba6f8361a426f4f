"""Background images for the scene-level renderer: discovery and cached loading.

Backgrounds are photographs and textures that Debian and PyPI packages install, plus any
directory of images the user names. Nothing is downloaded. The built-in pool is read from:

  /usr/share/backgrounds        gnome-backgrounds, mate-backgrounds, ukui-wallpapers
  /usr/share/wallpapers         plasma-workspace-wallpapers (one file per image: the package
                                ships each picture at several resolutions)
  /usr/share/games/colobot/textures   colobot-common-textures (terrain, rock, metal; not its
                                lens-flare, effect or planet sprites)
  skimage/data                  scikit-image's photographs and textures (brick, grass, gravel,
                                coffee, chelsea, ...), when scikit-image is installed

`apt-get install gnome-backgrounds mate-backgrounds ukui-wallpapers plasma-workspace-wallpapers
colobot-common-textures` brings the Debian part. With no image found the renderer still draws
its procedural backgrounds (flat, gradients, smooth noise, stripes).

Images are decoded on first use in each process, converted to RGB and shrunk so that their
longer side is at most `MAX_SIDE` pixels (a word crop rarely needs more), then cached.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image

from crnn_jax.synth import files as files_lib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_SIDE = 768
MIN_SIDE = 64  # Smaller images (icons, sprites) are not backgrounds.

DEBIAN_DIRS = (
    "/usr/share/backgrounds",
    "/usr/share/wallpapers",
    "/usr/share/games/colobot/textures",
)
# Colobot sprites that are not surfaces: lens flares, particle effects, planets, UI.
_EXCLUDED_PREFIXES = ("effect", "lens", "planet", "interface", "button", "text", "mouse")
# scikit-image files that are not photographs or textures (or hold text / faces / charts).
_SKIMAGE_FILES = ("astronaut.png", "brick.png", "chelsea.png", "coffee.png", "grass.png",
                  "gravel.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
                  "moon.png", "camera.png", "coins.png", "horse.png", "ihc.png", "retina.jpg")


def _is_image(path: pathlib.Path) -> bool:
  return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _skimage_dir() -> pathlib.Path | None:
  try:
    spec = importlib.util.find_spec("skimage")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(next(iter(spec.submodule_search_locations))) / "data"


def _builtin_images() -> list[pathlib.Path]:
  images: list[pathlib.Path] = []
  for root in map(pathlib.Path, DEBIAN_DIRS):
    if not root.is_dir():
      continue
    found = sorted(p for p in root.rglob("*") if _is_image(p))
    if root.name == "textures":  # colobot: top-level surfaces only.
      found = [p for p in found if p.parent == root
               and not p.name.lower().startswith(_EXCLUDED_PREFIXES)]
    if root.name == "wallpapers":  # One file per picture (sizes of one image share a folder).
      by_dir: dict[pathlib.Path, pathlib.Path] = {}
      for p in found:
        by_dir.setdefault(p.parent, p)
      found = sorted(by_dir.values())
    images.extend(found)
  skimage_dir = _skimage_dir()
  if skimage_dir is not None:
    images.extend(skimage_dir / name for name in _SKIMAGE_FILES if (skimage_dir / name).is_file())
  return images


def images_in_directory(directory: str | pathlib.Path) -> list[pathlib.Path]:
  """Every image file under a user directory (recursive), sorted.

  Raises:
    FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
    ValueError: it holds no image file.
  """
  return files_lib.files_in_directory(directory, IMAGE_SUFFIXES, kind="backgrounds",
                                      noun="images")


@functools.lru_cache(maxsize=None)
def _discover(extra_dirs: tuple[str, ...], builtin: bool) -> tuple[str, ...]:
  images = _builtin_images() if builtin else []
  for directory in extra_dirs:
    images.extend(images_in_directory(directory))
  return tuple(sorted({str(p.resolve()) for p in images}))


def discover_backgrounds(extra_dirs: Sequence[str | pathlib.Path] = (),
                         builtin: bool = True) -> list[str]:
  """Background image paths: the built-in pool (see the module docstring) and `extra_dirs`.

  Args:
    extra_dirs: directories searched recursively for images; empty strings are ignored.
    builtin: include the images installed by Debian and PyPI packages.

  Returns:
    Absolute paths in sorted (deterministic) order. It may be empty.
  """
  if isinstance(extra_dirs, (str, pathlib.Path)):
    extra_dirs = (extra_dirs,)
  key = tuple(str(pathlib.Path(d).expanduser()) for d in extra_dirs if str(d))
  return list(_discover(key, bool(builtin)))


@functools.lru_cache(maxsize=None)
def load_background(path: str) -> np.ndarray | None:
  """The image as uint8 `[H, W, 3]` RGB, longer side at most MAX_SIDE; None if unusable.

  An image that cannot be decoded or is smaller than MIN_SIDE is skipped (None), so that one
  bad file never stops training; `discover_backgrounds` lists only image suffixes.
  """
  try:
    with Image.open(path) as image:
      image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale.
      if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, (128, 128, 128, 255))
        image = Image.alpha_composite(flat, image)
      image = image.convert("RGB")
      scale = MAX_SIDE / max(image.size)
      if scale < 1:
        image = image.resize((max(1, round(image.width * scale)),
                              max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
      array = np.asarray(image, dtype=np.uint8)
  except (OSError, ValueError, Image.DecompressionBombError):
    return None
  if min(array.shape[:2]) < MIN_SIDE:
    return None
  return array
