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
