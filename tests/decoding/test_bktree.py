"""Tests for crnn_jax.decoding.bktree: queries must equal a linear scan."""

import random
import string
import time

import editdistance
import pytest

from crnn_jax.decoding.bktree import BKTree


def _random_words(rng, count, alphabet="abcde", max_len=7):
  return [
      "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len))) for _ in range(count)
  ]


def _linear_query(words, query, max_distance):
  hits = {(editdistance.eval(query, w), w) for w in words}
  return sorted(h for h in hits if h[0] <= max_distance)


@pytest.mark.parametrize("seed", range(4))
def test_query_equals_linear_scan(seed):
  rng = random.Random(seed)
  alphabet = "abcde" if seed % 2 == 0 else string.ascii_lowercase[:8] + "éü中"
  words = _random_words(rng, 400, alphabet)
  tree = BKTree(words)
  assert len(tree) == len(set(words))
  queries = _random_words(rng, 30, alphabet, max_len=9) + rng.sample(words, 10) + [""]
  for query in queries:
    for max_distance in range(5):
      assert tree.query(query, max_distance) == _linear_query(words, query, max_distance), (
          query, max_distance)


@pytest.mark.parametrize("seed", range(3))
def test_nearest_equals_linear_scan(seed):
  rng = random.Random(100 + seed)
  words = _random_words(rng, 300, "abcdefg", max_len=8)
  tree = BKTree(words)
  for query in _random_words(rng, 40, "abcdefgxyz", max_len=12):
    dists = {w: editdistance.eval(query, w) for w in words}
    best = min(dists.values())
    assert tree.nearest(query) == sorted((best, w) for w, d in dists.items() if d == best)


def test_duplicates_membership_and_empty_tree():
  tree = BKTree(["cat", "cat", "cart", "dog"])
  assert tree.words == ["cat", "cart", "dog"]
  assert tree.add("cat") is False
  assert tree.add("cast") is True
  assert "cast" in tree and "cas" not in tree
  assert tree.query("cat", 1) == [(0, "cat"), (1, "cart"), (1, "cast")]
  empty = BKTree()
  assert empty.query("x", 3) == [] and empty.nearest("x") == [] and len(empty) == 0
  with pytest.raises(ValueError):
    tree.query("cat", -1)
  with pytest.raises(TypeError):
    tree.add(3)


def test_deep_tree_needs_no_recursion():
  # Distinct one-character words are all at distance 1 from each other, so the tree is a single
  # chain deeper than Python's default recursion limit.
  words = [chr(0x4E00 + i) for i in range(1500)]
  start = time.perf_counter()
  tree = BKTree(words)
  assert time.perf_counter() - start < 20
  assert tree.query(words[-1], 0) == [(0, words[-1])]
  assert len(tree.query("", 1)) == len(words)
  assert tree.nearest("xy") == [(2, w) for w in sorted(words)]
