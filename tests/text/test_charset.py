"""Charset: encoding round trips, case folding, unknown characters, files."""

import pytest

from crnn_jax.text import charset as charset_lib
from crnn_jax.text.charset import BLANK_ID, Charset, UnknownCharacterError
from configs import default


def test_round_trip_and_blank():
  charset = Charset(charset_lib.ALPHANUMERIC_36)
  assert charset.num_classes == 37
  ids = charset.encode("hello42")
  assert BLANK_ID not in ids
  assert charset.decode(ids) == "hello42"
  assert charset.decode([0] + ids + [0]) == "hello42"  # Blanks are skipped.


def test_cjk_and_unicode_round_trip():
  charset = Charset("中文字符éß")
  assert charset.decode(charset.encode("字符中é")) == "字符中é"


def test_case_folding():
  folded = Charset("abc", fold_case=True)
  assert folded.encode("AbC") == [1, 2, 3]
  strict = Charset("abc", fold_case=False)
  assert not strict.can_encode("AbC")


def test_unknown_characters_error_names_the_label():
  charset = Charset("abc")
  with pytest.raises(UnknownCharacterError, match=r"'abx!'.*'!'.*'x'"):
    charset.encode("abx!")


def test_duplicate_and_empty_charsets_are_rejected():
  with pytest.raises(ValueError, match="repeats"):
    Charset("abca")
  with pytest.raises(ValueError, match="empty"):
    Charset("\n")


def test_charset_file(tmp_path):
  config = default.get_config().text
  path = tmp_path / "chars.txt"
  path.write_text("xyz\n中\n", encoding="utf-8")
  config.charset_file = str(path)
  config.fold_case = False
  charset = Charset.from_config(config)
  assert charset.chars == "xyz中"
  config.charset_file = str(tmp_path / "missing.txt")
  with pytest.raises(FileNotFoundError, match="missing.txt"):
    Charset.from_config(config)
