"""CJK font faces for the zh_en charset: discovery, glyph coverage, reserved and held-out families.

Faces come from the system font tree (Debian: `apt-get install fonts-noto-cjk fonts-hanazono`
puts NotoSansCJK-*.ttc, NotoSerifCJK-*.ttc and HanaMinA/B.ttf under /usr/share/fonts), from the
fonts of installed PyPI font packages (`fonts.discover_fonts`; none of those holds hanzi today)
and from user directories. A file may be a collection (.ttc/.otc) of several faces, so a face
is a `FontFace(path, index)`; Pillow opens it with `ImageFont.truetype(path, size, index=index)`
(`load_font`). A face counts as CJK when it has glyphs for at least `MIN_HANZI` of the 3,755
GB2312 level-1 characters.

Families never used (any face whose family name or file name starts with one of them, compared
without case, spaces, '-' or '_'):

  RESERVED_FAMILIES  kept for the final evaluation: AR PL (Arphic), WenQuanYi, LXGW WenKai,
                     Smiley Sans, cwTeX, BabelStone Han, also under their Chinese names;
  HELD_OUT_FAMILY    HanaMin, the project's own held-out set (`held_out_fonts()`); the training
                     pool (`discover_cjk_fonts()`) leaves it out.

Noto CJK collections hold the same code points in five regional faces (JP, KR, SC, TC, HK)
whose glyphs follow different national standards (骨, 直, 写 differ); only the `regions`
asked for are kept, mainland simplified print ('SC') by default.

A glyph missing from a face must never be drawn: `font_covers(face, text)` says whether a face
has every (non-space) character of a text, `covering_fonts(chars)` which faces do. Coverage is
read from the face's cmap with fontTools (`fonts.font_codepoints` for the first face of a file).
Every function caches its result.
"""

from __future__ import annotations

import functools
import logging
import pathlib
import re
from typing import Iterable, NamedTuple, Sequence

from fontTools.ttLib import TTCollection, TTFont

from crnn_jax.synth import fonts as fonts_lib
from crnn_jax.text import zh_charset

# Directories searched recursively for system fonts (Debian's and a local administrator's).
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
# The Debian packages that provide the faces of the training and held-out pools.
DEBIAN_PACKAGES = ("fonts-noto-cjk", "fonts-hanazono")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
COLLECTION_SUFFIXES = (".ttc", ".otc")
MIN_HANZI = 3000  # Of the 3,755 level-1 hanzi, for a face to count as a CJK face.

# Families reserved for the final evaluation: never discovered, never drawn. Matched as name
# prefixes, so 'AR PL' covers AR PL UKai / UMing / New Sung / KaitiM GB, 'WenQuanYi' covers Zen
# Hei and Micro Hei, 'LXGW WenKai' its Mono and TC faces, 'Smiley Sans' its Oblique.
RESERVED_FAMILIES = ("AR PL", "WenQuanYi", "LXGW WenKai", "Smiley Sans", "cwTeX",
                     "BabelStone Han")
# The same families under their Chinese names (name table records in Chinese) and the file
# name stems of their Debian packages (ukai.ttc, uming.ttc, wqy-zenhei.ttc, wqy-microhei.ttc).
RESERVED_ALIASES = ("文鼎", "文泉驿", "文泉驛", "霞鹜文楷", "霞鶩文楷", "得意黑", "ukai", "uming",
                    "wqy")
# The family of the project's own held-out set. Training draws Noto Sans CJK (黑体-like) and
# Noto Serif CJK (宋体-like), the two styles of most Chinese print; HanaMin (花園明朝, a Ming
# face from GlyphWiki, another designer and another foundry's proportions) tests whether a model
# reads a Ming design it has not seen. HanaMinA covers the whole zh_en charset; HanaMinB holds
# only CJK Extension B and is no CJK face by MIN_HANZI.
HELD_OUT_FAMILY = "HanaMin"
DEFAULT_REGIONS = ("SC",)
REGIONS = ("SC", "TC", "HK", "JP", "KR")
_REGION = re.compile(r"\b(SC|TC|HK|JP|KR)\b")
_FAMILY_NAME_IDS = (1, 4, 16, 21)  # Family, full name, typographic family, WWS family.


class FontFace(NamedTuple):
  """One face of a font file: its absolute path and its index in a collection (0 otherwise)."""
  path: str
  index: int = 0


def _normalized(name: str) -> str:
  return re.sub(r"[\s\-_]+", "", name).casefold()


def _has_prefix(name: str, prefixes: Iterable[str]) -> bool:
  name = _normalized(name)
  return any(name.startswith(_normalized(prefix)) for prefix in prefixes)


def is_reserved_family(name: str) -> bool:
  """Whether a family (or file) name belongs to RESERVED_FAMILIES (or their aliases)."""
  return _has_prefix(name, RESERVED_FAMILIES + RESERVED_ALIASES)


