"""The English dictionary used for synthetic word images.

Words come from the `web2` list (Webster's Second International, ~235k words) of the
`english-words` PyPI package, lower-cased and restricted to the letters a-z.
"""

from __future__ import annotations

import functools
import re

_LOWER_ALPHA = re.compile(r"[a-z]+")


@functools.lru_cache(maxsize=None)
def english_words() -> tuple[str, ...]:
  """The dictionary words, lower-case a-z only, sorted and without duplicates.

  Returns:
    A tuple of words; its order is deterministic, so a word can be drawn by index.
  """
  from english_words import get_english_words_set  # pylint: disable=import-outside-toplevel

  words = get_english_words_set(["web2"], lower=True, alpha=True)
  return tuple(sorted(w for w in words if _LOWER_ALPHA.fullmatch(w)))


FREQUENT_WORDS = 100_000  # Size of the frequency-ranked vocabulary (wordfreq's English list).


@functools.lru_cache(maxsize=None)
def frequent_words(limit: int = FREQUENT_WORDS) -> tuple[tuple[str, ...], tuple[float, ...]]:
  """The `limit` most frequent English words (a-z only) of `wordfreq`, with their frequencies.

  wordfreq (PyPI, data in the package) ranks words by their frequency in subtitles, web text,
  Wikipedia, books and news; its list holds the words signs and print use, names and brands
  included, which Webster's 1934 `web2` list lacks.

  Returns:
    (words, frequencies): words in rank order (most frequent first), lower-case, unique;
    frequencies are wordfreq's (occurrences per word of text).

  Raises:
    ModuleNotFoundError: wordfreq is not installed (`pip install 'crnn-jax[scene]'`).
  """
  try:
    import wordfreq  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "the 'wordfreq' vocabulary needs the wordfreq package: pip install 'crnn-jax[scene]'"
    ) from e
  words = [w for w in wordfreq.top_n_list("en", 2 * limit) if _LOWER_ALPHA.fullmatch(w)]
  words = list(dict.fromkeys(words))[:limit]
  return tuple(words), tuple(wordfreq.word_frequency(w, "en") for w in words)
