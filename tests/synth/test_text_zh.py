"""The mixed Chinese/English text source: jieba's vocabulary, line contents, determinism."""

import dataclasses
import re

import numpy as np
import pytest

pytest.importorskip("jieba", reason="the zh text source needs jieba: pip install 'crnn-jax[zh]'")

from crnn_jax.text import zh_charset  # pylint: disable=wrong-import-position
from crnn_jax.synth import text_zh as zh_text  # pylint: disable=wrong-import-position

CHARSET = frozenset(zh_charset.ZH_EN_CHARS)
LEVEL1 = frozenset(zh_charset.LEVEL1_CHARS)
# Segments of one kind only, without marks, brackets or short-line bias.
ONLY = {kind: dataclasses.replace(
    zh_text.ZhTextMix(**{k: float(k == kind) for k in zh_text.SEGMENT_KINDS}),
    punctuation=0.0, brackets=0.0) for kind in zh_text.SEGMENT_KINDS}


@pytest.fixture(scope="module")
def lines():
  rng = np.random.default_rng(0)
  return [zh_text.sample_line(rng) for _ in range(3000)]


def test_jieba_vocabulary_is_in_the_charset():
  words, counts = zh_text.chinese_words()
  assert len(words) > 300_000 and len(words) == len(set(words)) == len(counts)
  assert all(set(w) <= CHARSET and " " not in w for w in words[::50])
  assert (counts > 0).all()
  assert "中国" in words and "T恤" in words
  assert "中國" not in words  # A traditional form: 國 is not in GB2312 level 1.


def test_level1_coverage_of_the_vocabulary():
  assert zh_text.level1_coverage() == zh_charset.LEVEL1_SIZE == 3755


def test_every_drawn_character_is_in_the_charset(lines):
  outside = {c for line in lines for c in line} - CHARSET
  assert not outside, sorted(outside)


def test_lengths_and_edges(lines):
  lengths = np.array([len(line) for line in lines])
  assert lengths.min() == 1 and lengths.max() == 25
  assert 0.3 < np.mean(lengths <= 8) < 0.8  # short_lines plus the short ones of the rest.
  assert all(line == line.strip() for line in lines)
  assert not any(line[-1] in "/-&" for line in lines)


def test_lines_mix_every_kind_of_text(lines):
  text = "".join(lines)
  assert len(set(text) & LEVEL1) > 2500  # Rare hanzi appear (uniform and sqrt draws).
  for needle in ("¥", "元", "$", "%", "年", "月", "，", "。", "、", ":", "-", ".", " "):
    assert needle in text, needle
  assert any(re.search(r"\d{4}年\d{1,2}月\d{1,2}日", line) for line in lines)
  assert any(re.search(r"\d{4}-\d\d-\d\d", line) for line in lines)
  assert any(re.search(r"[A-Z]{1,2}\d-\d{2,4}", line) for line in lines)
  assert any(re.search(r"[a-z]{3,}", line) for line in lines)
  mixed = [line for line in lines if set(line) & LEVEL1 and re.search(r"[A-Za-z0-9]", line)]
  assert len(mixed) > len(lines) / 4


def test_deterministic_per_generator_and_per_index():
  first = [zh_text.sample_line(np.random.default_rng(7)) for _ in range(3)]
  again = [zh_text.sample_line(np.random.default_rng(7)) for _ in range(3)]
  assert first == again
  rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
  assert [zh_text.sample_line(rng_a) for _ in range(200)] == [
      zh_text.sample_line(rng_b) for _ in range(200)]
  sampler = zh_text.ZhTextSampler(seed=3)
  forward = sampler.lines(50)
  assert [sampler.line(i) for i in reversed(range(50))] == forward[::-1]
  assert zh_text.ZhTextSampler(seed=3).lines(10, start=20) == forward[20:30]
  assert zh_text.ZhTextSampler(seed=4).lines(50) != forward


def test_length_bounds():
  rng = np.random.default_rng(1)
  long_lines = [zh_text.sample_line(rng, min_length=5, max_length=10) for _ in range(300)]
  assert all(5 <= len(line) <= 10 for line in long_lines)
  assert all(len(zh_text.sample_line(rng, max_length=2)) <= 2 for _ in range(300))


@pytest.mark.parametrize("kind, pattern", [
    ("number", r"[0-9][0-9.,\- ]*"),
    ("hanzi", "[" + zh_charset.LEVEL1_CHARS + "]+"),
    ("price", r"[0-9¥元$.,/ 斤件个份kg]+"),
    ("date", r"[0-9年月日:\-/. ]+"),
])
def test_single_kind_mixes(kind, pattern):
  rng = np.random.default_rng(2)
  for _ in range(300):
    line = zh_text.sample_line(rng, ONLY[kind])
    assert re.fullmatch(pattern, line), (kind, line)


def test_sqrt_frequency_draws_rarer_words():
  def distinct_chars(share):
    mix = dataclasses.replace(ONLY["chinese"], frequency_share=share)
    rng = np.random.default_rng(5)
    return len(set("".join(zh_text.sample_line(rng, mix) for _ in range(500))))
  assert distinct_chars(0.0) > 1.15 * distinct_chars(1.0)


def test_web2_english_vocabulary():
  mix = dataclasses.replace(ONLY["english"], english_vocabulary="web2")
  rng = np.random.default_rng(0)
  line = zh_text.sample_line(rng, mix, min_length=10)
  assert re.fullmatch(r"[A-Za-z ]+", line), line


@pytest.mark.parametrize("fields, message", [
    ({"chinese": -1.0}, "segment shares"),
    ({k: 0.0 for k in zh_text.SEGMENT_KINDS}, "segment shares"),
    ({"punctuation": 1.5}, "punctuation"),
    ({"english_vocabulary": "klingon"}, "english_vocabulary"),
])
def test_mix_validation(fields, message):
  with pytest.raises(ValueError, match=message):
    zh_text.ZhTextMix(**fields)


def test_length_validation():
  rng = np.random.default_rng(0)
  with pytest.raises(ValueError, match="min_length"):
    zh_text.sample_line(rng, min_length=0)
  with pytest.raises(ValueError, match="max_length"):
    zh_text.sample_line(rng, min_length=5, max_length=4)
  with pytest.raises(ValueError, match="min_length"):
    zh_text.ZhTextSampler(0, max_length=0)


def test_codes_leave_out_the_letters_digits_resemble():
  rng = np.random.default_rng(3)
  for _ in range(300):
    line = zh_text.sample_line(rng, ONLY["code"])
    latin = line[3:] if line.startswith("No.") else line  # 'No.' is a word, not a code.
    assert "I" not in latin and "O" not in latin, line
