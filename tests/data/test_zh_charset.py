"""The zh_en charset: GB2312 level 1, the packaged file, and the fold of width variants."""

import unicodedata

import ml_collections
import pytest

from crnn_jax.data import zh_charset
from crnn_jax.data.charset import Charset


def test_level1_is_the_3755_hanzi_of_rows_16_to_55():
  level1 = zh_charset.gb2312_level1()
  assert len(level1) == 3755 == len(set(level1))
  assert level1 == zh_charset.LEVEL1_CHARS
  assert level1[0] == "啊" and level1[-1] == "座"  # B0A1 and D7F9, the last assigned cell.
  assert all(0x4E00 <= ord(c) <= 0x9FFF for c in level1)  # CJK Unified Ideographs only.
  for c in level1:
    first, second = c.encode("gb2312")
    assert 0xB0 <= first <= 0xD7 and 0xA1 <= second <= 0xFE, c
  assert "\u7684" in level1 and "\u4e2d" in level1  # 的, 中
  assert "\u4e8d" not in level1  # 亍 is level 2.


def test_charset_contents_and_order():
  chars = zh_charset.ZH_EN_CHARS
  assert len(chars) == 3871 == len(set(chars))
  assert chars[0] == " "
  assert chars[1:95] == "".join(chr(code) for code in range(0x21, 0x7F))
  assert chars[95] == "¥"
  assert chars[96:116] == "，。、；：？！“”‘’（）《》【】…—·"
  assert chars[116:] == zh_charset.LEVEL1_CHARS
  assert set(zh_charset.KEPT_FULLWIDTH) <= set(chars)
  assert "\u30fb" not in chars and "\u2015" not in chars  # gb2312's · and — are folded.
  assert all(unicodedata.normalize("NFC", c) == c for c in chars)  # Charset.normalize keeps all.
  charset = zh_charset.zh_en_charset()
  assert charset.num_classes == 3872
  text = "2024年3月5日，售价¥128（含税）。Hello World!"
  assert charset.decode(charset.encode(text)) == text


def test_packaged_file_equals_the_computed_charset():
  path = zh_charset.charset_file()
  assert path.is_file(), "run: python -m crnn_jax.data.zh_charset"
  assert path.read_bytes() == zh_charset.charset_file_text().encode("utf-8")
  assert zh_charset.read_charset_file(path) == zh_charset.ZH_EN_CHARS
  assert path.read_text(encoding="utf-8").split("\n")[0] == " "  # The space's line survived.


def test_config_charset_file_loads_the_same_classes():
  config = ml_collections.ConfigDict(
      {"charset": "abc", "charset_file": str(zh_charset.charset_file()), "fold_case": False})
  assert Charset.from_config(config).chars == zh_charset.ZH_EN_CHARS


def test_write_and_read_charset_file(tmp_path):
  path = zh_charset.write_charset_file(tmp_path / "sub" / "zh_en.txt")
  assert path.read_bytes() == zh_charset.charset_file().read_bytes()
  bad = tmp_path / "bad.txt"
  bad.write_text("a\nbc\n", encoding="utf-8")
  with pytest.raises(ValueError, match="exactly one character"):
    zh_charset.read_charset_file(bad)
  with pytest.raises(FileNotFoundError):
    zh_charset.read_charset_file(tmp_path / "missing.txt")


def test_fold_keeps_the_charset():
  assert zh_charset.fold_fullwidth(zh_charset.ZH_EN_CHARS) == zh_charset.ZH_EN_CHARS


def test_fold_of_the_fullwidth_ascii_block_is_nfkc_but_the_kept_marks():
  for code in range(0xFF01, 0xFF5F):
    char = chr(code)
    folded = zh_charset.fold_fullwidth(char)
    if char in zh_charset.KEPT_FULLWIDTH:
      assert folded == char
    else:
      assert folded == unicodedata.normalize("NFKC", char) == chr(code - 0xFEE0), hex(code)
      assert folded in zh_charset.ZH_EN_CHARS
  assert zh_charset.fold_fullwidth("\u3000") == " "
  assert zh_charset.fold_fullwidth("ＡＢＣ　１２３％") == "ABC 123%"


@pytest.mark.parametrize("variant, target", [
    ("\uffe5", "¥"),        # ￥ full-width yen
    ("\uff61", "。"),       # ｡ half-width full stop
    ("\uff64", "、"),       # ､ half-width ideographic comma
    ("\uff65", "·"),        # ･ half-width katakana middle dot
    ("\u30fb", "·"),        # ・ (Python's gb2312 for 0xA1A4)
    ("\u2027", "·"),
    ("\u2015", "—"),        # ― (Python's gb2312 for 0xA1AA)
    ("\u22ef", "…"),
    ("\ufe19", "…"),        # ︙ vertical ellipsis; NFKC would give '...'
    ("\ufe50", "，"),       # ﹐ small comma; NFKC would give ','
    ("\ufe10", "，"),       # ︐ vertical comma
    ("\ufe56", "？"),       # ﹖ small question mark
    ("\ufe35", "（"),       # ︵ vertical parenthesis
    ("\ufe3d", "《"),       # ︽
    ("\ufe3b", "【"),       # ︻
    ("\ufe31", "—"),        # ︱ vertical em dash
])
def test_fold_maps_variants_to_the_charset_form(variant, target):
  assert zh_charset.fold_fullwidth(variant) == target
  assert target in zh_charset.ZH_EN_CHARS


def test_fold_leaves_other_characters():
  text = "…℃²①ﬁ\uf900Ａ"  # NFKC would change all of these; the fold only the last.
  assert zh_charset.fold_fullwidth(text) == "…℃²①ﬁ\uf900A"


def test_fold_is_idempotent_and_lands_in_the_charset_for_charset_variants():
  charset = set(zh_charset.ZH_EN_CHARS)
  for code, target in zh_charset.fold_table().items():
    assert len(target) == 1
    assert zh_charset.fold_fullwidth(target) == target, hex(code)
    nfkc = unicodedata.normalize("NFKC", chr(code))
    if nfkc in charset:
      assert target in charset, hex(code)


def test_ascii_punctuation_for_width_blind_scoring():
  assert zh_charset.ascii_punctuation("你好，世界！（测试）：是；否？") == "你好,世界!(测试):是;否?"
  assert zh_charset.ascii_punctuation("“引号”。") == "“引号”。"
