"""The mixed Chinese/English/digit charset `zh_en` and the fold of width variants onto it.

The charset (3,871 characters, in class order):

  ' '                 the space, which mixed lines need ('iPhone 15', '5 kg', 'Hello World');
                      `Charset` keeps it as a class like any other character (only line breaks
                      and NUL are dropped), and the synthetic source never puts it at an edge;
  '!' .. '~'          the 94 printable ASCII characters (0x21-0x7E);
  '¥'                 U+00A5, the yuan sign of prices (¥128); its full-width form folds to it;
  CHINESE_PUNCTUATION ，。、；：？！“”‘’（）《》【】…—· (20 marks);
  GB2312 level 1      the 3,755 common hanzi (rows 16-55 of GB2312), in GB2312 (pinyin) order.

Width variants. ，？！：；（） are the full-width forms (U+FF0C, ...) of , ? ! : ; ( ), and the
charset holds both: Chinese print sets the full-width marks in a full em cell, so they look
unlike the ASCII marks of English text and numbers ('$9.99', 'A3-204'), and the text source
draws each where it belongs. `fold_fullwidth` maps every other East Asian width variant onto
the charset: the rest of the full-width ASCII block U+FF01-FF5E to ASCII (ＡＢＣ１２３ -> ABC123),
U+3000 to the space, ￥ to ¥, the half-width ｡､･ to 。、·, and the small and vertical forms
(﹐︐ -> ，, ︙ -> …); see `fold_fullwidth` for the exceptions to NFKC. An evaluation that, like
the usual Chinese benchmarks, does not tell the two widths apart can compare
`ascii_punctuation` of the prediction and the label.

Two code points differ from Python's `gb2312` codec, which decodes GB2312 0xA1A4 and 0xA1AA as
U+30FB (KATAKANA MIDDLE DOT) and U+2015 (HORIZONTAL BAR): the charset holds U+00B7 and U+2014,
as GBK and GB18030 decode them, and `fold_fullwidth` maps the other two onto them.

The file `charsets/zh_en.txt` (one character per line, the space on the first line) is
`config.text.charset_file`'s form of the same charset: `charset_file()` is its path, and

  python -m crnn_jax.text.zh_charset

writes it again from `zh_en_chars()` (a test checks that the two agree).
"""

from __future__ import annotations

import functools
import pathlib
import unicodedata


CHARSET_FILE = pathlib.Path(__file__).resolve().parent / "charsets" / "zh_en.txt"

LEVEL1_SIZE = 3755  # GB2312 level 1: 40 rows of 94 cells, less 5 unassigned at the end of row 55.
# GB2312 level 1 is rows 16-55: first byte 0xB0-0xD7, second byte 0xA1-0xFE.
_LEVEL1_FIRST_BYTES = range(0xB0, 0xD8)
_SECOND_BYTES = range(0xA1, 0xFF)

ASCII_PRINTABLE = "".join(chr(code) for code in range(0x21, 0x7F))  # The 94, without the space.
YUAN_SIGN = "\u00a5"
# The common Chinese punctuation. The first seven are full-width forms of ASCII marks (kept as
# such, see the module docstring); · is U+00B7 and — is U+2014 (GBK's decoding of GB2312).
CHINESE_PUNCTUATION = (
    "\uff0c\u3002\u3001\uff1b\uff1a\uff1f\uff01"  # ，。、；：？！
    "\u201c\u201d\u2018\u2019"  # “”‘’
    "\uff08\uff09\u300a\u300b\u3010\u3011"  # （）《》【】
    "\u2026\u2014\u00b7"  # …—·
)
# The full-width marks that the charset holds (fold_fullwidth leaves them alone).
KEPT_FULLWIDTH = "\uff0c\uff1b\uff1a\uff1f\uff01\uff08\uff09"  # ，；：？！（）

# Blocks whose width variants `fold_fullwidth` maps by their Unicode compatibility mapping.
_VARIANT_RANGES = (
    (0x3000, 0x3000),  # ideographic space
    (0xFE10, 0xFE19),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms (vertical brackets)
    (0xFE50, 0xFE6B),  # small form variants
    (0xFF01, 0xFF65),  # full-width ASCII, full-width brackets, half-width CJK punctuation
    (0xFFE0, 0xFFE6),  # full-width signs (￠￡￢￣￤￥￦)
)
_VARIANT_TAGS = ("<wide>", "<narrow>", "<small>", "<vertical>")
# Not width variants, but other code points of the same marks (see the module docstring).
EXTRA_FOLDS = {
    "\u30fb": "\u00b7",  # ・ KATAKANA MIDDLE DOT (Python's gb2312 for 0xA1A4) -> ·
    "\u2027": "\u00b7",  # ‧ HYPHENATION POINT, a middle dot in Taiwanese text -> ·
    "\u2015": "\u2014",  # ― HORIZONTAL BAR (Python's gb2312 for 0xA1AA) -> —
    "\u22ef": "\u2026",  # ⋯ MIDLINE HORIZONTAL ELLIPSIS -> …
}


