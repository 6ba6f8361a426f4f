"""The zh_en charset: GB2312 level 1, the packaged file, and the fold of width variants."""

import unicodedata

import ml_collections
import pytest

from crnn_jax.text import zh_charset
from crnn_jax.text import charset as charset_lib
from crnn_jax.text.charset import Charset


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
  charset = Charset(zh_charset.ZH_EN_CHARS)
  assert charset.num_classes == 3872
  text = "2024年3月5日，售价¥128（含税）。Hello World!"
  assert charset.decode(charset.encode(text)) == text


def test_packaged_file_equals_the_computed_charset():
  path = zh_charset.charset_file()
  assert path.is_file(), "run: python -m crnn_jax.text.zh_charset"
  assert path.read_bytes() == zh_charset.charset_file_text().encode("utf-8")
  assert charset_lib.read_charset_file(path) == zh_charset.ZH_EN_CHARS
  assert path.read_text(encoding="utf-8").split("\n")[0] == " "  # The space's line survived.


def test_config_charset_file_loads_the_same_classes():
  config = ml_collections.ConfigDict(
      {"charset": "abc", "charset_file": str(zh_charset.charset_file()), "fold_case": False})
  assert Charset.from_config(config).chars == zh_charset.ZH_EN_CHARS


def test_write_and_read_charset_file(tmp_path):
  path = zh_charset.write_charset_file(tmp_path / "sub" / "zh_en.txt")
  assert path.read_bytes() == zh_charset.charset_file().read_bytes()
  several = tmp_path / "several.txt"
  several.write_text("ab\r\nc a\n\n", encoding="utf-8")  # Several a line, repeats, CRLF.
  assert charset_lib.read_charset_file(several) == "abc "
  empty = tmp_path / "empty.txt"
  empty.write_text("\n\n", encoding="utf-8")
  with pytest.raises(ValueError, match="no character"):
    charset_lib.read_charset_file(empty)
  with pytest.raises(FileNotFoundError):
    charset_lib.read_charset_file(tmp_path / "missing.txt")
