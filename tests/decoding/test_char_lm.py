"""Tests of crnn_jax/decoding/char_lm.py: the character n-gram model of words."""

import collections
import math
import warnings

import numpy as np
import pytest

from crnn_jax.decoding import char_lm

WORDS = [("hello", 3.0), ("help", 1.0), ("world", 2.0), ("word", 0.5), ("a1", 1.0)]


def textbook_log_prob(words, order, text):
  """Interpolated Witten-Bell, written from the definition with dicts and recursion."""
  counts = collections.defaultdict(collections.Counter)
  for word, weight in words:
    padded = "^" * (order - 1) + word + "$"
    for i in range(order - 1, len(padded)):
      for k in range(order):
        counts[padded[i - k:i]][padded[i]] += weight

  def prob(history, char):
    if not history:
      return (counts[""][char] + 1) / (sum(counts[""].values()) + len(char_lm.ALPHABET) + 1)
    lower = prob(history[1:], char)
    if history not in counts:
      return lower
    total, distinct = sum(counts[history].values()), len(counts[history])
    return (counts[history][char] + distinct * lower) / (total + distinct)

  padded = "^" * (order - 1) + text + "$"
  return sum(math.log(prob(padded[i - order + 1:i], padded[i]))
             for i in range(order - 1, len(padded)))


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_log_prob_matches_the_textbook_definition(order):
  lm = char_lm.CharNgramLM(WORDS, order=order)
  texts = ["hello", "help", "helo", "wor", "zzz", "", "a1", "world9", "hellohello"]
  expected = [textbook_log_prob(WORDS, order, t) for t in texts]
  np.testing.assert_allclose(lm.log_prob(texts), expected, rtol=1e-10)


@pytest.mark.parametrize("history", ["^^^", "^^h", "hel", "zzq", "wor"])
def test_conditionals_sum_to_one(history):
  lm = char_lm.CharNgramLM(WORDS, order=4)
  ids = {"^": 1, **{c: i + 3 for i, c in enumerate(char_lm.ALPHABET)}}
  symbols = np.arange(2, 3 + len(char_lm.ALPHABET))  # The end symbol and every character.
  contexts = np.tile([ids[c] for c in history], (len(symbols), 1))
  assert lm.conditional(contexts, symbols).sum() == pytest.approx(1.0, abs=1e-12)


def test_words_are_normalized_and_weights_add():
  lm = char_lm.CharNgramLM([("Hello!", 2.0), ("HELLO", 1.0), ("...", 5.0)], order=3)
  assert lm.num_words == 1  # '...' normalizes to nothing.
  same = char_lm.CharNgramLM([("hello", 3.0)], order=3)
  np.testing.assert_allclose(lm.log_prob(["hello", "Help"]), same.log_prob(["HELLO", "help"]))
  assert char_lm.normalize("Café-24!") == "caf24"


def test_score_mixes_in_the_uniform_string_model():
  lm = char_lm.CharNgramLM(WORDS, order=3, fallback=0.1)
  pure = char_lm.CharNgramLM(WORDS, order=3, fallback=0.0)
  texts = ["hello", "q7x9zk2"]
  np.testing.assert_allclose(pure.score(texts), pure.log_prob(texts))
  mixture = np.exp(lm.score(texts))
  uniform = 0.1 * (len(char_lm.ALPHABET) + 1.0) ** -np.array([6.0, 8.0])
  np.testing.assert_allclose(mixture, 0.9 * np.exp(pure.log_prob(texts)) + uniform)
  # A word the model knows is carried by the model, a random string by the uniform part.
  assert lm.score(["hello"])[0] > math.log(0.9) + pure.log_prob(["hello"])[0] - 1e-9
  assert lm.score(["q7x9zk2"])[0] == pytest.approx(math.log(uniform[1]), abs=0.05)


def test_bad_arguments():
  with pytest.raises(ValueError, match="order"):
    char_lm.CharNgramLM(WORDS, order=0)
  with pytest.raises(ValueError, match="fallback"):
    char_lm.CharNgramLM(WORDS, fallback=1.0)
  with pytest.raises(ValueError, match="'word' has weight 0"):
    char_lm.CharNgramLM([("word", 0.0)])
  with pytest.raises(ValueError, match="no words"):
    char_lm.CharNgramLM(["!!", "---"])


def test_english_prefers_words_to_their_misreadings():
  lm = char_lm.english()
  assert lm.num_words > 90_000 and lm.order == char_lm.DEFAULT_ORDER
  pairs = [("center", "cfnter"), ("restaurant", "restauranr"), ("fitness", "fltness"),
           ("walnut", "wainut"), ("source", "souree")]
  right = lm.score([a for a, _ in pairs])
  wrong = lm.score([b for _, b in pairs])
  assert np.all(right > wrong + 2.0), (right, wrong)
  assert char_lm.english() is lm  # Built once.


