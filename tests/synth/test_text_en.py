"""Tests of the English record texts (`text_en.EnTextSampler`)."""

import string

import numpy as np
import pytest

from crnn_jax.synth import text_en
from crnn_jax.synth import words as words_lib
from crnn_jax.synth.params import RenderParams
from crnn_jax.text.charset import Charset

CHARS_62 = string.digits + string.ascii_lowercase + string.ascii_uppercase
ALL_CODEPOINTS = frozenset(range(0x20, 0x2200))  # A font that draws every mark and sign.


def _sampler(chars=CHARS_62, **kwargs):
  return text_en.EnTextSampler(Charset(chars), RenderParams(**kwargs))


def _words(sampler, count):
  return [sampler.word(np.random.default_rng(i)) for i in range(count)]


def test_wordfreq_vocabulary_prefers_frequent_words():
  sampler = _sampler(vocabulary="wordfreq", lower_fraction=1.0, upper_fraction=0)
  words = _words(sampler, 400)
  common = set(words_lib.frequent_words()[0][:1000])
  # Uniform draws would take 1% from the 1,000 most frequent words; the sqrt(frequency) half
  # takes about 10% of its draws from them.
  assert sum(w in common for w in words) >= 12
  assert len(set(words)) > 250  # The other half are uniform over 100,000 words.
  assert set(words) <= set(sampler.words)


def test_length_balance_evens_out_word_lengths():
  kwargs = dict(vocabulary="wordfreq", max_length=14)
  plain, balanced = _sampler(**kwargs), _sampler(length_balance=1.0, **kwargs)
  def long_share(sampler):
    return np.mean([len(w) >= 11 for w in _words(sampler, 300)])
  assert long_share(balanced) > long_share(plain) + 0.15


@pytest.mark.parametrize("vocabulary", ["web2", "wordfreq"])
def test_words_fit_the_lengths_and_take_the_configured_case_forms(vocabulary):
  sampler = _sampler(vocabulary=vocabulary, min_length=3, max_length=6, lower_fraction=0.5,
                     upper_fraction=0.25)
  assert sampler.words and all(3 <= len(w) <= 6 and w.islower() for w in sampler.words)
  words = _words(sampler, 400)
  lower = sum(w.islower() for w in words)
  upper = sum(w.isupper() for w in words)
  capitalized = len(words) - lower - upper
  assert 150 < lower < 250 and 60 < upper < 140 and 60 < capitalized < 140
  assert {w.lower() for w in words} <= set(sampler.words)


def test_a_lower_case_charset_draws_lower_case_words_only():
  sampler = _sampler(chars=string.digits + string.ascii_lowercase, lower_fraction=0.0,
                     upper_fraction=1.0)
  assert all(w.islower() for w in _words(sampler, 50))


def test_random_strings_keep_spaces_off_the_edges():
  sampler = _sampler(chars="ab ", min_length=2, max_length=8)
  strings = [sampler.random_string(np.random.default_rng(i)) for i in range(200)]
  assert all(2 <= len(s) <= 8 and s[0] != " " and s[-1] != " " for s in strings)
  assert any(" " in s for s in strings)


def test_labels_follow_the_word_digit_and_string_fractions():
  sampler = _sampler(word_fraction=0.5, digit_fraction=0.3)
  labels = [sampler.label(np.random.default_rng(i)) for i in range(600)]
  words = set(sampler.words)
  digits = [text for text, is_digits in labels if is_digits]
  assert all(text.isdigit() for text in digits)
  assert 0.22 * 600 < len(digits) < 0.38 * 600
  n_words = sum(text.lower() in words for text, is_digits in labels if not is_digits)
  assert 0.42 * 600 < n_words < 0.6 * 600
  # A charset without digits draws random strings instead.
  letters = _sampler(chars=string.ascii_lowercase, word_fraction=0.0, digit_fraction=1.0)
  assert not any(letters.label(np.random.default_rng(i))[1] for i in range(30))


def test_decorate_draws_marks_the_label_leaves_out():
  sampler = _sampler(punctuation_fraction=1.0)
  marks = set(text_en.WORD_PREFIXES + text_en.WORD_SUFFIXES)
  for i in range(50):
    drawn, label = sampler.decorate(np.random.default_rng(i), "word", False, ALL_CODEPOINTS)
    assert label == "word" and drawn != "word"
    assert drawn.replace("word", "", 1) and set(drawn.replace("word", "", 1)) <= marks
  # A font without the marks draws the text alone.
  assert sampler.decorate(np.random.default_rng(0), "word", False,
                          frozenset(map(ord, CHARS_62))) == ("word", "word")


def test_decorate_draws_prices_with_a_sign_and_labels_their_digits():
  sampler = _sampler(price_fraction=1.0)
  signs = set(text_en.CURRENCY_SIGNS)
  for i in range(40):
    drawn, label = sampler.decorate(np.random.default_rng(i), "12345678", True, ALL_CODEPOINTS)
    assert label == "123456"
    assert sum(c in signs for c in drawn) == 1
    assert drawn.replace(".", "").strip("".join(signs)) == label
  # A font without currency signs draws the digits, uncut.
  assert sampler.decorate(np.random.default_rng(0), "12345678", True,
                          frozenset(map(ord, CHARS_62))) == ("12345678", "12345678")
