"""Tests of held-out test sets (crnn_jax/evaluation/heldout_en.py) and of the set kept in the
repository."""

import collections
import pathlib
import string

import matplotlib
import numpy as np
import pytest
from PIL import Image

from crnn_jax.text import charset as charset_lib
from crnn_jax import cli
from crnn_jax.synth import fonts
from crnn_jax.data import sources
from crnn_jax.evaluation import heldout_en

REPO = pathlib.Path(__file__).resolve().parents[2]
HELDOUT_EN = REPO / "testdata" / "heldout_en"
HELDOUT_IRREGULAR = REPO / "testdata" / "heldout_irregular"
MPL_FONTS = pathlib.Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
# Computer Modern Math Italic is shipped by matplotlib but is not part of any training pool.
HELD_OUT_FONT = MPL_FONTS / "cmmi10.ttf"
COUNTS = {"word_lower": 3, "word_upper": 3, "word_capitalized": 3, "digits": 4, "random": 4}
SMALL_IRREGULAR = {"word_lower": 4, "word_upper": 1, "digits": 4}
_SIGNAGE_MISSING = fonts.missing_debian_packages("signage")
# Irregular sets check their fonts against the 'signage' pool, which needs its Debian packages.
needs_signage_packages = pytest.mark.skipif(
    bool(_SIGNAGE_MISSING), reason=f"Debian font packages not installed: {_SIGNAGE_MISSING[:3]}")


def _check_kind(text, kind):
  assert 1 <= len(text) <= 12, text
  if kind == "digits":
    assert text.isdigit(), text
  elif kind == "word_lower":
    assert text.isalpha() and text.islower(), text
  elif kind == "word_upper":
    assert text.isalpha() and text.isupper(), text
  elif kind == "word_capitalized":
    assert text.isalpha() and text[0].isupper() and (len(text) == 1 or text[1:].islower()), text
  else:
    assert set(text) <= set(charset_lib.ALPHANUMERIC_62), text


def test_write_read_and_folder_source(tmp_path):
  out = tmp_path / "set"
  samples = heldout_en.write_test_set(out, [HELD_OUT_FONT], seed=5, counts=COUNTS)
  assert len(samples) == sum(COUNTS.values())
  assert collections.Counter(s.kind for s in samples) == COUNTS
  for sample in samples:
    _check_kind(sample.text, sample.kind)
    assert sample.font == HELD_OUT_FONT.name
    assert sample.file.startswith(sample.kind + "/")
  assert heldout_en.read_test_set(out) == samples
  # gt.txt makes it a `folder` dataset that evaluation reads like any other.
  source = sources.open_dataset(out)
  assert len(source) == len(samples)
  assert [source[i]["label"].decode() for i in range(len(source))] == [s.text for s in samples]
  image = np.asarray(Image.open(out / samples[0].file))
  assert image.ndim == 2 and image.dtype == np.uint8 and image.std() > 10


def test_progress_bar_on_a_terminal_counts_every_image(tmp_path, terminal_stderr):
  total = sum(COUNTS.values())
  for progress, name in ((True, "shown"), (False, "hidden")):
    with terminal_stderr() as terminal:
      heldout_en.write_test_set(tmp_path / name, [HELD_OUT_FONT], seed=5, counts=COUNTS,
                                progress=progress)
    assert (f"{total}/{total}" in terminal.getvalue()) == progress


def test_same_seed_same_set_other_seed_other_set(tmp_path):
  a = heldout_en.write_test_set(tmp_path / "a", [HELD_OUT_FONT], seed=5, counts=COUNTS)
  b = heldout_en.write_test_set(tmp_path / "b", [HELD_OUT_FONT], seed=5, counts=COUNTS)
  c = heldout_en.write_test_set(tmp_path / "c", [HELD_OUT_FONT], seed=6, counts=COUNTS)
  assert a == b
  assert [s.text for s in a] != [s.text for s in c]
  for sample in a:
    assert (tmp_path / "a" / sample.file).read_bytes() == (tmp_path / "b" / sample.file).read_bytes()


