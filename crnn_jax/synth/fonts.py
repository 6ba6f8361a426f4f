"""Fonts for the synthetic renderer: discovery, glyph coverage and family names.

The built-in pools are made of fonts shipped by installed PyPI packages: the DejaVu family of
matplotlib and the `font_*` packages listed in `FONT_PACKAGES` (each keeps its files in a
`files/` directory); the 'wide' pool adds the Google Fonts families of `WIDE_FONT_PACKAGES`
(`fontpkg-*` packages, the `fonts` extra), the 'scene' pool their display faces, and the
'signage' pool the Debian font packages of `SIGNAGE_DEBIAN_FONTS`. Users can add a directory of
.ttf/.otf files.
Coverage and family names are read from the font files with fontTools (a matplotlib dependency).

Every function caches its result: discovery runs once in each data-loader worker process.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from typing import Iterable, Sequence

from fontTools.ttLib import TTFont

from crnn_jax.synth import files as files_lib

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

# The 'wide' pool adds these `fontpkg_*` packages (the `fonts` extra of pyproject.toml): Google
# Fonts families of every kind, sans, serif, slab and monospace (several Courier-like and Arial-
# like faces that tell l, I and 1 apart only by height and serifs). Arimo, Tinos and Cousine are
# left out on purpose: Liberation Sans, Serif and Mono (fonts of the held-out test set) are
# built from them. Nor is any face here derived from URW's Nimbus fonts, the origin of the test
# set's FreeSans, FreeSerif and FreeMono. Vollkorn and Zilla Slab are left out too: their
# default figures are old-style (a '0' as an 'o', a '1' like a small-capital I), which
# would teach the model that an 'o' may read '0'.
WIDE_FONT_PACKAGES = (
    # sans
    "fontpkg_archivo_narrow", "fontpkg_asap", "fontpkg_atkinson_hyperlegible", "fontpkg_barlow",
    "fontpkg_cabin", "fontpkg_fira_sans", "fontpkg_fira_sans_condensed", "fontpkg_hind",
    "fontpkg_ibm_plex_sans", "fontpkg_ibm_plex_sans_condensed", "fontpkg_inter", "fontpkg_karla",
    "fontpkg_libre_franklin", "fontpkg_news_cycle", "fontpkg_noto_sans", "fontpkg_open_sans",
    "fontpkg_overpass", "fontpkg_oxygen", "fontpkg_pt_sans", "fontpkg_pt_sans_narrow",
    "fontpkg_public_sans", "fontpkg_red_hat_text", "fontpkg_roboto_condensed", "fontpkg_rubik",
    "fontpkg_signika", "fontpkg_titillium_web", "fontpkg_work_sans",
    # serif and slab serif
    "fontpkg_arvo", "fontpkg_bitter", "fontpkg_cardo", "fontpkg_crimson_text", "fontpkg_domine",
    "fontpkg_eb_garamond", "fontpkg_ibm_plex_serif", "fontpkg_libre_baskerville", "fontpkg_lora",
    "fontpkg_noto_serif", "fontpkg_pt_serif", "fontpkg_roboto_slab", "fontpkg_spectral",
    # monospace
    "fontpkg_dm_mono", "fontpkg_fira_code", "fontpkg_geist_mono", "fontpkg_ibm_plex_mono",
    "fontpkg_inconsolata", "fontpkg_jetbrains_mono", "fontpkg_roboto_mono",
    "fontpkg_source_code_pro", "fontpkg_space_mono",
)
# Of a wide-pool family with many static weights only these styles are kept, so that families
# with 18 files do not outweigh those with 2 (the renderer draws files uniformly).
WIDE_STYLES = ("Regular", "Italic", "Bold", "BoldItalic", "Medium", "Light")

# The 'scene' pool adds the display faces of signs, shop fronts and posters to the 'wide' pool:
# heavy, condensed, rounded, slab, script and techno families (Google Fonts packaged by
# fontpkg, the `fonts` extra). Left out: faces whose default figures are old-style (Playfair
# Display, Pacifico, Caveat, Syne, Yanone Kaffeesatz: a '0' like an 'o'), and all-capitals faces
# (Bebas Neue, Bungee, Luckiest Guy: their lower-case letters are capitals, which would teach
# 'a' for 'A'); tests check both by glyph heights.
SCENE_FONT_PACKAGES = (
    # heavy and condensed display sans
    "fontpkg_anton", "fontpkg_archivo_black", "fontpkg_oswald", "fontpkg_barlow_condensed",
    "fontpkg_saira_condensed", "fontpkg_alumni_sans", "fontpkg_smooch_sans", "fontpkg_teko",
    "fontpkg_league_spartan", "fontpkg_montserrat", "fontpkg_poppins", "fontpkg_kanit",
    "fontpkg_josefin_sans", "fontpkg_hammersmith_one", "fontpkg_viga", "fontpkg_russo_one",
    "fontpkg_changa_one", "fontpkg_lilita_one", "fontpkg_titan_one", "fontpkg_righteous",
    # rounded and friendly
    "fontpkg_fredoka", "fontpkg_comfortaa", "fontpkg_dosis", "fontpkg_nunito", "fontpkg_mulish",
    "fontpkg_quicksand", "fontpkg_baloo_2", "fontpkg_rowdies",
    # display serif and slab
    "fontpkg_abril_fatface", "fontpkg_alfa_slab_one", "fontpkg_dm_serif_display",
    "fontpkg_bodoni_moda", "fontpkg_merriweather", "fontpkg_sanchez", "fontpkg_marcellus",
    "fontpkg_frank_ruhl_libre",
    # script, handwriting and brush
    "fontpkg_lobster", "fontpkg_oleo_script", "fontpkg_dancing_script", "fontpkg_satisfy",
    "fontpkg_kalam", "fontpkg_permanent_marker", "fontpkg_acme",
    # techno and stencil-like
    "fontpkg_exo_2", "fontpkg_chakra_petch", "fontpkg_share_tech", "fontpkg_orbitron",
    "fontpkg_black_ops_one",
)

# The 'signage' pool adds faces from Debian font packages to the 'scene' pool: (package, file
# patterns under DEBIAN_FONT_ROOT). They widen what signs show most and the PyPI pools have
# least of: Century- and Clarendon-like serifs (Romande, Oldania, Old Standard, Baskervald),
# Gill- and Futura-like sans (Gillius, Beteckna), grotesques in condensed to extended widths
# (Switzera, Tribun, Universalis), humanist and text faces (Charis, Gentium, Libertine, the
# TLWG faces' Latin letters), rounded and techno faces (M+, Jura, Sora, Play), sketch, brush and
# puffy display faces (Cabin Sketch, Leckerli One, Lobster Two, Stay Puft, Reggae One). Left
# out as in the 'scene' pool: old-style figures (Irianis, Solothurn, Bajaderka, Purisa, Romande
# Style), all-capitals faces (Mekanus Titling, Beteckna, Humor Sans, Ubuntu Title), URW's base
# 35 and TeX Gyre (the origin of the held-out set's FreeFont) and the TLWG faces that carry
# URW's or unnamed Latin letters (Norasi, Tlwg Mono and Typewriter), the Liberation and
# FreeFont packages themselves, and families the PyPI pools already hold (Open Sans, Lobster,
# Comfortaa, Cabin). Families with many weights keep at most 8 files.
SIGNAGE_DEBIAN_FONTS = (
    ("fonts-adf-accanthis", ("truetype/adf/AccanthisADFStd-*.otf",)),
    ("fonts-adf-baskervald", ("truetype/adf/BaskervaldADFStd*.otf",)),
    ("fonts-adf-berenis", ("truetype/adf/BerenisADFPro-*.otf",)),
    ("fonts-adf-gillius", ("truetype/adf/GilliusADF-*.otf",)),
    ("fonts-adf-ikarius", ("truetype/adf/IkariusADFStd-*.otf",)),
    ("fonts-adf-libris", ("truetype/adf/LibrisADFStd-*.otf",)),
    ("fonts-adf-mekanus", ("truetype/adf/MekanusADFStd-*.otf",)),
    ("fonts-adf-oldania", ("truetype/adf/OldaniaADFStd-*.otf",)),
    ("fonts-adf-romande", ("truetype/adf/RomandeADFStd-*.otf",)),
    ("fonts-adf-switzera", tuple(f"truetype/adf/SwitzeraADF-{style}.otf" for style in (
        "Regular", "Bold", "ExtraBold", "Light", "Cond", "BoldCond", "Ext", "BoldExt"))),
    ("fonts-adf-tribun", tuple(f"truetype/adf/TribunADFStd-{style}.otf" for style in (
        "Regular", "Medium", "Bold", "ExtraBold", "Cond", "BoldCond", "Italic", "BoldItalic"))),
    ("fonts-adf-universalis", ("truetype/adf/UniversalisADFStd-*.otf",)),
    ("fonts-adf-verana", ("truetype/adf/Verana-*.otf", "truetype/adf/VeranaSans-*.otf")),
    ("fonts-beteckna", ("truetype/beteckna/BetecknaGS*.ttf",)),
    ("fonts-cabinsketch", ("truetype/cabinsketch/CabinSketch-*.ttf",)),
    ("fonts-cantarell", ("opentype/cantarell/Cantarell-*.otf",)),
    ("fonts-crosextra-carlito", ("truetype/crosextra/Carlito-*.ttf",)),
    ("fonts-gemunu-libre", tuple(f"opentype/gemunu-libre/GemunuLibre-{style}.otf" for style in (
        "Regular", "Light", "Medium", "Bold", "ExtraBold"))),
    ("fonts-hack", ("truetype/hack/Hack-*.ttf",)),
    ("fonts-jura", ("opentype/jura/Jura-*.otf",)),
    ("fonts-leckerli-one", ("truetype/leckerli-one/LeckerliOne-Regular.ttf",)),
    ("fonts-linuxlibertine", tuple(
        f"opentype/linux-libertine/{name}.otf" for name in (
            "LinLibertine_R", "LinLibertine_RB", "LinLibertine_RI", "LinLibertine_RBI",
            "LinLibertine_RZ", "LinBiolinum_R", "LinBiolinum_RB", "LinBiolinum_RI"))),
    ("fonts-lobstertwo", ("opentype/lobstertwo/LobsterTwo-*.otf",)),
    ("fonts-mplus", tuple(f"opentype/mplus/Mplus{n}-{style}.otf" for n in (1, 2)
                          for style in ("Regular", "Light", "Bold", "Black"))),
    ("fonts-noto-core", ("truetype/noto/NotoSansDisplay-*.ttf",
                         "truetype/noto/NotoSerifDisplay-*.ttf")),
    ("fonts-ocr-b", ("opentype/ocr-b/OCRB.otf",)),
    ("fonts-oldstandard", ("truetype/fonts-oldstandard/OldStandard-*.ttf",)),
    ("fonts-play", ("truetype/play/Play-*.ttf",)),
    ("fonts-quattrocento", ("opentype/quattrocento/Quattrocento-Regular.otf",)),
    ("fonts-radisnoir", ("opentype/radisnoir/RadisSans-medium.otf",)),
    ("fonts-reggae", ("truetype/reggae/ReggaeOne-Regular.ttf",)),
    ("fonts-sil-andika", ("truetype/andika/Andika-*.ttf",)),
    ("fonts-sil-charis", ("truetype/charis/CharisSIL-*.ttf",)),
    ("fonts-sil-gentiumplus", ("truetype/gentiumplus/GentiumPlus-*.ttf",)),
    ("fonts-sora", tuple(f"opentype/sora/Sora-{style}.otf" for style in (
        "Regular", "Light", "SemiBold", "Bold", "ExtraBold"))),
    ("fonts-staypuft", ("truetype/staypuft/StayPuft.ttf",)),
    ("fonts-tlwg-garuda-ttf", ("truetype/tlwg/Garuda*.ttf",)),
    ("fonts-tlwg-kinnari-ttf", ("truetype/tlwg/Kinnari*.ttf",)),
    ("fonts-tlwg-laksaman-ttf", ("truetype/tlwg/Laksaman*.ttf",)),
    ("fonts-tlwg-loma-ttf", ("truetype/tlwg/Loma*.ttf",)),
    ("fonts-tlwg-sawasdee-ttf", ("truetype/tlwg/Sawasdee*.ttf",)),
    ("fonts-tlwg-umpush-ttf", ("truetype/tlwg/Umpush*.ttf",)),
    ("fonts-tlwg-waree-ttf", ("truetype/tlwg/Waree*.ttf",)),
)
# Where Debian installs fonts.
DEBIAN_FONT_ROOT = pathlib.Path("/usr/share/fonts")

POOLS = ("standard", "extended", "wide", "scene", "signage")

FONT_SUFFIXES = (".ttf", ".otf")

# Among two files of the same style (e.g. SourceSansPro-Bold.otf and .ttf) keep the first suffix.
_SUFFIX_PREFERENCE = {".ttf": 0, ".otf": 1}


def _is_font_file(path: pathlib.Path) -> bool:
  return path.is_file() and path.suffix.lower() in FONT_SUFFIXES


def _is_static_font(path: pathlib.Path) -> bool:
  """False for variable fonts (their default instance duplicates a static style): the
  `Name-VariableFont_wght` files of the font_* packages, the `Name[wght]` files of fontpkg."""
  return "variablefont" not in path.stem.lower() and "[" not in path.stem


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
  extra = EXTENDED_MATPLOTLIB_FONTS if pool != "standard" else ()
  return [
      path
      for path in directory.iterdir()
      if _is_font_file(path) and (
          (path.name.startswith("DejaVu") and "Display" not in path.stem) or path.name in extra)
  ]


def _package_fonts(name: str, styles: Sequence[str] | None = None) -> list[pathlib.Path]:
  """The fonts in `<package>/files`, one file per style.

  Args:
    name: the package's import name.
    styles: if given, keep only static files whose stem ends with '-<style>' for one of these
      styles (e.g. 'Regular'). A package that ships only variable fonts contributes their
      default instances (one per file, e.g. 'OpenSans[wdth,wght]' and its Italic) instead.

  Returns:
    The font paths, sorted by file name; empty when the package is not installed.
  """
  package = _package_dir(name)
  if package is None or not (package / "files").is_dir():
    return []
  files = [path for path in sorted((package / "files").iterdir()) if _is_font_file(path)]
  static = [path for path in files if _is_static_font(path)]
  if not static:
    return files if styles is not None else []
  if styles is not None:
    static = [path for path in static if path.stem.rsplit("-", 1)[-1] in styles]
  by_style: dict[str, pathlib.Path] = {}
  for path in static:
    kept = by_style.get(path.stem)
    if kept is None or (
        _SUFFIX_PREFERENCE[path.suffix.lower()] < _SUFFIX_PREFERENCE[kept.suffix.lower()]
    ):
      by_style[path.stem] = path
  return list(by_style.values())


def _pypi_font_packages(pool: str) -> tuple[str, ...]:
  """The fontpkg packages of a pool (import names): none below 'wide'."""
  if pool in ("wide", "scene", "signage"):
    return WIDE_FONT_PACKAGES + (SCENE_FONT_PACKAGES if pool != "wide" else ())
  return ()


def missing_wide_packages(pool: str = "wide") -> list[str]:
  """The font packages of a pool ('wide', 'scene' or 'signage') that are not installed (pip
  names)."""
  return [name.replace("_", "-") for name in _pypi_font_packages(pool)
          if _package_dir(name) is None]


def _debian_package_fonts(patterns: Sequence[str]) -> list[pathlib.Path]:
  """The files under DEBIAN_FONT_ROOT that match the patterns, sorted; empty when none does."""
  return sorted({path for pattern in patterns for path in DEBIAN_FONT_ROOT.glob(pattern)
                 if _is_font_file(path)})


def missing_debian_packages(pool: str = "signage") -> list[str]:
  """The Debian font packages of the 'signage' pool whose files are not installed."""
  if pool != "signage":
    return []
  return [package for package, patterns in SIGNAGE_DEBIAN_FONTS
          if not _debian_package_fonts(patterns)]


def fonts_in_directory(directory: str | pathlib.Path) -> list[pathlib.Path]:
  """Every font file under a user directory (recursive), sorted.

  Raises:
    FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
    ValueError: it holds no .ttf/.otf file.
  """
  return files_lib.files_in_directory(directory, FONT_SUFFIXES, kind="fonts", noun="font files")


@functools.lru_cache(maxsize=None)
def _discover(extra_dirs: tuple[str, ...], pool: str) -> tuple[pathlib.Path, ...]:
  fonts = _matplotlib_fonts(pool)
  for name in FONT_PACKAGES:
    fonts.extend(_package_fonts(name))
  missing = missing_wide_packages(pool)
  if missing:
    raise ModuleNotFoundError(
        f"the {pool!r} font pool needs {len(missing)} font packages that are not installed "
        f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); install them "
        "with: pip install 'crnn-jax[fonts]'")
  missing = missing_debian_packages(pool)
  if missing:
    raise FileNotFoundError(
        f"the {pool!r} font pool needs {len(missing)} Debian font packages whose files are not "
        f"under {DEBIAN_FONT_ROOT}; install them with: apt-get install {' '.join(missing)}")
  for name in _pypi_font_packages(pool):
    fonts.extend(_package_fonts(name, WIDE_STYLES))
  if pool == "signage":
    for _, patterns in SIGNAGE_DEBIAN_FONTS:
      fonts.extend(_debian_package_fonts(patterns))
  for directory in extra_dirs:
    fonts.extend(fonts_in_directory(directory))
  return tuple(sorted({path.resolve() for path in fonts}))


def discover_fonts(extra_dirs: Sequence[str | pathlib.Path] = (),
                   pool: str = "standard") -> list[pathlib.Path]:
  """All fonts of the pool: the packaged ones plus every font file under `extra_dirs`.

  Args:
    extra_dirs: directories searched recursively for .ttf/.otf files. Empty strings are
      ignored (the config's "no extra fonts").
    pool: 'standard' (DejaVu and the FONT_PACKAGES), 'extended' (also matplotlib's STIX and
      Computer Modern text faces), 'wide' (also the WIDE_FONT_PACKAGES), 'scene' (also the
      display faces of SCENE_FONT_PACKAGES) or 'signage' (also the Debian packages of
      SIGNAGE_DEBIAN_FONTS).

  Returns:
    Absolute font paths in sorted (deterministic) order, without duplicates.

  Raises:
    ValueError: an extra directory holds no font file, or an unknown pool.
    ModuleNotFoundError: the 'wide', 'scene' or 'signage' pool's PyPI packages are not
      installed.
    FileNotFoundError: an extra directory does not exist, or the 'signage' pool's Debian
      packages are not installed.
  """
  if pool not in POOLS:
    raise ValueError(f"font pool must be one of {POOLS}, got {pool!r}")
  if isinstance(extra_dirs, (str, pathlib.Path)):
    extra_dirs = (extra_dirs,)
  key = tuple(str(pathlib.Path(d).expanduser()) for d in extra_dirs if str(d))
  return list(_discover(key, pool))


@functools.lru_cache(maxsize=None)
def font_codepoints(path: str | pathlib.Path, index: int = 0) -> frozenset[int]:
  """The code points that the font maps to a glyph other than `.notdef`.

  Args:
    path: a .ttf/.otf file (or a .ttc collection).
    index: the face of a collection.

  Returns:
    The set of Unicode code points with a real glyph.
  """
  font = TTFont(str(path), lazy=True, fontNumber=index)
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
