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
MPL_FONTS = pathlib.Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf"
# Computer Modern Math Italic is shipped by matplotlib but is not part of any training pool.
HELD_OUT_FONT = MPL_FONTS / "cmmi10.ttf"
COUNTS = {"word_lower": 3, "word_upper": 3, "word_capitalized": 3, "digits": 4, "random": 4}


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


def test_cli_writes_a_set_and_reports_errors(tmp_path, capsys, without_font_package):
  fonts_dir = tmp_path / "fonts"
  fonts_dir.mkdir()
  (fonts_dir / HELD_OUT_FONT.name).write_bytes(HELD_OUT_FONT.read_bytes())
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