def test_refuses_training_fonts_missing_glyphs_and_overwriting(tmp_path):
  pool_font = fonts.discover_fonts()[0]
  with pytest.raises(ValueError, match="is in the training pool"):
    heldout_en.write_test_set(tmp_path / "x", [pool_font], counts=COUNTS)
  with pytest.raises(ValueError, match="has no glyph"):
    heldout_en.write_test_set(tmp_path / "x", [MPL_FONTS / "STIXSizOneSymReg.ttf"], counts=COUNTS)
  with pytest.raises(ValueError, match="unknown kinds"):
    heldout_en.write_test_set(tmp_path / "x", [HELD_OUT_FONT], counts={"words": 3})
  heldout_en.write_test_set(tmp_path / "y", [HELD_OUT_FONT], counts=COUNTS)
  with pytest.raises(FileExistsError):
    heldout_en.write_test_set(tmp_path / "y", [HELD_OUT_FONT], counts=COUNTS)


def test_read_names_bad_lines(tmp_path):
  heldout_en.write_test_set(tmp_path / "s", [HELD_OUT_FONT], counts=COUNTS)
  meta = tmp_path / "s" / heldout_en.META_FILE
  lines = meta.read_text().splitlines()
  meta.write_text("\n".join(lines[:3] + ["digits/00000.png\t12\tnumbers\tX.ttf"]) + "\n")
  with pytest.raises(ValueError, match=r"meta.tsv:4"):
    heldout_en.read_test_set(tmp_path / "s")
  meta.write_text("\n".join(lines[:2] + ["digits/09999.png\t12\tdigits\tX.ttf"]) + "\n")
  with pytest.raises(FileNotFoundError, match=r"meta.tsv:3.*09999.png"):
    heldout_en.read_test_set(tmp_path / "s")


def test_accuracy_by_group():
  samples = [heldout_en.Sample("a", "Cat", "word_capitalized", "f"),
             heldout_en.Sample("b", "dog", "word_lower", "f"),
             heldout_en.Sample("c", "42", "digits", "f"),
             heldout_en.Sample("d", "x1Y", "random", "f")]
  table = heldout_en.accuracy_by_group(samples, ["cat", "dog", "42", "x1Y"])
  assert table["all"]["correct"] == 3 and table["all"]["total"] == 4
  assert table["all"]["accuracy"] == 0.75
  assert table["all"]["one_minus_ned"] == pytest.approx(1 - (1 / 3) / 4)
  assert table["words"]["accuracy"] == 0.5  # Case-sensitive: 'cat' is not 'Cat'.
  assert table["word_capitalized"]["accuracy"] == 0.0
  assert table["digits"]["accuracy"] == table["random"]["accuracy"] == 1.0
  with pytest.raises(ValueError):
    heldout_en.accuracy_by_group(samples, ["x"])


@pytest.fixture
def fonts_dir(tmp_path):
  """A directory holding HELD_OUT_FONT alone (what `--fonts-dir` takes)."""
  directory = tmp_path / "fonts"
  directory.mkdir()
  (directory / HELD_OUT_FONT.name).write_bytes(HELD_OUT_FONT.read_bytes())
  return directory


def test_cli_writes_a_set_and_reports_errors(tmp_path, capsys, without_font_package, fonts_dir):
  out = tmp_path / "set"
  assert cli.main(["data", "heldout-set", "--output", str(out), "--fonts-dir", str(fonts_dir),
                   "--seed", "3"]) == 0
  assert "wrote 600 images" in capsys.readouterr().out
  assert len(heldout_en.read_test_set(out)) == 600
  assert cli.main(["data", "heldout-set", "--out", str(tmp_path / "z"),
                   "--fonts-dir", str(tmp_path / "missing")]) == 1
  assert "does not exist" in capsys.readouterr().err
  # Without the 'wide' pool's packages the held-out check cannot be made: a clear error.
  without_font_package("fontpkg_lora")
  assert cli.main(["data", "heldout-set", "--out", str(tmp_path / "w"),
                   "--fonts-dir", str(fonts_dir)]) == 1
  assert "pip install 'crnn-jax[fonts]'" in capsys.readouterr().err


