"""A BK-tree (Burkhard-Keller tree) over strings under the Levenshtein distance.

Finds all lexicon words within a given edit distance of a query without scanning the whole
lexicon, as used by the CRNN paper's lexicon-based decoding (Shi et al. 2015, Sec. 2.3.2).
Every node stores one word; the child reached through edge `d` holds words at distance exactly
`d` from its parent. By the triangle inequality, a query `q` with radius `r` only needs to
descend into the children whose edge `d` lies in `[dist(q, node) - r, dist(q, node) + r]`.

Construction and queries are iterative, so lexicons of any size (and any tree depth) are fine.
The metric is `editdistance.eval` (unit-cost insertions, deletions and substitutions, on
Unicode code points).
"""

from __future__ import annotations

from typing import Iterable

import editdistance


class BKTree:
  """A BK-tree over a set of distinct strings.

  Attributes:
    words: the distinct words in insertion order (duplicates of `words` are stored once).
  """

  def __init__(self, words: Iterable[str] = ()):
    """Builds the tree.

    Args:
      words: the strings to index; duplicates are ignored.
    """
    self.words: list[str] = []
    # _children[i] maps an edge distance to the index of the child node of node i.
    self._children: list[dict[int, int]] = []
    for word in words:
      self.add(word)

  def __len__(self) -> int:
    return len(self.words)

  def __contains__(self, word: str) -> bool:
    return bool(self.query(word, 0))

  def add(self, word: str) -> bool:
    """Inserts `word`; returns False if it was already in the tree."""
    if not isinstance(word, str):
      raise TypeError(f"BKTree holds strings, got {type(word).__name__}")
    if not self.words:
      self.words.append(word)
      self._children.append({})
      return True
    node = 0
    while True:
      d = editdistance.eval(word, self.words[node])
      if d == 0:
        return False
      children = self._children[node]
      child = children.get(d)
      if child is None:
        children[d] = len(self.words)
        self.words.append(word)
        self._children.append({})
        return True
      node = child

  def query(self, word: str, max_distance: int) -> list[tuple[int, str]]:
    """All stored words within `max_distance` edits of `word`.

    Args:
      word: the query string.
      max_distance: the largest edit distance to report (>= 0).

    Returns:
      (distance, word) pairs, sorted by distance, then word.
    """
    if max_distance < 0:
      raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    if not self.words:
      return []
    found = []
    words, all_children = self.words, self._children
    span = 2 * max_distance + 1
    stack = [0]
    while stack:
      node = stack.pop()
      d = editdistance.eval(word, words[node])
      if d <= max_distance:
        found.append((d, words[node]))
      children = all_children[node]
      if not children:
        continue
      lo, hi = d - max_distance, d + max_distance
      if len(children) <= span:
        stack.extend(c for edge, c in children.items() if lo <= edge <= hi)
      else:
        for edge in range(max(lo, 1), hi + 1):
          c = children.get(edge)
          if c is not None:
            stack.append(c)
    found.sort()
    return found

  def nearest(self, word: str) -> list[tuple[int, str]]:
    """The stored words at the smallest edit distance from `word` (all ties).

    Branch and bound: the search radius shrinks to the best distance found so far.

    Args:
      word: the query string.

    Returns:
      (distance, word) pairs sharing the minimal distance, sorted by word; empty if the tree is
      empty.
    """
    if not self.words:
      return []
    best = None
    found: list[str] = []
    words, all_children = self.words, self._children
    stack = [0]
    while stack:
      node = stack.pop()
      d = editdistance.eval(word, words[node])
      if best is None or d < best:
        best, found = d, [words[node]]
      elif d == best:
        found.append(words[node])
      lo, hi = d - best, d + best
      stack.extend(c for edge, c in all_children[node].items() if lo <= edge <= hi)
    return [(best, w) for w in sorted(found)]
