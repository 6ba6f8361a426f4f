"""The standard evaluation protocol of scene-text recognition, and the named benchmark sets.

The default protocol is the one of deep-text-recognition-benchmark (Baek et al., 2019) and
PARSeq (Bautista and Atienza, 2022):

  * case-insensitive: labels and predictions are lower-cased;
  * the 36-character alphanumeric set: characters outside it are removed from labels and
    predictions alike (`"CHANGE!!"` is compared as `change`; such labels are counted as
    *altered* in the results); a label left empty, or longer than 25 characters, does not
    count.

`Protocol(case_sensitive=True)` uses the 62 alphanumeric characters and compares case;
`Protocol(strip_labels=False)` skips labels with other characters instead of stripping them
(crnn-jax's protocol before 2026-12); `Protocol(filter_labels=False)` keeps every label and
compares the texts unchanged (but for NFC normalization and, unless case-sensitive,
lower-casing).

`NFKC` is the protocol of Chinese (and other CJK) text lines: every label counts; labels and
predictions are NFKC-normalized (full-width ＡＢＣ１２３ and ，？！ fold to ASCII, ㎏ to kg) and
their white space removed, then compared case-sensitively. Line accuracy and character-level
1 - NED are scored as for words.

Scores per dataset (`metrics.RecognitionMetrics` of the normalized texts): word accuracy,
1 - normalized edit distance (ICDAR 2019: the edit distance over the longer string's length,
averaged), mean confidence (the probability of the greedy CTC path), and the number of records
counted.

Benchmark sets are recognised by a directory name in their path (`.../IIIT5k_3000`,
`.../evaluation/IC15_2077/1.0.0`, ...) with their standard sizes, and totals are weighted by
count over the usual groups when all their members were evaluated.
"""

from __future__ import annotations

import dataclasses
import pathlib
import unicodedata
from typing import Any, Mapping, Sequence

from crnn_jax.data import records
from crnn_jax.text.charset import ALPHANUMERIC_36, ALPHANUMERIC_62
from crnn_jax.evaluation import metrics

MAX_LABEL_LENGTH = 25

# Standard sizes of the benchmark sets (as released by deep-text-recognition-benchmark).
BENCHMARKS = {
    "IIIT5k_3000": 3000,
    "SVT": 647,
    "IC03_860": 860,
    "IC03_867": 867,
    "IC13_857": 857,
    "IC13_1015": 1015,
    "IC15_1811": 1811,
    "IC15_2077": 2077,
    "SVTP": 645,
    "CUTE80": 288,
}
_ALIASES = {name.lower(): name for name in BENCHMARKS}
_ALIASES.update({"iiit5k": "IIIT5k_3000", "svt_647": "SVT", "svtp_645": "SVTP",
                 "cute": "CUTE80", "cute80_288": "CUTE80", "ct80": "CUTE80"})

# Totals over the usual groups of benchmark sets, named by their number of images.
GROUPS = {
    # deep-text-recognition-benchmark's `benchmark_all_eval`: all ten sets.
    "total_12067": ("IIIT5k_3000", "SVT", "IC03_860", "IC03_867", "IC13_857", "IC13_1015",
                    "IC15_1811", "IC15_2077", "SVTP", "CUTE80"),
    # The total accuracy of the deep-text-recognition-benchmark paper.
    "total_8539": ("IIIT5k_3000", "SVT", "IC03_867", "IC13_1015", "IC15_2077", "SVTP",
                   "CUTE80"),
    # PARSeq's benchmark subset (ABINet's test sets) and full benchmark (TRBA's).
    "total_7248": ("IIIT5k_3000", "SVT", "IC13_857", "IC15_1811", "SVTP", "CUTE80"),
    "total_7672": ("IIIT5k_3000", "SVT", "IC13_1015", "IC15_2077", "SVTP", "CUTE80"),
}


