"""Tests of font discovery, glyph coverage and family names."""

import collections
import pathlib
import shutil

import pytest
from fontTools.ttLib import TTFont
from PIL import ImageFont

from crnn_jax.synth import fonts


def _by_name(paths, name):
  matches = [p for p in paths if p.name == name]
  assert len(matches) == 1, f"{name}: {matches}"
  return matches[0]


def _cmap(path):
  font = TTFont(str(path), lazy=True)
  try:
    return font.getBestCmap()
  finally:
    font.close()


def test_default_pool_has_many_typefaces():
  paths = fonts.discover_fonts()
  families = {fonts.typeface_family(p) for p in paths}
  assert len(families) >= 8, families
  assert {"DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"} <= families


def test_discovery_is_sorted_absolute_and_deduplicated():
  paths = fonts.discover_fonts()
  assert paths == sorted(paths)
  assert len(set(paths)) == len(paths)
  assert all(p.is_absolute() and p.is_file() for p in paths)
  assert all(p.suffix.lower() in (".ttf", ".otf") for p in paths)
  # One file per style: no font ships as both .otf and .ttf.
  stems = [(p.parent, p.stem) for p in paths]
  assert len(set(stems)) == len(stems)
  names = [p.name for p in paths]
  assert not [n for n in names if "VariableFont" in n]
  assert not [n for n in names if n.startswith(("STIX", "cm", "LastResort")) or "Display." in n]
  assert "DejaVuSans.ttf" in names


def test_discovery_returns_a_fresh_list():
  first = fonts.discover_fonts()
  first.clear()
  assert fonts.discover_fonts()


def test_typeface_family_ignores_weight_and_style():
  paths = fonts.discover_fonts()
  assert fonts.typeface_family(_by_name(paths, "DejaVuSans-BoldOblique.ttf")) == "DejaVu Sans"
  lato = [p for p in paths if p.name.startswith("Lato-")]
  if lato:
    assert {fonts.typeface_family(p) for p in lato} == {"Lato"}


def test_extra_dir_adds_its_fonts(tmp_path):
  dejavu = _by_name(fonts.discover_fonts(), "DejaVuSerif.ttf")
  nested = tmp_path / "more" / "fonts"
  nested.mkdir(parents=True)
  copy = nested / "MyCustomFace.ttf"
  shutil.copyfile(dejavu, copy)
  (tmp_path / "README.txt").write_text("not a font")
  default = fonts.discover_fonts()
  extended = fonts.discover_fonts([tmp_path])
  assert copy.resolve() in extended
  assert set(extended) == set(default) | {copy.resolve()}
  assert extended == sorted(extended)
  # Strings work too and the empty string means "no extra directory".
  assert fonts.discover_fonts([str(tmp_path), ""]) == extended


def test_missing_extra_dir_is_a_clear_error(tmp_path):
  missing = tmp_path / "no_such_fonts"
  with pytest.raises(FileNotFoundError, match="no_such_fonts"):
    fonts.discover_fonts([missing])


def test_extra_dir_without_fonts_is_a_clear_error(tmp_path):
  empty = tmp_path / "empty_fonts_dir"
  empty.mkdir()
  (empty / "notes.txt").write_text("nothing here")
  with pytest.raises(ValueError, match="empty_fonts_dir"):
    fonts.discover_fonts([empty])


def test_fonts_covering_needs_every_character():
  paths = fonts.discover_fonts()
  dejavu = _by_name(paths, "DejaVuSans.ttf")
  latin = fonts.fonts_covering(paths, "0123456789abcdefghijklmnopqrstuvwxyz")
  assert latin == paths  # Every packaged font has the basic Latin alphabet.

  # No packaged font has CJK; any font kept (e.g. a system one) must really map it.
  cjk = fonts.fonts_covering(paths, "中")
  assert dejavu not in cjk
  assert all(ord("中") in _cmap(p) for p in cjk)

  # Cyrillic: DejaVu has it, Fjalla One does not.
  cyrillic = fonts.fonts_covering(paths, "abcж")
  assert dejavu in cyrillic
  assert all(ord("ж") in _cmap(p) for p in cyrillic)
  lacking = [p for p in paths if ord("ж") not in _cmap(p)]
  assert lacking, "expected some packaged font without Cyrillic"
  assert not set(lacking) & set(cyrillic)
  assert len(cyrillic) + len(lacking) == len(paths)


def test_fonts_covering_keeps_input_order():
  paths = fonts.discover_fonts()
  reversed_paths = list(reversed(paths))
  assert fonts.fonts_covering(reversed_paths, "ab") == reversed_paths
  assert fonts.fonts_covering([str(p) for p in paths[:3]], "a") == [
      pathlib.Path(p) for p in paths[:3]
  ]