def test_repository_set_is_held_out_and_complete():
  samples = heldout_en.read_test_set(HELDOUT_EN)
  assert collections.Counter(s.kind for s in samples) == heldout_en.DEFAULT_COUNTS
  for sample in samples:
    _check_kind(sample.text, sample.kind)
  # Its fonts (Debian's Liberation and FreeFont) are not in the training pool.
  used = {s.font for s in samples}
  assert all(name.startswith(("Liberation", "Free")) for name in used), used
  assert len(used) >= 20
  assert not used & {p.name for p in fonts.discover_fonts(pool="wide")}
  families = heldout_en.training_families()
  assert {"Open Sans", "IBM Plex Mono", "DejaVu Sans"} <= families  # every pool is checked
  assert not any(f.startswith(("Liberation", "Free")) for f in families)
  # Case forms and lengths are spread out.
  lengths = {len(s.text) for s in samples if s.kind in ("digits", "random")}
  assert lengths == set(range(1, 13))
  assert any(c in string.ascii_uppercase for s in samples if s.kind == "random" for c in s.text)


def _blank_font(path):
  """A font whose cmap maps every character of the charset to an empty glyph."""
  from fontTools.fontBuilder import FontBuilder  # pylint: disable=import-outside-toplevel
  from fontTools.pens.ttGlyphPen import TTGlyphPen  # pylint: disable=import-outside-toplevel
  names = [".notdef"] + [f"g{ord(c)}" for c in charset_lib.ALPHANUMERIC_62]
  builder = FontBuilder(1000, isTTF=True)
  builder.setupGlyphOrder(names)
  builder.setupCharacterMap({ord(c): f"g{ord(c)}" for c in charset_lib.ALPHANUMERIC_62})
  builder.setupGlyf({name: TTGlyphPen(None).glyph() for name in names})
  builder.setupHorizontalMetrics({name: (500, 0) for name in names})
  builder.setupHorizontalHeader(ascent=800, descent=-200)
  builder.setupNameTable({"familyName": "Blank Test", "styleName": "Regular"})
  builder.setupOS2()
  builder.setupPost()
  builder.save(str(path))
  return path


def test_refuses_a_font_that_draws_nothing(tmp_path):
  """A cmap that lists every character is not enough: the glyphs must have ink."""
  blank = _blank_font(tmp_path / "Blank.ttf")
  assert set(map(ord, charset_lib.ALPHANUMERIC_62)) <= fonts.font_codepoints(blank)
  with pytest.raises(ValueError, match="draws nothing for '0123"):
    heldout_en.write_test_set(tmp_path / "x", [blank], counts=COUNTS)


@needs_signage_packages
def test_irregular_set_bends_every_word_in_turn_and_reads_back(tmp_path):
  out = tmp_path / "irregular"
  samples = heldout_en.write_test_set(out, [HELD_OUT_FONT], seed=5, counts=SMALL_IRREGULAR,
                                      augment=heldout_en.IRREGULAR)
  assert collections.Counter(s.kind for s in samples) == SMALL_IRREGULAR
  # Each kind cycles through the geometries; no text is shorter than 3 characters.
  geometries = list(heldout_en.GEOMETRIES)
  for kind in SMALL_IRREGULAR:
    assert [s.geometry for s in samples if s.kind == kind] == geometries[:SMALL_IRREGULAR[kind]]
  for sample in samples:
    _check_kind(sample.text, sample.kind)
    assert len(sample.text) >= heldout_en.IRREGULAR_MIN_LENGTH
  # meta.tsv names the geometry; the set reads back and is a `folder` dataset.
  assert (out / heldout_en.META_FILE).read_text().splitlines()[0].split("\t") == [
      "file", "text", "kind", "font", "geometry"]
  assert heldout_en.read_test_set(out) == samples
  source = sources.open_dataset(out)
  assert [source[i]["label"].decode() for i in range(len(source))] == [s.text for s in samples]
  # Scene-level images, stored as the model's grayscale.
  for sample in samples:
    image = np.asarray(Image.open(out / sample.file))
    assert image.ndim == 2 and image.dtype == np.uint8 and 12 <= image.shape[0] <= 64
  # The same seed draws the same images.
  again = heldout_en.write_test_set(tmp_path / "again", [HELD_OUT_FONT], seed=5,
                                    counts=SMALL_IRREGULAR, augment=heldout_en.IRREGULAR)
  assert again == samples
  for sample in samples:
    assert (out / sample.file).read_bytes() == (tmp_path / "again" / sample.file).read_bytes()
  # Scores per geometry as well as per kind.
  table = heldout_en.accuracy_by_group(samples, [s.text for s in samples])
  assert {name: table[name]["total"] for name in geometries} == {
      "curved": 3, "perspective": 2, "rotated": 2, "curved_perspective": 2}