def benchmark_name(path: str | pathlib.Path) -> str | None:
  """The benchmark set a path belongs to (its innermost component that names one), or None."""
  for part in reversed(pathlib.PurePath(str(path)).parts):
    name = _ALIASES.get(part.lower())
    if name:
      return name
  return None


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How labels are filtered and texts compared (see the module docstring)."""

  case_sensitive: bool = False
  filter_labels: bool = True
  max_label_length: int = MAX_LABEL_LENGTH
  strip_labels: bool = True  # Remove characters outside the charset (False: skip the label).
  unicode_form: str = "NFC"  # Normalization of labels and predictions ('NFC' or 'NFKC').
  ignore_whitespace: bool = False  # Remove white space from labels and predictions.

  def __post_init__(self):
    if self.unicode_form not in ("NFC", "NFKC"):
      raise ValueError(f"unicode_form must be 'NFC' or 'NFKC', got {self.unicode_form!r}")

  @property
  def charset(self) -> str | None:
    """The characters labels may have (None: any)."""
    if not self.filter_labels:
      return None
    return ALPHANUMERIC_62 if self.case_sensitive else ALPHANUMERIC_36

  @property
  def name(self) -> str:
    if self.unicode_form != "NFC" or self.ignore_whitespace:
      parts = [self.unicode_form.lower()] + (["no-space"] if self.ignore_whitespace else [])
      if self.filter_labels:
        parts.insert(0, "case-sensitive" if self.case_sensitive else "standard")
      elif not self.case_sensitive:
        parts.append("ignore-case")
      return "-".join(parts)
    if self.filter_labels:
      name = "case-sensitive" if self.case_sensitive else "standard"
      return name if self.strip_labels else name + "-skip"
    return "unfiltered" if self.case_sensitive else "unfiltered-ignore-case"

  def _normalize(self, text: str) -> str:
    text = unicodedata.normalize(self.unicode_form, text)
    if self.ignore_whitespace:
      text = "".join(text.split())
    return text if self.case_sensitive else text.lower()

  def label(self, text: str) -> str:
    """The label compared with predictions.

    Raises:
      records.BadRecord: (empty_label / unknown_chars / label_too_long) the record does not
        count.
    """
    return self.label_and_altered(text)[0]

  def label_and_altered(self, text: str) -> tuple[str, bool]:
    """The label compared with predictions, and whether stripping changed it.

    Raises:
      records.BadRecord: as `label`.
    """
    text = self._normalize(text)
    charset = self.charset
    if charset is None:
      return text, False
    altered = False
    if self.strip_labels:
      stripped = "".join(c for c in text if c in charset)
      altered = stripped != text
      if not stripped:
        raise records.BadRecord(records.EMPTY_LABEL,
                                f"label {text!r} has no character of the protocol's set")
      text = stripped
    records.check_text(text, allowed=charset.__contains__, max_length=self.max_label_length)
    return text, altered

  def prediction(self, text: str) -> str:
    """A prediction as compared with labels (characters outside the charset removed)."""
    text = self._normalize(text)
    charset = self.charset
    return text if charset is None else "".join(c for c in text if c in charset)

  def to_dict(self) -> dict[str, Any]:
    return dict(name=self.name, case_sensitive=self.case_sensitive,
                filter_labels=self.filter_labels, strip_labels=self.strip_labels,
                unicode_form=self.unicode_form, ignore_whitespace=self.ignore_whitespace,
                charset=self.charset,
                max_label_length=self.max_label_length if self.filter_labels else None)


STANDARD = Protocol()
CASE_SENSITIVE = Protocol(case_sensitive=True)
NFKC = Protocol(case_sensitive=True, filter_labels=False, unicode_form="NFKC",
                ignore_whitespace=True)


def group_totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
  """Totals over each of `GROUPS` whose sets all appear (by `benchmark`) in `rows`."""
  by_name = {row["benchmark"]: row for row in rows if row.get("benchmark")}
  totals = {}
  for group, members in GROUPS.items():
    if all(m in by_name for m in members):
      score = metrics.RecognitionMetrics()
      for m in members:
        score.add(metrics.RecognitionMetrics.from_vector(by_name[m]["sums"]))
      totals[group] = dict(members=list(members), **score.result())
  return totals


def _percent(x: float) -> str:
  return f"{100 * x:.2f}"


def markdown_table(results: Mapping[str, Any]) -> str:
  """A Markdown table of `evaluators.DatasetEvaluator` results: datasets, total, group totals."""
  lines = [
      f"Protocol: {results['protocol']['name']}",
      "",
      "| Dataset | Records | Counted | Labels altered | Word accuracy (%) | 1-NED (%) | "
      "Mean confidence | Skipped |",
      "|---|---:|---:|---:|---:|---:|---:|---|",
  ]

  def row(name, records_, entry, skipped=""):
    altered = entry.get("altered", "")
    lines.append(f"| {name} | {records_} | {entry['count']} | {altered} | "
                 f"{_percent(entry['word_accuracy'])} | {_percent(entry['one_minus_ned'])} | "
                 f"{entry['mean_confidence']:.3f} | {skipped} |")

  for entry in results["datasets"]:
    name = entry["name"]
    if entry.get("benchmark") and entry["benchmark"] != name:
      name = f"{name} ({entry['benchmark']})"
    records_ = str(entry["records"])
    expected = entry.get("expected_records")
    if expected is not None and expected != entry["records"]:
      records_ += f" (standard: {expected})"
    skipped = ", ".join(f"{r} {v['count']}" for r, v in entry["skipped"].items())
    row(name, records_, entry, skipped)
  total = results["total"]
  row("**Total**", str(total["records"]), total)
  lines_after = [] if "altered" not in total else [
      "", "Labels altered: counted labels from which the protocol removed characters outside "
      "its set (punctuation, spaces, accents; both label and prediction are stripped)."]
  for group, entry in results.get("groups", {}).items():
    row(f"{group} ({', '.join(entry['members'])})", "", entry)
  return "\n".join(lines + lines_after) + "\n"
