"""The held-out set of mixed Chinese/English lines: kinds, held-out faces, NFKC scores."""

import collections
import pathlib

import numpy as np
import pytest

pytest.importorskip("jieba", reason="the zh text source needs jieba: pip install 'crnn-jax[zh]'")

from crnn_jax import cli  # pylint: disable=wrong-import-position
from crnn_jax.synth import cjk_fonts  # pylint: disable=wrong-import-position
from crnn_jax.data import sources  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import heldout_en  # pylint: disable=wrong-import-position
from crnn_jax.text import zh_charset  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import heldout_zh  # pylint: disable=wrong-import-position

HELDOUT_ZH = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "heldout_zh"
CHARSET = frozenset(zh_charset.ZH_EN_CHARS)


@pytest.mark.parametrize("kind", heldout_zh.KINDS)
def test_lines_of_each_kind_have_its_property(kind):
  rng = np.random.default_rng(0)
  for _ in range(40):
    text = heldout_zh.sample_kind(kind, rng)
    assert heldout_zh.line_kind_ok(kind, text) and set(text) <= CHARSET
  # The properties tell kinds apart on typical lines:
  assert not heldout_zh.line_kind_ok("chinese", "iPhone手机")
  assert heldout_zh.line_kind_ok("mixed", "iPhone手机")
  assert not heldout_zh.line_kind_ok("latin", "价格 128")
  assert heldout_zh.line_kind_ok("punctuation", "你好，世界！")
  assert not heldout_zh.line_kind_ok("punctuation", "你好，世界")
  with pytest.raises(ValueError, match="kind"):
    heldout_zh.line_kind_ok("emoji", "x")


def test_writer_uses_held_out_faces_only(tmp_path):
  held_out = cjk_fonts.held_out_fonts()
  if not held_out:
    pytest.skip("no held-out face: apt-get install fonts-hanazono")
  counts = {"chinese": 2, "mixed": 2, "latin": 1, "punctuation": 1}
  samples = heldout_zh.write_test_set(tmp_path / "set", held_out, seed=5, counts=counts)
  assert heldout_zh.read_test_set(tmp_path / "set") == samples
  assert collections.Counter(s.kind for s in samples) == counts
  assert not (tmp_path / "set" / sources.GT_FILE).exists()  # One gt.txt per kind instead.
  for kind in counts:
    gt = (tmp_path / "set" / kind / sources.GT_FILE).read_text(encoding="utf-8").splitlines()
    assert gt == [f"{s.file.split('/', 1)[1]}\t{s.text}" for s in samples if s.kind == kind]
  found = sources.find_datasets(tmp_path / "set")
  assert sorted(entry.name for entry in found) == sorted(counts)
  for sample in samples:
    assert heldout_zh.line_kind_ok(sample.kind, sample.text)
  with pytest.raises(FileExistsError):
    heldout_zh.write_test_set(tmp_path / "set", held_out, counts=counts)
  training = cjk_fonts.discover_cjk_fonts()
  if training:
    with pytest.raises(ValueError, match="training pool"):
      heldout_zh.write_test_set(tmp_path / "bad", training[:1], counts=counts)
  with pytest.raises(ValueError, match="unknown kinds"):
    heldout_zh.write_test_set(tmp_path / "bad", held_out, counts={"poems": 1})


def test_cli_writes_the_set_and_checks_counts(tmp_path, capsys):
  if not cjk_fonts.held_out_fonts():
    pytest.skip("no held-out face: apt-get install fonts-hanazono")
  out = tmp_path / "zh"
  argv = ["data", "heldout-zh", "--output", str(out)]
  assert cli.main(argv + ["--count", "1", "--count", "1", "--count", "1", "--count", "1"]) == 0
  assert "wrote 4 images" in capsys.readouterr().out
  assert cli.main(argv + ["--count", "1"]) == 1
  assert "once per kind" in capsys.readouterr().err


def test_accuracy_by_kind_uses_the_nfkc_protocol():
  samples = [heldout_en.Sample("a", "价格 128元", "mixed", "f"),
             heldout_en.Sample("b", "你好，世界", "chinese", "f"),
             heldout_en.Sample("c", "ABC", "latin", "f")]
  table = heldout_zh.accuracy_by_kind(samples, ["价格128元", "你好,世界", "ABc"])
  assert table["all"]["correct"] == 2 and table["latin"]["accuracy"] == 0.0
  assert table["mixed"]["accuracy"] == table["chinese"]["accuracy"] == 1.0
  assert table["latin"]["one_minus_ned"] == pytest.approx(2 / 3)


def test_repository_set_is_held_out_and_complete():
  samples = heldout_zh.read_test_set(HELDOUT_ZH)
  assert collections.Counter(s.kind for s in samples) == heldout_zh.DEFAULT_COUNTS
  for sample in samples:
    assert heldout_zh.line_kind_ok(sample.kind, sample.text), sample
    assert set(sample.text) <= CHARSET and 2 <= len(sample.text) <= 25
  assert {s.font.split("#")[0] for s in samples} == {"HanaMinA.ttf"}
  assert cjk_fonts.is_held_out_family("HanaMinA")