def test_wordlist_hash_ignores_order_and_rounding_but_not_the_list():
  base = char_lm.wordlist_sha256(WORDS)
  assert char_lm.wordlist_sha256(WORDS[::-1]) == base
  nudged = [(w, x * (1 + 1e-9)) for w, x in WORDS]  # Below the 6 significant digits hashed.
  assert char_lm.wordlist_sha256(nudged) == base
  assert char_lm.wordlist_sha256(WORDS[:-1]) != base
  assert char_lm.wordlist_sha256([(w, x * 1.01) for w, x in WORDS]) != base


def test_installed_wordfreq_gives_the_recorded_word_list(recwarn):
  words = char_lm.english_words()
  assert len(words) == char_lm.DEFAULT_TOP_N
  assert char_lm.wordlist_sha256(words) == char_lm.ENGLISH_WORDLIST_SHA256
  assert char_lm.check_english_words(words)
  assert not [w for w in recwarn if issubclass(w.category, char_lm.LanguageModelVersionWarning)]


def test_another_word_list_warns_once(monkeypatch):
  wordfreq = pytest.importorskip("wordfreq")
  real = wordfreq.get_frequency_dict("en")
  changed = dict(real, the=real["the"] * 2)  # As a data update of wordfreq would.
  monkeypatch.setattr(wordfreq, "get_frequency_dict", lambda lang: changed)
  monkeypatch.setattr(char_lm, "_warned_about_version", False)
  char_lm.english.cache_clear()
  try:
    with pytest.warns(char_lm.LanguageModelVersionWarning,
                      match=r"wordfreq .* sha256 .* expected 4e30045524be1995"):
      char_lm.english(order=2)
    with warnings.catch_warnings():
      warnings.simplefilter("error", char_lm.LanguageModelVersionWarning)
      char_lm.english(order=3)  # Once per process.
  finally:
    char_lm.english.cache_clear()  # Later tests build the model of the real list.


# A large alphabet (12 bits per symbol) and its own characters: the same definition holds.
BIG_ALPHABET = "".join(chr(0x4E00 + i) for i in range(3000)) + "ab,"
BIG_WORDS = [("\u4e00\u4e01\u4e02", 2.0), ("\u4e00\u4e01", 1.0), ("a\u4e05b,", 1.5)]


def test_a_large_alphabet_matches_the_textbook_definition():
  order = 4
  lm = char_lm.CharNgramLM(BIG_WORDS, order=order, alphabet=BIG_ALPHABET)
  assert not lm.fold_case and lm._bits == 12  # pylint: disable=protected-access
  texts = ["\u4e00\u4e01\u4e02", "\u4e00\u4e02", "a\u4e05b,", "", "\u4e10\u4e11"]

  def textbook(text):
    counts = collections.defaultdict(collections.Counter)
    for word, weight in BIG_WORDS:
      padded = "^" * (order - 1) + word + "$"
      for i in range(order - 1, len(padded)):
        for k in range(order):
          counts[padded[i - k:i]][padded[i]] += weight

    def prob(history, char):
      if not history:
        return (counts[""][char] + 1) / (sum(counts[""].values()) + len(BIG_ALPHABET) + 1)
      lower = prob(history[1:], char)
      if history not in counts:
        return lower
      total, distinct = sum(counts[history].values()), len(counts[history])
      return (counts[history][char] + distinct * lower) / (total + distinct)

    padded = "^" * (order - 1) + text + "$"
    return sum(math.log(prob(padded[i - order + 1:i], padded[i]))
               for i in range(order - 1, len(padded)))

  np.testing.assert_allclose(lm.log_prob(texts), [textbook(t) for t in texts], rtol=1e-10)
  # Characters outside the alphabet are removed, case is kept.
  assert lm.normalize("A\u4e00x,") == "\u4e00,"
  with pytest.raises(ValueError, match=r"\[1, 5\]"):
    char_lm.CharNgramLM(BIG_WORDS, order=6, alphabet=BIG_ALPHABET)
  assert char_lm.max_order(char_lm.ALPHABET) == 10


@pytest.mark.slow
def test_chinese_model_prefers_lines_to_their_misreadings():
  pytest.importorskip("jieba")
  from crnn_jax.text import zh_charset  # pylint: disable=import-outside-toplevel
  lm = char_lm.chinese(num_lines=20_000)
  right = ["中华人民共和国", "价格128元", "北京市"]
  wrong = ["中华人民共和困", "价格l28元", "北京币"]
  assert all(lm.score(right) > lm.score(wrong))
  assert char_lm.for_charset(zh_charset.ZH_EN_CHARS).alphabet == char_lm.chinese().alphabet
  assert char_lm.for_charset("abc") is char_lm.english()
  assert char_lm.for_charset("\u00e9\u00e8") is None
