"""Fonts for the synthetic renderer: discovery, glyph coverage and family names.

The built-in pool is made of fonts shipped by installed PyPI packages: the DejaVu family of
matplotlib and the `font_*` packages listed in `FONT_PACKAGES` (each keeps its files in a
`files/` directory). Users can add a directory of .ttf/.otf files. Coverage and family names
are read from the font files with fontTools (a matplotlib dependency).

Every function caches its result: discovery runs once in each data-loader worker process.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from typing import Iterable, Sequence

from fontTools.ttLib import TTFont

# PyPI font packages whose `files/` directory is added to the pool when they are installed.
FONT_PACKAGES = (
    "font_roboto",
    "font_source_sans_pro",
    "font_source_serif_pro",
    "font_lato",
    "font_caladea",
    "font_manrope",
    "font_hanken_grotesk",
    "font_fjallaone",
    "font_rhd",
)

# The 'extended' pool adds these text faces that matplotlib also ships: STIX General (a Times
# style serif) and Computer Modern Roman, Sans, Bold and Typewriter (a slab-serif monospace, the
# kind of face the standard pool lacks).
EXTENDED_MATPLOTLIB_FONTS = (
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmss10.ttf", "cmb10.ttf", "cmtt10.ttf",
)
POOLS = ("standard", "extended")

FONT_SUFFIXES = (".ttf", ".otf")

# Among two files of the same style (e.g. SourceSansPro-Bold.otf and .ttf) keep the first suffix.
_SUFFIX_PREFERENCE = {".ttf": 0, ".otf": 1}


def _is_font_file(path: pathlib.Path) -> bool:
  return path.is_file() and path.suffix.lower() in FONT_SUFFIXES


def _is_static_font(path: pathlib.Path) -> bool:
  """False for variable fonts (their default instance duplicates a static style)."""
  return "variablefont" not in path.stem.lower()


def _package_dir(name: str) -> pathlib.Path | None:
  """The directory of an installed package, or None when it is not installed."""
  try:
    spec = importlib.util.find_spec(name)
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(next(iter(spec.submodule_search_locations)))


def _matplotlib_fonts(pool: str = "standard") -> list[pathlib.Path]:
  """The text faces of matplotlib's DejaVu family (not its `*Display` fonts, which only hold
  math symbols), plus for the 'extended' pool the faces of EXTENDED_MATPLOTLIB_FONTS."""
  package = _package_dir("matplotlib")
  if package is None:
    return []
  directory = package / "mpl-data" / "fonts" / "ttf"
  if not directory.is_dir():
    return []
  extra = EXTENDED_MATPLOTLIB_FONTS if pool == "extended" else ()
  return [
      path
      for path in directory.iterdir()
      if _is_font_file(path) and (
          (path.name.startswith("DejaVu") and "Display" not in path.stem) or path.name in extra)
  ]


def _package_fonts(name: str) -> list[pathlib.Path]:
  """The static fonts in `<package>/files`, one file per style."""
  package = _package_dir(name)
  if package is None or not (package / "files").is_dir():
    return []
  by_style: dict[str, pathlib.Path] = {}
  for path in sorted((package / "files").iterdir()):
    if not (_is_font_file(path) and _is_static_font(path)):
      continue
    kept = by_style.get(path.stem)
    if kept is None or (
        _SUFFIX_PREFERENCE[path.suffix.lower()] < _SUFFIX_PREFERENCE[kept.suffix.lower()]
    ):
      by_style[path.stem] = path
  return list(by_style.values())


def fonts_in_directory(directory: str | pathlib.Path) -> list[pathlib.Path]:
  """Every font file under a user directory (recursive), sorted.

  Raises:
    FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
    ValueError: it holds no .ttf/.otf file.
  """
  directory = pathlib.Path(directory).expanduser()
  if not directory.exists():
    raise FileNotFoundError(f"fonts directory {str(directory)!r} does not exist")
  if not directory.is_dir():
    raise NotADirectoryError(f"fonts directory {str(directory)!r} is not a directory")
  fonts = sorted(path for path in directory.rglob("*") if _is_font_file(path))
  if not fonts:
    raise ValueError(
        f"fonts directory {str(directory)!r} holds no font files "
        f"({', '.join(FONT_SUFFIXES)})"
    )
  return fonts


@functools.lru_cache(maxsize=None)
def _discover(extra_dirs: tuple[str, ...], pool: str) -> tuple[pathlib.Path, ...]:
  fonts = _matplotlib_fonts(pool)
  for name in FONT_PACKAGES:
    fonts.extend(_package_fonts(name))
  for directory in extra_dirs:
    fonts.extend(fonts_in_directory(directory))
  return tuple(sorted({path.resolve() for path in fonts}))


def discover_fonts(extra_dirs: Sequence[str | pathlib.Path] = (),
                   pool: str = "standard") -> list[pathlib.Path]:
  """All fonts of the pool: the packaged ones plus every font file under `extra_dirs`.

  Args:
    extra_dirs: directories searched recursively for .ttf/.otf files. Empty strings are
      ignored (the config's "no extra fonts").
    pool: 'standard' (DejaVu and the FONT_PACKAGES) or 'extended' (also matplotlib's STIX and
      Computer Modern text faces).

  Returns:
    Absolute font paths in sorted (deterministic) order, without duplicates.

  Raises:
    FileNotFoundError: an extra directory does not exist.
    ValueError: an extra directory holds no font file, or an unknown pool.
  """
  if pool not in POOLS:
    raise ValueError(f"font pool must be one of {POOLS}, got {pool!r}")
  if isinstance(extra_dirs, (str, pathlib.Path)):
    extra_dirs = (extra_dirs,)
  key = tuple(str(pathlib.Path(d).expanduser()) for d in extra_dirs if str(d))
  return list(_discover(key, pool))


@functools.lru_cache(maxsize=None)
def font_codepoints(path: str | pathlib.Path) -> frozenset[int]:
  """The code points that the font maps to a glyph other than `.notdef`.

  Args:
    path: a .ttf/.otf file.

  Returns:
    The set of Unicode code points with a real glyph.
  """
  font = TTFont(str(path), lazy=True, fontNumber=0)
  try:
    cmap = font.getBestCmap() or {}
    return frozenset(code for code, glyph in cmap.items() if glyph != ".notdef")
  finally:
    font.close()


@functools.lru_cache(maxsize=None)
def _covering(fonts: tuple[pathlib.Path, ...], codes: frozenset[int]) -> tuple[pathlib.Path, ...]:
  return tuple(path for path in fonts if codes <= font_codepoints(path))


def fonts_covering(fonts: Iterable[str | pathlib.Path], chars: Iterable[str]) -> list[pathlib.Path]:
  """The fonts that have a glyph for every character of `chars`.

  Args:
    fonts: font paths, e.g. from `discover_fonts`.
    chars: the characters to draw (a string or any iterable of characters).

  Returns:
    The covering fonts, in the order of `fonts`.
  """
  codes = frozenset(ord(c) for c in "".join(chars))
  return list(_covering(tuple(pathlib.Path(path) for path in fonts), codes))


@functools.lru_cache(maxsize=None)
def typeface_family(path: str | pathlib.Path) -> str:
  """The typeface family of a font, e.g. 'Roboto' for Roboto-BoldItalic.ttf.

  The typographic family name (name ID 16) is preferred over the legacy family name
  (name ID 1), which often includes the weight ('Lato Light').

  Args:
    path: a .ttf/.otf file.

  Returns:
    The family name; the file name stem if the font has no name table entry.
  """
  font = TTFont(str(path), lazy=True, fontNumber=0)
  try:
    name_table = font["name"] if "name" in font else None
    if name_table is not None:
      for name_id in (16, 1):
        name = name_table.getDebugName(name_id)
        if name:
          return name.strip()
    return pathlib.Path(path).stem.split("-")[0]
  finally:
    font.close()
