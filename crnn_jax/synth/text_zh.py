"""Lines of mixed Chinese, English and digits for the zh_en charset (`zh_charset`), offline.

A line is a run of segments of these kinds, drawn in the proportions of `ZhTextMix`:

  chinese   a word of jieba's bundled dictionary (dict.txt, ~349k words with counts, in the
            package: nothing is downloaded), by frequency or by the square root of frequency;
  english   a word of the 20,000 most frequent of `words.frequent_words` (wordfreq, by the
            square root of frequency) or of `words.english_words` (web2, uniformly), in
            lower, capitalized or upper case;
  number    1234, 3.14, 12,800, 400-820-8820;
  date      2024年3月5日, 2024-03-05, 2024/3/5, 2024.03.05, 3月5日, 09:30, 9:00-21:00;
  price     ¥128, ¥12.50, 128元, 12.5元, $9.99;
  unit      5kg, 500ml, 30%, 220V, 8折, 3楼, 第2章;
  code      A3-204, G1234, B2, 京A·12345, No.5;
  hanzi     1-4 characters drawn uniformly from GB2312 level 1, so that rare characters (those
            of few or rare words) appear too.

Between segments and after the last one a punctuation mark may follow: a Chinese mark
(，。、；：？！……——·) after Chinese text, an ASCII one after English and digits; a segment may
be wrapped in a pair of brackets or quotes of its script. Chinese segments join without a space,
Latin ones with one, and Chinese and Latin with one at `space_between_scripts`. Every character
of a line is in the zh_en charset.

`sample_line(rng)` is a pure function of the generator's state (the word lists depend only on
the installed jieba, wordfreq and english-words); `ZhTextSampler(seed).line(i)` is one of
(seed, i), seeded with `SeedSequence([seed, i])` like the synthetic source's records.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Callable

import numpy as np

from crnn_jax.synth import words as words_lib
from crnn_jax.text import zh_charset

SEGMENT_KINDS = ("chinese", "english", "number", "date", "price", "unit", "code", "hanzi")
ENGLISH_VOCABULARIES = ("wordfreq", "web2")
ENGLISH_WORDS = 20_000  # The most frequent wordfreq words drawn from (rarer ones are names).
MAX_ENGLISH_LENGTH = 12

# Marks after a segment, repeated by weight: ， most, then 。 and 、.
CHINESE_MARKS = ("，",) * 6 + ("。",) * 3 + ("、",) * 2 + ("；", "：", "？", "！", "……", "——", "·")
ASCII_MARKS = (", ",) * 3 + (". ", ": ", "; ", "! ", "? ", "/", "-", " - ", " & ")
CHINESE_PAIRS = ("“”", "‘’", "《》", "【】", "（）")
ASCII_PAIRS = ("()", '""', "''", "[]")

# Units after a number: Latin (5kg, 30%) and Chinese counters and measures (3楼, 8折).
LATIN_UNITS = ("kg", "g", "mg", "km", "m", "cm", "mm", "ml", "L", "W", "kW", "V", "A", "mAh",
               "Hz", "GB", "MB", "%", "%", "%", "x", "h", "min", "s", "MHz", "dB")
CHINESE_UNITS = ("公斤", "斤", "克", "米", "公里", "升", "毫升", "个", "件", "人", "天", "小时",
                 "分钟", "年", "月", "号", "楼", "层", "室", "路", "次", "折", "倍", "岁", "元")
CHINESE_ORDINALS = ("章", "页", "名", "届", "期", "号", "节", "条")
# Province abbreviations of Chinese licence plates (京A·12345).
PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# No I or O on plates, nor in the other codes: next to digits they cannot be told from 1 and 0
# (as in most serial numbers), so a label could not say which one the image shows.
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclasses.dataclass(frozen=True)
class ZhTextMix:
  """The proportions of a line's segments, marks and spaces (shares need not sum to 1).

  The defaults aim at three kinds of Chinese text: signs and shop fronts (short lines of a few
  words, prices, units, codes: 停车场 P2, 特价¥128), documents (longer runs of words with ，。、
  and dates: 2024年3月5日召开会议。) and screens (UI words next to English and numbers: WiFi 已连接,
  电量 30%, 09:30). Chinese words are the most of it, but every line kind of those three holds
  digits, so numbers, dates, prices and units together draw about a quarter of the segments.
  """

  chinese: float = 0.52
  english: float = 0.10
  number: float = 0.07
  date: float = 0.06
  price: float = 0.05
  unit: float = 0.06
  code: float = 0.06
  hanzi: float = 0.08  # Uniform level-1 characters: the rare ones appear as any.
  # Of Chinese words, this share is drawn by frequency (common words, as text has them), the
  # rest by the square root of frequency (rarer words and the characters only they hold).
  frequency_share: float = 0.5
  punctuation: float = 0.2  # A mark after a segment.
  brackets: float = 0.04  # A segment in a pair of brackets or quotes.
  space_between_scripts: float = 0.3  # A space between Chinese and Latin/digits (中文 ABC).
  short_lines: float = 0.4  # Lines of at most 8 characters (signs, screens); else up to max.
  english_vocabulary: str = "wordfreq"  # Or 'web2' (english-words, no wordfreq needed).

  def __post_init__(self):
    weights = [getattr(self, kind) for kind in SEGMENT_KINDS]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
      raise ValueError(f"segment shares must be >= 0 with a positive sum, got "
                       f"{dict(zip(SEGMENT_KINDS, weights))}")
    for name in ("frequency_share", "punctuation", "brackets", "space_between_scripts",
                 "short_lines"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
    if self.english_vocabulary not in ENGLISH_VOCABULARIES:
      raise ValueError(f"english_vocabulary must be one of {ENGLISH_VOCABULARIES}, "
                       f"got {self.english_vocabulary!r}")

  def segment_probabilities(self) -> np.ndarray:
    """The shares of SEGMENT_KINDS, normalized to sum to 1."""
    weights = np.array([getattr(self, kind) for kind in SEGMENT_KINDS], np.float64)
    return weights / weights.sum()


DEFAULT_MIX = ZhTextMix()


def jieba_dict_path() -> pathlib.Path:
  """The path of jieba's bundled dictionary (dict.txt), found without importing jieba.

  Raises:
    ModuleNotFoundError: jieba is not installed (`pip install 'crnn-jax[zh]'`).
    FileNotFoundError: the package has no dict.txt.
  """
  try:
    spec = importlib.util.find_spec("jieba")
  except (ImportError, ValueError):
    spec = None
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError(
        "Chinese word frequencies need the jieba package: pip install 'crnn-jax[zh]'",
        name="jieba")
  path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "dict.txt"
  if not path.is_file():
    raise FileNotFoundError(f"jieba's dictionary {path} does not exist")
  return path


@functools.lru_cache(maxsize=None)
def chinese_words() -> tuple[tuple[str, ...], np.ndarray]:
  """jieba's dictionary words made only of zh_en characters, with their counts.

  dict.txt lines are 'word count part-of-speech'; a word on several lines gets the sum of its
  counts. Words with a character outside the charset (traditional forms, GB2312 level 2,
  full-width Latin) are left out; words like 'T恤' and 'AA制' stay.

  Returns:
    (words, counts): words in the file's order, unique; counts as float64, shape [len(words)].

  Raises:
    ModuleNotFoundError: jieba is not installed.
    ValueError: a line of dict.txt is not 'word count [tag]'.
  """
  path = jieba_dict_path()
  allowed = frozenset(zh_charset.ZH_EN_CHARS) - {" "}
  counts: dict[str, int] = {}
  for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
    parts = line.split(" ")
    if len(parts) < 2 or not parts[1].isdigit():
      raise ValueError(f"{path}:{number}: expected 'word count [tag]', got {line!r}")
    word = parts[0]
    if word and all(c in allowed for c in word):
      counts[word] = counts.get(word, 0) + int(parts[1])
  return tuple(counts), np.array(list(counts.values()), np.float64)


def level1_coverage() -> int:
  """How many of the 3,755 GB2312 level-1 characters appear in the kept jieba words."""
  seen = set("".join(chinese_words()[0]))
  return sum(c in seen for c in zh_charset.LEVEL1_CHARS)


@functools.lru_cache(maxsize=None)
def _chinese_cdfs() -> tuple[np.ndarray, np.ndarray]:
  """Cumulative distributions over `chinese_words()`: by count and by the square root of count."""
  counts = chinese_words()[1]
  by_count = np.cumsum(counts)
  by_sqrt = np.cumsum(np.sqrt(counts))
  return by_count / by_count[-1], by_sqrt / by_sqrt[-1]


@functools.lru_cache(maxsize=None)
def _english_pool(vocabulary: str) -> tuple[tuple[str, ...], np.ndarray]:
  """English words of at most MAX_ENGLISH_LENGTH letters and the CDF they are drawn by."""
  if vocabulary == "wordfreq":
    words, freqs = words_lib.frequent_words()
    kept = [(w, f) for w, f in zip(words[:ENGLISH_WORDS], freqs) if len(w) <= MAX_ENGLISH_LENGTH]
    weights = np.sqrt(np.array([f for _, f in kept], np.float64))
    words = tuple(w for w, _ in kept)
  else:
    words = tuple(w for w in words_lib.english_words() if len(w) <= MAX_ENGLISH_LENGTH)
    weights = np.ones(len(words))
  cdf = np.cumsum(weights)
  return words, cdf / cdf[-1]


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> int:
  return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _pick(rng: np.random.Generator, options):
  return options[int(rng.integers(len(options)))]


def _digits(rng: np.random.Generator, count: int) -> str:
  """`count` random digits, the first not 0 when there are several."""
  first = str(rng.integers(1, 10)) if count > 1 else str(rng.integers(10))
  return first + "".join(str(d) for d in rng.integers(0, 10, count - 1))


def _amount(rng: np.random.Generator) -> str:
  """A quantity as signs print one: 5, 128, 12.5, 3.99, 1,280."""
  value = _digits(rng, int(rng.integers(1, 5)))
  roll = rng.random()
  if roll < 0.25:
    value += "." + "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 3))))
  elif roll < 0.35 and len(value) == 4:
    value = value[0] + "," + value[1:]
  return value


def _chinese(rng: np.random.Generator, mix: ZhTextMix) -> str:
  words = chinese_words()[0]
  by_count, by_sqrt = _chinese_cdfs()
  return words[_draw(rng, by_count if rng.random() < mix.frequency_share else by_sqrt)]


def _english(rng: np.random.Generator, mix: ZhTextMix) -> str:
  words, cdf = _english_pool(mix.english_vocabulary)
  word = words[_draw(rng, cdf)]
  roll = rng.random()
  if roll < 0.5:
    return word
  return word.capitalize() if roll < 0.8 else word.upper()


def _number(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  roll = rng.random()
  if roll < 0.5:
    return _digits(rng, int(rng.integers(1, 7)))
  if roll < 0.7:
    return f"{_digits(rng, int(rng.integers(1, 4)))}.{_digits(rng, int(rng.integers(1, 3)))}"
  if roll < 0.85:
    return f"{int(rng.integers(1000, 1_000_000)):,}"
  if roll < 0.92:
    return f"400-{_digits(rng, 3)}-{_digits(rng, 4)}"
  return f"1{rng.integers(3, 10)}{_digits(rng, 1)}-{_digits(rng, 4)}-{_digits(rng, 4)}"


def _date(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  year = int(rng.integers(1950, 2036))
  month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
  roll = rng.random()
  if roll < 0.3:
    return f"{year}年{month}月{day}日"
  if roll < 0.5:
    return f"{year}-{month:02d}-{day:02d}"
  if roll < 0.6:
    return f"{year}/{month}/{day}"
  if roll < 0.68:
    return f"{year}.{month:02d}.{day:02d}"
  if roll < 0.78:
    return f"{month}月{day}日"
  if roll < 0.83:
    return f"{year}年"
  hour = int(rng.integers(0, 24))
  minute = int(rng.integers(60)) if rng.random() < 0.4 else _pick(rng, (0, 0, 15, 30, 45))
  if roll < 0.93:
    return f"{hour:02d}:{minute:02d}" if rng.random() < 0.5 else f"{hour}:{minute:02d}"
  return f"{int(rng.integers(6, 12))}:{minute:02d}-{int(rng.integers(17, 24))}:00"


def _price(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  amount = _amount(rng)
  roll = rng.random()
  if roll < 0.4:
    return "¥" + amount
  if roll < 0.75:
    return amount + "元"
  if roll < 0.9:
    return f"${rng.integers(1, 100)}.{rng.integers(0, 100):02d}"
  return f"¥{amount}/{_pick(rng, ('斤', '件', '个', '份', 'kg'))}"


def _unit(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  roll = rng.random()
  if roll < 0.55:
    return _amount(rng) + _pick(rng, LATIN_UNITS)
  if roll < 0.9:
    return str(rng.integers(1, 100)) + _pick(rng, CHINESE_UNITS)
  return f"第{rng.integers(1, 100)}{_pick(rng, CHINESE_ORDINALS)}"


def _code(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  roll = rng.random()
  letters = "".join(_pick(rng, _PLATE_LETTERS) for _ in range(int(rng.integers(1, 3))))
  if roll < 0.35:
    return f"{letters}{_digits(rng, 1)}-{_digits(rng, int(rng.integers(2, 5)))}"
  if roll < 0.6:
    return letters + _digits(rng, int(rng.integers(1, 5)))
  if roll < 0.8:
    plate = "".join(_pick(rng, _PLATE_LETTERS + "0123456789") for _ in range(5))
    return f"{_pick(rng, PLATE_PROVINCES)}{_pick(rng, _PLATE_LETTERS)}·{plate}"
  if roll < 0.9:
    return f"No.{rng.integers(1, 1000)}"
  return f"{letters}{_digits(rng, 2)}{_pick(rng, _PLATE_LETTERS)}"


def _hanzi(rng: np.random.Generator, mix: ZhTextMix) -> str:
  del mix
  chars = zh_charset.LEVEL1_CHARS
  return "".join(chars[i] for i in rng.integers(0, len(chars), int(rng.integers(1, 5))))


_SEGMENTS: dict[str, Callable[[np.random.Generator, ZhTextMix], str]] = {
    "chinese": _chinese, "english": _english, "number": _number, "date": _date,
    "price": _price, "unit": _unit, "code": _code, "hanzi": _hanzi,
}
_HAN = frozenset(zh_charset.LEVEL1_CHARS)
_CJK = _HAN | frozenset(zh_charset.CHINESE_PUNCTUATION)
_DANGLING = " /-&"  # Marks that join two segments, taken off the end of a line.


def _joiner(rng: np.random.Generator, mix: ZhTextMix, left: str, right: str) -> str:
  """What goes between a line ending in `left` and a segment starting with `right`."""
  if left.isspace() or left in "/-":
    return ""
  if left in _CJK and right in _CJK:
    return ""  # Chinese text has no spaces.
  if left in _HAN or right in _HAN:  # A hanzi next to Latin or digits: 中文 ABC or 中文ABC.
    return " " if rng.random() < mix.space_between_scripts else ""
  if left in _CJK or right in _CJK:
    return ""  # No space next to a Chinese mark: ，ABC.
  return " "  # Two Latin tokens (words, numbers, codes) always need a space between them.


def sample_line(rng: np.random.Generator, mix: ZhTextMix = DEFAULT_MIX, *, min_length: int = 1,
                max_length: int = 25) -> str:
  """One line of mixed text, every character in the zh_en charset.

  Args:
    rng: the random generator; the line is a function of its state.
    mix: the proportions of segments, marks and spaces.
    min_length: the fewest characters (spaces included); short lines get level-1 hanzi added.
    max_length: the most characters; a line never starts or ends with a space.

  Returns:
    The line, min_length to max_length characters long.

  Raises:
    ValueError: min_length < 1 or max_length < min_length.
    ModuleNotFoundError: jieba (or wordfreq, for english_vocabulary='wordfreq') is missing.
  """
  if min_length < 1 or max_length < min_length:
    raise ValueError(f"need 1 <= min_length <= max_length, got min_length={min_length}, "
                     f"max_length={max_length}")
  if rng.random() < mix.short_lines:
    target = int(rng.integers(min_length, max(min_length, min(8, max_length)) + 1))
  else:
    target = int(rng.integers(min_length, max_length + 1))
  kinds_cdf = np.cumsum(mix.segment_probabilities())
  line = ""
  while len(line) < target:
    kind = SEGMENT_KINDS[_draw(rng, kinds_cdf)]
    segment = _SEGMENTS[kind](rng, mix)
    chinese = segment[-1] in _CJK
    if rng.random() < mix.brackets:
      pair = _pick(rng, CHINESE_PAIRS if chinese else ASCII_PAIRS)
      segment = pair[0] + segment + pair[1]
    if rng.random() < mix.punctuation:
      segment += _pick(rng, CHINESE_MARKS if chinese else ASCII_MARKS)
    joined = line + (_joiner(rng, mix, line[-1], segment[0]) if line else "") + segment
    if len(joined.rstrip()) > max_length:
      if not line:
        line = segment[:max_length]
      break
    line = joined
  line = line.strip().rstrip(_DANGLING)
  while len(line) < min_length:
    line += _hanzi(rng, mix)[0]
  return line[:max_length]


class ZhTextSampler:
  """Lines of `sample_line` by index: line i of seed s is a pure function of (s, i).

  Attributes:
    seed: the sampler's seed.
    mix, min_length, max_length: as in `sample_line`.
  """

  def __init__(self, seed: int, mix: ZhTextMix = DEFAULT_MIX, *, min_length: int = 1,
               max_length: int = 25):
    if min_length < 1 or max_length < min_length:
      raise ValueError(f"need 1 <= min_length <= max_length, got min_length={min_length}, "
                       f"max_length={max_length}")
    self.seed = int(seed)
    self.mix = mix
    self.min_length = int(min_length)
    self.max_length = int(max_length)

  def line(self, index: int) -> str:
    """Line `index`, drawn with a generator seeded by SeedSequence([seed, index])."""
    rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))
    return sample_line(rng, self.mix, min_length=self.min_length, max_length=self.max_length)

  def lines(self, count: int, start: int = 0) -> list[str]:
    """Lines start .. start + count - 1."""
    return [self.line(i) for i in range(start, start + count)]
