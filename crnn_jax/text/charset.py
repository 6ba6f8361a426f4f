"""The character set: maps text to class indices and back. Blank is class 0.

Also the home of the named alphabets (`ALPHANUMERIC_36`, `ALPHANUMERIC_62`).

A charset is any sequence of distinct Unicode characters (CJK included), given as a string in
the config or as a UTF-8 file. With `fold_case`, labels are lower-cased before encoding.
"""

from __future__ import annotations

import pathlib
import string
import unicodedata
from typing import Iterable, Sequence

BLANK_ID = 0

# The named alphabets (blank is class 0, not part of them).
ALPHANUMERIC_36 = string.digits + string.ascii_lowercase  # crnn.pytorch's; case folded
ALPHANUMERIC_62 = ALPHANUMERIC_36 + string.ascii_uppercase  # case-sensitive alphanumerics


class UnknownCharacterError(ValueError):
  """A label holds characters that are not in the charset."""

  def __init__(self, label: str, unknown: Sequence[str]):
    self.label = label
    self.unknown = tuple(unknown)
    super().__init__(
        f"label {label!r} has characters outside the charset: "
        + ", ".join(f"{c!r} (U+{ord(c):04X})" for c in self.unknown)
    )


class Charset:
  """Bidirectional map between characters and class indices 1..N (0 is the CTC blank).

  Attributes:
    chars: the characters, in class order (class i + 1 is chars[i]).
    fold_case: whether labels are lower-cased before encoding.
    num_classes: N + 1, the size of the model's output layer.
  """

  def __init__(self, chars: str | Iterable[str], fold_case: bool = False):
    chars = "".join(chars)
    # Line breaks and NUL can never be part of a single-line label.
    chars = "".join(c for c in chars if c not in "\r\n\x00")
    if not chars:
      raise ValueError("the charset is empty")
    seen = set()
    duplicates = sorted({c for c in chars if c in seen or seen.add(c)})
    if duplicates:
      raise ValueError(f"the charset repeats characters: {duplicates!r}")
    self.chars = chars
    self.fold_case = fold_case
    self._index = {c: i + 1 for i, c in enumerate(chars)}

  @classmethod
  def from_config(cls, text_config) -> "Charset":
    """Builds the charset of a `config.text` ConfigDict (charset string or charset_file)."""
    chars = text_config.charset
    if text_config.get("charset_file"):
      chars = read_charset_file(text_config.charset_file)
    return cls(chars, fold_case=bool(text_config.fold_case))

  @property
  def num_classes(self) -> int:
    return len(self.chars) + 1

  def normalize(self, text: str) -> str:
    """Unicode NFC normalization, then lower-casing when `fold_case` is set."""
    text = unicodedata.normalize("NFC", text)
    return text.lower() if self.fold_case else text

  def unknown_chars(self, text: str) -> list[str]:
    """The distinct characters of the normalized `text` that are not in the charset."""
    return sorted({c for c in self.normalize(text) if c not in self._index})

  def can_encode(self, text: str) -> bool:
    return not self.unknown_chars(text)

  def encode(self, text: str) -> list[int]:
    """Class indices (1..N) of the normalized text. Raises UnknownCharacterError."""
    text = self.normalize(text)
    try:
      return [self._index[c] for c in text]
    except KeyError:
      raise UnknownCharacterError(text, self.unknown_chars(text)) from None

  def decode(self, ids: Iterable[int]) -> str:
    """Text of a sequence of class indices; blanks (0) are skipped, repeats kept."""
    return "".join(self.chars[i - 1] for i in ids if i != BLANK_ID)

  def __len__(self) -> int:
    return len(self.chars)

  def __repr__(self) -> str:
    shown = self.chars if len(self.chars) <= 40 else self.chars[:40] + "..."
    return f"Charset({shown!r}, fold_case={self.fold_case})"


def read_charset_file(path: str | pathlib.Path) -> str:
  """The characters of a charset file (`config.text.charset_file`), in order.

  UTF-8 text; line breaks separate the characters and are not characters themselves (a line
  may hold one character, as `crnn_jax/text/charsets/zh_en.txt` does with the space on its
  first line, or several); a character listed again keeps its first place.

  Raises:
    FileNotFoundError: there is no such file.
    ValueError: the file holds no character.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"charset file {path} does not exist")
  chars = "".join(dict.fromkeys(path.read_text(encoding="utf-8").replace("\r\n", "\n")
                                .replace("\n", "")))
  if not chars:
    raise ValueError(f"charset file {path} holds no character")
  return chars