def gb2312_level1() -> str:
  """The 3,755 hanzi of GB2312 level 1, in code order (by pinyin), from Python's codec.

  Raises:
    ValueError: the codec gives a count other than 3,755 (a different Python build).
  """
  chars = []
  for first in _LEVEL1_FIRST_BYTES:
    for second in _SECOND_BYTES:
      try:
        chars.append(bytes((first, second)).decode("gb2312"))
      except UnicodeDecodeError:  # The 5 unassigned cells 0xD7FA-0xD7FE.
        continue
  if len(chars) != LEVEL1_SIZE:
    raise ValueError(f"the gb2312 codec gives {len(chars)} level-1 characters, not {LEVEL1_SIZE}")
  return "".join(chars)


@functools.lru_cache(maxsize=None)
def zh_en_chars() -> str:
  """The zh_en charset in class order: space, ASCII, ¥, Chinese punctuation, GB2312 level 1."""
  return " " + ASCII_PRINTABLE + YUAN_SIGN + CHINESE_PUNCTUATION + gb2312_level1()


ZH_EN_CHARS = zh_en_chars()
LEVEL1_CHARS = ZH_EN_CHARS[-LEVEL1_SIZE:]


def charset_file() -> pathlib.Path:
  """The path of the packaged `zh_en.txt`, for `config.text.charset_file`."""
  return CHARSET_FILE


def charset_file_text(chars: str = ZH_EN_CHARS) -> str:
  """The text of a charset file: one character per line, each line ending with a newline."""
  return "".join(c + "\n" for c in chars)


def write_charset_file(path: str | pathlib.Path = CHARSET_FILE) -> pathlib.Path:
  """Writes the zh_en charset file (UTF-8) and returns its path."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(charset_file_text(), encoding="utf-8", newline="\n")
  return path


def _width_target(char: str) -> str | None:
  """The character of which `char` is a width variant (<wide>, <narrow>, <small>, <vertical>)."""
  decomposition = unicodedata.decomposition(char).split()
  if len(decomposition) != 2 or decomposition[0] not in _VARIANT_TAGS:
    return None
  return chr(int(decomposition[1], 16))


@functools.lru_cache(maxsize=None)
def fold_table() -> dict[int, str]:
  """The `str.translate` table of `fold_fullwidth`: code point -> replacement character."""
  to_fullwidth = {chr(ord(c) - 0xFEE0): c for c in KEPT_FULLWIDTH}  # ',' -> '，', ...
  table = {}
  for start, stop in _VARIANT_RANGES:
    for code in range(start, stop + 1):
      char = chr(code)
      target = _width_target(char)
      if char in KEPT_FULLWIDTH or target is None:
        continue
      target = EXTRA_FOLDS.get(target, target)
      # An East Asian form of , ; : ? ! ( ) is the Chinese mark, which the charset holds.
      table[code] = to_fullwidth.get(target, target)
  for char, target in EXTRA_FOLDS.items():
    table[ord(char)] = target
  return table


def fold_fullwidth(text: str) -> str:
  """Maps East Asian width variants onto the characters of the zh_en charset.

  It is NFKC restricted to width variants (the <wide>, <narrow>, <small> and <vertical>
  compatibility mappings of U+3000, U+FE10-FE6B and U+FF01-FFE6), with these exceptions:

  - ，；：？！（） stay (the charset holds them), and the small and vertical forms of , ; : ? ! ( )
    become them (﹐ and ︐ -> ，) where NFKC gives the ASCII mark;
  - the vertical ellipsis ︙ becomes … (NFKC gives '...'), and … itself stays (NFKC: '...');
  - ・ (U+30FB, also the target of the half-width ･) and ‧ (U+2027) become · (U+00B7), ― (U+2015)
    becomes — (U+2014) and ⋯ (U+22EF) becomes … (see EXTRA_FOLDS);
  - nothing outside those blocks changes: full NFKC would also rewrite ², ℃, ①, ﬁ and the CJK
    compatibility ideographs, which are other characters, not other widths.

  Args:
    text: any text, e.g. a label of a real dataset.

  Returns:
    The folded text, of the same length (every fold maps one character to one).
  """
  return text.translate(fold_table())


def ascii_punctuation(text: str) -> str:
  """`fold_fullwidth`, then ，；：？！（） to , ; : ? ! ( ): for scoring that ignores the width."""
  return fold_fullwidth(text).translate({ord(c): chr(ord(c) - 0xFEE0) for c in KEPT_FULLWIDTH})


if __name__ == "__main__":
  print(write_charset_file())
