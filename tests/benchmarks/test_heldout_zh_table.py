"""Tests of benchmarks/heldout_zh.py: its table of NFKC line accuracy per kind."""

import pytest

pytest.importorskip("jieba", reason="heldout_zh needs jieba: pip install 'crnn-jax[zh]'")

from crnn_jax.evaluation import heldout_en  # pylint: disable=wrong-import-position
# The set's module, beside the `heldout_zh` fixture (the benchmark script).
from crnn_jax.evaluation import heldout_zh as heldout_zh_set  # pylint: disable=wrong-import-position


def test_markdown_rows_per_kind(heldout_zh):
  samples = [heldout_en.Sample("a", "价格 128元", "mixed", "f"),
             heldout_en.Sample("b", "ＡＢＣ", "latin", "f")]
  tables = {"reader": heldout_zh_set.accuracy_by_kind(samples, ["价格128元", "ABD"])}
  table = heldout_zh.markdown(tables, {"reader": 0.01})
  header, rule, row = table.strip().split("\n")
  assert header == "| system | all | chinese | mixed | latin | punctuation | s/line |"
  assert rule.count("|") == 8
  # all: 1 of 2 right; NED 0 and 1/3. No chinese or punctuation lines: '-'.
  assert row == "| reader | 50.0 / 83.3 | - | 100.0 / 100.0 | 0.0 / 66.7 | - | 0.0100 |"