@needs_signage_packages
def test_irregular_set_refuses_the_signage_pools_fonts(tmp_path):
  # A face that the 'signage' pool adds (scene_en's training fonts) but the 'wide' pool lacks.
  signage_only = sorted(set(fonts.discover_fonts(pool="signage")) -
                        set(fonts.discover_fonts(pool="wide")))
  face = fonts.fonts_covering(signage_only, charset_lib.ALPHANUMERIC_62)[0]
  with pytest.raises(ValueError, match="is in the training pool"):
    heldout_en.write_test_set(tmp_path / "x", [face], counts=SMALL_IRREGULAR,
                              augment=heldout_en.IRREGULAR)
  with pytest.raises(ValueError, match="backgrounds_dir applies to"):
    heldout_en.write_test_set(tmp_path / "y", [HELD_OUT_FONT], counts=COUNTS,
                              backgrounds_dir=str(tmp_path))
  with pytest.raises(ValueError, match="geometry must be one of"):
    heldout_en.irregular_scene_params("wavy")


def test_irregular_geometries_are_scene_params_that_bend_or_tilt_every_word():
  from crnn_jax.synth import params  # pylint: disable=import-outside-toplevel
  for geometry in heldout_en.GEOMETRIES:
    scene = params.scene_params(heldout_en.irregular_scene_params(geometry))
    assert scene.photo_prob == 0.0  # Panels only, without a held-out photographs' directory.
    curved = scene.curve_prob == 1.0 and scene.curve_min > 0
    warped = scene.perspective_prob == 1.0 and (scene.rotation_min_deg > 0
                                                or scene.corner_jitter >= 0.2)
    assert curved or warped, geometry
    with_photos = params.scene_params(heldout_en.irregular_scene_params(geometry, photos=True))
    assert with_photos.photo_prob == params.DEFAULT_SCENE.photo_prob


@needs_signage_packages
def test_cli_writes_an_irregular_set(tmp_path, capsys, monkeypatch, fonts_dir):
  monkeypatch.setattr(heldout_en, "IRREGULAR_COUNTS", SMALL_IRREGULAR)
  out = tmp_path / "set"
  assert cli.main(["data", "heldout-set", "--augment", "scene-irregular", "--output", str(out),
                   "--fonts-dir", str(fonts_dir), "--quiet"]) == 0
  assert "wrote 9 images" in capsys.readouterr().out
  assert {s.geometry for s in heldout_en.read_test_set(out)} == set(heldout_en.GEOMETRIES)
  assert cli.main(["data", "heldout-set", "--output", str(tmp_path / "light"), "--fonts-dir",
                   str(fonts_dir), "--backgrounds-dir", str(fonts_dir)]) == 1
  assert "backgrounds_dir applies to" in capsys.readouterr().err


def test_repository_irregular_set_is_held_out_bent_and_complete():
  samples = heldout_en.read_test_set(HELDOUT_IRREGULAR)
  assert collections.Counter(s.kind for s in samples) == heldout_en.IRREGULAR_COUNTS
  for sample in samples:
    _check_kind(sample.text, sample.kind)
    assert len(sample.text) >= heldout_en.IRREGULAR_MIN_LENGTH
  by_geometry = collections.Counter(s.geometry for s in samples)
  assert set(by_geometry) == set(heldout_en.GEOMETRIES) and min(by_geometry.values()) >= 85
  # The Latin letters of Debian's Japanese faces (module docstring): none in a training pool.
  used = {s.font for s in samples}
  assert used == {"ipaexg.ttf", "ipaexm.ttf", "sawarabi-gothic-medium.ttf",
                  "sawarabi-mincho-medium.ttf", "MTLmr3m.ttf", "KleeOne-Regular.ttf",
                  "KleeOne-SemiBold.ttf"}
  if not _SIGNAGE_MISSING:
    assert not used & {p.name for p in fonts.discover_fonts(pool="signage")}
  # Small enough for the repository: grayscale PNGs of a few kB.
  total = sum(p.stat().st_size for p in HELDOUT_IRREGULAR.rglob("*") if p.is_file())
  assert total < 3_000_000, total
  image = np.asarray(Image.open(HELDOUT_IRREGULAR / samples[0].file))
  assert image.ndim == 2 and image.dtype == np.uint8
