"""Tests of the standard evaluation protocol, its scores and the named benchmark sets."""

import pytest

from crnn_jax import evaluation
from crnn_jax.text import charset as charset_lib
from crnn_jax.data import records
from crnn_jax.evaluation import protocol


def _reason(p, text):
  with pytest.raises(records.BadRecord) as info:
    p.label(text)
  return info.value.reason


def test_standard_protocol_is_case_insensitive_alphanumeric_up_to_25():
  p = protocol.STANDARD
  assert p.name == "standard" and p.charset == charset_lib.ALPHANUMERIC_36
  assert p.label("Hello") == "hello" and p.label("A" * 25) == "a" * 25
  # As deep-text-recognition-benchmark and PARSeq: other characters are stripped, not skipped.
  assert p.label_and_altered("don't") == ("dont", True)
  assert p.label_and_altered("Two Words") == ("twowords", True)
  assert p.label_and_altered("Abc") == ("abc", False)  # Lower-casing is not an alteration.
  assert p.label("703/04") == "70304" and p.label("caf\u00e9") == "caf"
  assert _reason(p, "!!") == "empty_label"
  assert _reason(p, "A" * 26) == "label_too_long"
  assert p.label("A" * 25 + "!!") == "a" * 25  # The length counts after stripping.
  assert p.prediction("HeLLo!") == "hello" and p.prediction("a-b c") == "abc"


def test_skip_protocol_keeps_the_old_rule():
  p = protocol.Protocol(strip_labels=False)
  assert p.name == "standard-skip" and p.to_dict()["strip_labels"] is False
  assert _reason(p, "don't") == "unknown_chars"
  assert _reason(p, "two words") == "unknown_chars"
  assert p.label_and_altered("Hello") == ("hello", False)


def test_case_sensitive_and_unfiltered_protocols():
  cs = protocol.CASE_SENSITIVE
  assert cs.name == "case-sensitive" and len(cs.charset) == 62
  assert cs.label("Hello") == "Hello" and cs.prediction("Hel-lo") == "Hello"
  assert cs.label_and_altered("Hello!") == ("Hello", True)
  raw = protocol.Protocol(case_sensitive=True, filter_labels=False)
  assert raw.name == "unfiltered" and raw.charset is None
  assert raw.label("Don't stop!" * 5) == "Don't stop!" * 5
  assert raw.prediction("e\u0301") == "\u00e9"  # NFC only.
  loose = protocol.Protocol(filter_labels=False)
  assert loose.label("Don't") == "don't" and loose.name == "unfiltered-ignore-case"


@pytest.mark.parametrize("path,name", [
    ("data_lmdb_release/evaluation/IIIT5k_3000", "IIIT5k_3000"),
    ("/x/tfds/crnn_lmdb/IC15_2077/1.0.0", "IC15_2077"),
    ("/x/evaluation/cute80", "CUTE80"),
    ("/x/SVTP/gt.txt", "SVTP"),
    ("/x/svt", "SVT"),
    ("/x/IC13_857", "IC13_857"),
    ("/x/IC03_860", "IC03_860"),
    ("/x/my_lines", None),
    ("/x/SVTPX", None),
])
def test_benchmark_names(path, name):
  assert protocol.benchmark_name(path) == name


def test_benchmark_sizes_and_group_totals():
  sizes = protocol.BENCHMARKS
  assert sizes["IIIT5k_3000"] == 3000 and sizes["SVT"] == 647 and sizes["SVTP"] == 645
  assert (sizes["IC03_860"], sizes["IC03_867"]) == (860, 867)
  assert (sizes["IC13_857"], sizes["IC13_1015"]) == (857, 1015)
  assert (sizes["IC15_1811"], sizes["IC15_2077"]) == (1811, 2077)
  assert sizes["CUTE80"] == 288
  for group, members in protocol.GROUPS.items():
    assert group == f"total_{sum(sizes[m] for m in members)}"
  rows = []
  for i, name in enumerate(protocol.GROUPS["total_7248"]):
    # Dataset i: 10 records, i of them right.
    score = evaluation.RecognitionMetrics(count=10, correct=i, sum_ned=0.5 * i,
                                          sum_confidence=5.0)
    rows.append(dict(benchmark=name, sums=score.as_vector()))
  totals = protocol.group_totals(rows)
  assert list(totals) == ["total_7248"]  # The other groups lack members.
  assert totals["total_7248"]["count"] == 60
  assert totals["total_7248"]["word_accuracy"] == pytest.approx(15 / 60)
  assert totals["total_7248"]["mean_confidence"] == pytest.approx(0.5)


def test_markdown_table():
  row = dict(name="IIIT5k_3000", benchmark="IIIT5k_3000", expected_records=3000, records=12,
             count=10, altered=3, word_accuracy=0.5, one_minus_ned=0.75, mean_confidence=0.625,
             skipped={"empty_label": {"count": 2, "first": []}})
  results = dict(protocol=protocol.STANDARD.to_dict(), datasets=[row],
                 total=dict(records=12, count=10, altered=3, word_accuracy=0.5,
                            one_minus_ned=0.75, mean_confidence=0.625), groups={})
  table = protocol.markdown_table(results)
  assert "Protocol: standard" in table
  assert ("| IIIT5k_3000 | 12 (standard: 3000) | 10 | 3 | 50.00 | 75.00 | 0.625 | "
          "empty_label 2 |") in table
  assert "| **Total** | 12 | 10 | 3 | 50.00 | 75.00 | 0.625 |  |" in table
  assert "Labels altered: counted labels from which the protocol removed" in table


def test_nfkc_protocol_folds_width_and_drops_white_space():
  p = protocol.NFKC
  assert p.name == "nfkc-no-space" and p.charset is None
  assert p.to_dict()["unicode_form"] == "NFKC" and p.to_dict()["ignore_whitespace"] is True
  # Every label counts, whatever its characters; full-width forms and spaces do not matter.
  assert p.label_and_altered("iPhone 15 手机") == ("iPhone15手机", False)
  assert p.label("ＡＢＣ１２３，价格") == "ABC123,价格"
  assert p.prediction("ABC 123, 价格") == p.label("ＡＢＣ１２３，价格")
  assert p.label("5\u338f") == "5kg"  # ㎏
  assert p.label("Hello") != p.prediction("hello")  # Case is compared.
  assert p.label("x" * 40) == "x" * 40  # No length limit: lines are long.
  score = evaluation.RecognitionMetrics()
  score.update([p.prediction("价格 128元"), p.prediction("2024年")],
               [p.label("价格128元"), p.label("2O24年")], [0.9, 0.5])
  assert score.result()["word_accuracy"] == 0.5
  assert score.result()["one_minus_ned"] == pytest.approx(1 - (0 + 1 / 5) / 2)
  # The other protocols keep NFC and white space.
  assert protocol.Protocol(case_sensitive=True, filter_labels=False).label("ＡＢ c") == "ＡＢ c"
  assert protocol.Protocol(ignore_whitespace=True).name == "standard-nfc-no-space"
  with pytest.raises(ValueError, match="unicode_form"):
    protocol.Protocol(unicode_form="NFD")