def is_held_out_family(name: str) -> bool:
  """Whether a family (or file) name belongs to HELD_OUT_FAMILY."""
  return _has_prefix(name, (HELD_OUT_FAMILY,))


@functools.lru_cache(maxsize=None)
def font_faces(path: str | pathlib.Path) -> tuple[FontFace, ...]:
  """The faces of a font file: one per member of a .ttc/.otc collection, else one.

  Raises:
    FileNotFoundError: there is no such file.
    ValueError: the file's suffix is not one of FONT_SUFFIXES.
  """
  path = pathlib.Path(path).expanduser().resolve()
  if not path.is_file():
    raise FileNotFoundError(f"font file {path} does not exist")
  suffix = path.suffix.lower()
  if suffix not in FONT_SUFFIXES:
    raise ValueError(f"{path} is not a font file (suffix not one of {FONT_SUFFIXES})")
  if suffix not in COLLECTION_SUFFIXES:
    return (FontFace(str(path), 0),)
  collection = TTCollection(str(path), lazy=True)
  try:
    return tuple(FontFace(str(path), i) for i in range(len(collection.fonts)))
  finally:
    collection.close()


def _open(face: FontFace) -> TTFont:
  return TTFont(face.path, fontNumber=face.index, lazy=True)


@functools.lru_cache(maxsize=None)
def face_codepoints(face: FontFace) -> frozenset[int]:
  """The code points that the face maps to a glyph other than `.notdef`."""
  return fonts_lib.font_codepoints(face.path, face.index)


@functools.lru_cache(maxsize=None)
def face_names(face: FontFace) -> tuple[str, ...]:
  """Every family and full name of the face, in every language of its name table."""
  font = _open(face)
  try:
    if "name" not in font:
      return ()
    names = []
    for record in font["name"].names:
      if record.nameID in _FAMILY_NAME_IDS:
        try:
          names.append(record.toUnicode().strip())
        except UnicodeDecodeError:
          continue
    return tuple(dict.fromkeys(name for name in names if name))
  finally:
    font.close()


@functools.lru_cache(maxsize=None)
def face_family(face: FontFace) -> str:
  """The face's family name in English, e.g. 'Noto Sans CJK SC'; the file stem if it has none.

  The typographic family (name ID 16) is preferred over the legacy family (name ID 1).
  """
  font = _open(face)
  try:
    if "name" in font:
      for name_id in (16, 1):
        name = font["name"].getDebugName(name_id)
        if name:
          return name.strip()
  finally:
    font.close()
  return pathlib.Path(face.path).stem.split("-")[0]


def is_reserved_face(face: FontFace) -> bool:
  """Whether any name of the face, or its file name, is of a reserved family."""
  names = face_names(face) + (face_family(face), pathlib.Path(face.path).stem)
  return any(is_reserved_family(name) for name in names)


def is_held_out_face(face: FontFace) -> bool:
  """Whether any name of the face, or its file name, is of the held-out family."""
  names = face_names(face) + (face_family(face), pathlib.Path(face.path).stem)
  return any(is_held_out_family(name) for name in names)


def face_region(face: FontFace) -> str | None:
  """The region code of a regional face ('Noto Sans CJK SC' -> 'SC'), else None."""
  match = _REGION.search(face_family(face))
  return match.group(1) if match else None


def coverage(face: FontFace, chars: str = zh_charset.ZH_EN_CHARS) -> int:
  """How many of the distinct non-space characters of `chars` the face has a glyph for."""
  codes = face_codepoints(face)
  return sum(ord(c) in codes for c in set(chars) if not c.isspace())


def font_covers(face: FontFace, text: str) -> bool:
  """Whether the face has a glyph for every character of `text` (white space aside: the
  renderer advances over it, and fonts map the space to an empty glyph or none)."""
  codes = face_codepoints(FontFace(*face))
  return all(ord(c) in codes for c in text if not c.isspace())


def load_font(face: FontFace, size: int):
  """The face as a Pillow font of `size` pixels (ImageFont.truetype with the face index)."""
  from PIL import ImageFont  # pylint: disable=import-outside-toplevel

  return ImageFont.truetype(face.path, size, index=face.index)


def _font_files(directory: pathlib.Path) -> list[pathlib.Path]:
  if not directory.is_dir():
    return []
  return [path for path in directory.rglob("*")
          if path.is_file() and path.suffix.lower() in FONT_SUFFIXES]


@functools.lru_cache(maxsize=None)
def _all_cjk_faces(dirs: tuple[str, ...], min_hanzi: int) -> tuple[FontFace, ...]:
  """Every CJK face under `dirs` and in the packaged pool, reserved families excluded, sorted."""
  files = {path.resolve() for directory in dirs for path in _font_files(pathlib.Path(directory))}
  files |= set(fonts_lib.discover_fonts())  # PyPI font packages and matplotlib.
  faces = []
  for path in sorted(files):
    for face in font_faces(path):
      if is_reserved_face(face):
        continue
      if coverage(face, zh_charset.LEVEL1_CHARS) >= min_hanzi and renders(face):
        faces.append(face)
  return tuple(faces)