def test_extended_pool_adds_matplotlib_text_faces():
  standard = fonts.discover_fonts()
  extended = fonts.discover_fonts(pool="extended")
  added = set(extended) - set(standard)
  assert set(standard) <= set(extended)
  assert {p.name for p in added} == set(fonts.EXTENDED_MATPLOTLIB_FONTS)
  families = {fonts.typeface_family(p) for p in added}
  assert {"STIXGeneral", "cmtt10"} <= families
  # Every added face draws the 62 alphanumerics.
  alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
  assert fonts.fonts_covering(sorted(added), alnum) == sorted(added)
  with pytest.raises(ValueError, match="font pool"):
    fonts.discover_fonts(pool="huge")


ALNUM_62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_wide_pool_adds_the_fontpkg_families():
  extended = fonts.discover_fonts(pool="extended")
  wide = fonts.discover_fonts(pool="wide")
  assert wide == sorted(wide)
  added = sorted(set(wide) - set(extended))
  assert set(extended) <= set(wide)
  # Each added file comes from a listed package, and each package adds something.
  packages = {p.parent.parent.name for p in added}
  assert packages == set(fonts.WIDE_FONT_PACKAGES)
  families = {fonts.typeface_family(p) for p in added}
  assert len(families) == len(fonts.WIDE_FONT_PACKAGES)
  assert {"IBM Plex Mono", "Open Sans", "Atkinson Hyperlegible", "PT Serif"} <= families
  # No family outweighs the others: at most the kept styles (or two variable files) each.
  by_family = collections.Counter(fonts.typeface_family(p) for p in added)
  assert max(by_family.values()) <= len(fonts.WIDE_STYLES), by_family
  assert fonts.fonts_covering(added, ALNUM_62) == added


_SIGNAGE_MISSING = fonts.missing_debian_packages("signage")
# The 'signage' pool's tests need its Debian packages (.ci/run installs them as root).
needs_signage_packages = pytest.mark.skipif(
    bool(_SIGNAGE_MISSING), reason=f"Debian font packages not installed: {_SIGNAGE_MISSING[:3]}")
WIDE_POOLS = ["wide", "scene", pytest.param("signage", marks=needs_signage_packages)]


@pytest.mark.parametrize("pool", WIDE_POOLS)
def test_wide_pools_draw_lining_figures(pool):
  # Old-style figures (a '0' as an 'o') would teach the model that an 'o' may be a '0'.
  # Heights above the baseline: a script face's 'H' may swash below it (Satisfy).
  for path in fonts.discover_fonts(pool=pool):
    font = ImageFont.truetype(str(path), 100)
    cap, zero, one = (-font.getbbox(c, anchor="ls")[1] for c in "H01")
    assert zero >= 0.85 * cap and one >= 0.85 * cap, path.name


def _added_faces(smaller: str, larger: str) -> list:
  """The fonts that pool `larger` adds to pool `smaller`, checked to be a sorted superset whose
  new faces draw all 62 characters with a real lower case."""
  base, pool = fonts.discover_fonts(pool=smaller), fonts.discover_fonts(pool=larger)
  assert pool == sorted(pool) and set(base) <= set(pool)
  added = sorted(set(pool) - set(base))
  assert fonts.fonts_covering(added, ALNUM_62) == added
  # All-capitals faces draw 'x' as tall as 'X': they would teach 'A' for a lower-case 'a'.
  for path in added:
    font = ImageFont.truetype(str(path), 100)
    x_height, cap = (-font.getbbox(c, anchor="ls")[1] for c in "xX")
    assert x_height <= 0.85 * cap, path.name
  return added


def test_scene_pool_adds_display_faces_with_real_lower_case():
  added = _added_faces("wide", "scene")
  assert {p.parent.parent.name for p in added} == set(fonts.SCENE_FONT_PACKAGES)
  families = {fonts.typeface_family(p) for p in added}
  assert {"Anton", "Lobster", "Oswald", "Abril Fatface", "Orbitron"} <= families


def test_scene_pool_without_its_packages_is_a_clear_error(without_font_package):
  without_font_package("fontpkg_anton")
  assert fonts.missing_wide_packages("scene") == ["fontpkg-anton"]
  assert fonts.missing_wide_packages("wide") == []
  with pytest.raises(ModuleNotFoundError, match=r"'scene' font pool.*fontpkg-anton"):
    fonts.discover_fonts(pool="scene")
  assert fonts.discover_fonts(pool="wide")


@needs_signage_packages
def test_signage_pool_adds_the_debian_faces_with_real_lower_case():
  added = _added_faces("scene", "signage")
  assert all(fonts.DEBIAN_FONT_ROOT in p.parents for p in added)
  # Every listed package adds a face; no family outweighs the others.
  for package, patterns in fonts.SIGNAGE_DEBIAN_FONTS:
    # pylint: disable-next=protected-access
    assert set(fonts._debian_package_fonts(patterns)) & set(added), package
  by_family = collections.Counter(fonts.typeface_family(p) for p in added)
  assert max(by_family.values()) <= 8, by_family
  assert len(by_family) >= 45
  # None of them is a family that the PyPI pools hold already.
  scene_families = {fonts.typeface_family(p) for p in fonts.discover_fonts(pool="scene")}
  assert not set(by_family) & scene_families
  assert {"Gillius ADF", "Tribun ADF Std", "Old Standard TT", "Charis SIL"} <= set(by_family)