# Drawn by `renders`: hanzi every pool face has, and Latin letters and digits.
_RENDER_PROBE = "的一是国永中Ag9"


@functools.lru_cache(maxsize=None)
def renders(face: FontFace) -> bool:
  """Whether FreeType draws the face: some files (three of Debian's Ume Gothic S faces) map the
  glyphs but fail on every one of them ('invalid opcode' in their hinting programs), so the
  pool leaves them out, with a warning, rather than failing on each line drawn in them."""
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel

  codes = face_codepoints(face)
  probe = "".join(c for c in _RENDER_PROBE if ord(c) in codes)
  try:
    draw = ImageDraw.Draw(Image.new("L", (400, 64)))
    draw.text((4, 4), probe, font=load_font(face, 32), fill=255)
  except OSError as e:
    logging.warning("font %s#%d is left out of the pool: FreeType cannot draw it (%s)",
                    face.path, face.index, e)
    return False
  return True


def discover_cjk_fonts(extra_dirs: Sequence[str | pathlib.Path] = (), *,
                       regions: Sequence[str] = DEFAULT_REGIONS, held_out: bool = False,
                       system_dirs: Sequence[str | pathlib.Path] = SYSTEM_FONT_DIRS,
                       min_hanzi: int = MIN_HANZI) -> list[FontFace]:
  """The CJK faces of the training pool (or, with `held_out`, of the held-out family).

  Args:
    extra_dirs: user directories searched recursively for .ttf/.otf/.ttc/.otc files.
    regions: the regional faces kept of collections like Noto CJK (of REGIONS); faces without
      a region in their family name are always kept.
    held_out: False: every face but the HELD_OUT_FAMILY's; True: only the HELD_OUT_FAMILY's.
    system_dirs: the system font directories searched (missing ones are skipped).
    min_hanzi: the fewest level-1 hanzi a face must have (0 keeps every face).

  Returns:
    FontFace tuples sorted by (path, index). Reserved families are never among them.

  Raises:
    FileNotFoundError: an extra directory does not exist.
    ValueError: an unknown region.
  """
  unknown = sorted(set(regions) - set(REGIONS))
  if unknown:
    raise ValueError(f"unknown region(s) {unknown}; regions are {REGIONS}")
  if isinstance(extra_dirs, (str, pathlib.Path)):
    extra_dirs = (extra_dirs,)
  extra = [pathlib.Path(d).expanduser() for d in extra_dirs if str(d)]
  for directory in extra:
    if not directory.is_dir():
      raise FileNotFoundError(f"font directory {directory} does not exist")
  dirs = tuple(str(d) for d in list(system_dirs) + extra)
  faces = _all_cjk_faces(dirs, int(min_hanzi))
  return [face for face in faces
          if is_held_out_face(face) == held_out
          and face_region(face) in (None, *regions)]


def held_out_fonts(extra_dirs: Sequence[str | pathlib.Path] = (), **kwargs) -> list[FontFace]:
  """The CJK faces of HELD_OUT_FAMILY (the project's held-out set); see `discover_cjk_fonts`."""
  return discover_cjk_fonts(extra_dirs, held_out=True, **kwargs)


def covering_fonts(chars: Iterable[str], fonts: Iterable[FontFace] | None = None
                   ) -> list[FontFace]:
  """The faces that have a glyph for every non-space character of `chars`.

  Args:
    chars: the characters to draw (a string or any iterable of characters).
    fonts: the faces to choose from; the training pool (`discover_cjk_fonts()`) if None.

  Returns:
    The covering faces, in the order of `fonts`.
  """
  text = "".join(chars)
  fonts = discover_cjk_fonts() if fonts is None else [FontFace(*face) for face in fonts]
  return [face for face in fonts if font_covers(face, text)]


def coverage_report(fonts: Iterable[FontFace] | None = None,
                    chars: str = zh_charset.ZH_EN_CHARS) -> list[tuple[FontFace, str, int, int]]:
  """(face, family, covered, total) of each face for the non-space characters of `chars`;
  by default for every CJK face found, held-out ones included (reserved ones never)."""
  if fonts is None:
    fonts = discover_cjk_fonts(regions=REGIONS) + held_out_fonts(regions=REGIONS)
  total = len({c for c in chars if not c.isspace()})
  return [(face, face_family(face), coverage(face, chars), total) for face in fonts]


if __name__ == "__main__":
  for face_, family_, covered_, total_ in coverage_report():
    print(f"{covered_}/{total_}  {family_}  {face_.path}#{face_.index}")