def test_signage_pool_without_its_debian_packages_is_a_clear_error(monkeypatch, tmp_path):
  monkeypatch.setattr(fonts, "DEBIAN_FONT_ROOT", tmp_path)
  fonts._discover.cache_clear()  # pylint: disable=protected-access
  try:
    missing = fonts.missing_debian_packages("signage")
    assert missing == [package for package, _ in fonts.SIGNAGE_DEBIAN_FONTS]
    assert fonts.missing_debian_packages("scene") == []
    with pytest.raises(FileNotFoundError,
                       match=r"'signage' font pool needs \d+ Debian.*apt-get install fonts-adf-"):
      fonts.discover_fonts(pool="signage")
    # One package present is one fewer missing.
    (tmp_path / "truetype" / "hack").mkdir(parents=True)
    shutil.copy(fonts.discover_fonts()[0], tmp_path / "truetype" / "hack" / "Hack-Regular.ttf")
    assert "fonts-hack" not in fonts.missing_debian_packages("signage")
    assert len(fonts.missing_debian_packages("signage")) == len(missing) - 1
    assert fonts.discover_fonts(pool="scene")  # the other pools do not need them
  finally:
    fonts._discover.cache_clear()  # pylint: disable=protected-access


def test_ci_installs_the_signage_packages():
  ci_script = (pathlib.Path(__file__).parents[2] / ".ci" / "run").read_text()
  for package, _ in fonts.SIGNAGE_DEBIAN_FONTS:
    assert f" {package} " in ci_script.replace("\\\n", " ").replace("\n", " "), package


@pytest.mark.parametrize("pool", WIDE_POOLS)
def test_wide_pools_are_unrelated_to_the_held_out_fonts(pool):
  # testdata/heldout_en is drawn in Liberation (built from Arimo, Tinos and Cousine) and GNU
  # FreeFont (built from URW's Nimbus fonts): no face of the pool may descend from them.
  suspects = ("liberation", "arimo", "tinos", "cousine", "ascender", "urw", "nimbus", "freefont",
              "free software foundation")
  for path in fonts.discover_fonts(pool=pool):
    font = TTFont(str(path), lazy=True)
    try:
      names = " ".join(
          (font["name"].getDebugName(name_id) or "") for name_id in (0, 1, 4, 8, 9, 16)).lower()
    finally:
      font.close()
    assert not [s for s in suspects if s in names], (path.name, names)


def _fake_package(root, files):
  (root / "files").mkdir(parents=True)
  for name in files:
    shutil.copy(fonts.discover_fonts()[0], root / "files" / name)
  return root


def test_package_fonts_keeps_styles_and_variable_only_families(tmp_path, monkeypatch):
  static = _fake_package(tmp_path / "static", [
      "Foo-Regular.ttf", "Foo-Thin.ttf", "Foo-BoldItalic.ttf", "Foo-Bold.otf", "Foo-Bold.ttf",
      "Foo[wght].ttf"])
  variable = _fake_package(tmp_path / "variable", ["Bar[wght].ttf", "Bar-Italic[wght].ttf"])
  monkeypatch.setattr(fonts, "_package_dir", {"static": static, "variable": variable}.get)
  names = lambda paths: [p.name for p in paths]
  assert names(fonts._package_fonts("static", fonts.WIDE_STYLES)) == [
      "Foo-Bold.ttf", "Foo-BoldItalic.ttf", "Foo-Regular.ttf"]
  assert names(fonts._package_fonts("static")) == [
      "Foo-Bold.ttf", "Foo-BoldItalic.ttf", "Foo-Regular.ttf", "Foo-Thin.ttf"]
  # A family shipped only as variable fonts contributes their default instances to the wide
  # pool; the standard pool's packages all ship static files, whose variable twins it skips.
  assert names(fonts._package_fonts("variable", fonts.WIDE_STYLES)) == [
      "Bar-Italic[wght].ttf", "Bar[wght].ttf"]
  assert fonts._package_fonts("variable") == []
  assert fonts._package_fonts("absent") == []


def test_wide_pool_without_its_packages_is_a_clear_error(without_font_package):
  without_font_package("fontpkg_inter")
  assert fonts.missing_wide_packages() == ["fontpkg-inter"]
  with pytest.raises(ModuleNotFoundError, match=r"fontpkg-inter.*crnn-jax\[fonts\]"):
    fonts.discover_fonts(pool="wide")
  assert fonts.discover_fonts(pool="extended")  # the other pools do not need them
