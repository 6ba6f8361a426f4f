"""Raw text-line records: validation, image decoding and the report of skipped records.

Every dataset reader (LMDB, ArrayRecord, folders, MJSynth) yields raw records, dicts of

  key:   str, where the record comes from (for example `IIIT5k_3000/000000042` or a file path).
  image: encoded image bytes, a uint8 `[H, W]` or `[H, W, C]` array, or None when missing.
  label: the label as UTF-8 bytes or str, or None when missing.
  missing: optional reason name, set when the record itself is absent (see `REASONS`).

`parse_record` turns one into a grayscale uint8 `[H, W]` image and its label, or raises
`BadRecord` naming why the record must be skipped. Bad data never stops a build, a training
run or an evaluation: it is skipped and counted per reason in a `SkipReport`.
"""

from __future__ import annotations

import collections
import io
import re
import unicodedata
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from PIL import Image

from crnn_jax.data import preprocess

# Why a record is skipped. The position of a reason is its column in `batch['skipped']`.
MISSING_RECORD = "missing_record"  # Index below num-samples, but no key of the record exists.
MISSING_KEY = "missing_key"  # Only one of image-%09d / label-%09d exists.
MISSING_FILE = "missing_file"  # An annotation names an image file that does not exist.
MALFORMED_LINE = "malformed_line"  # An annotation line that cannot be parsed.
INVALID_UTF8 = "invalid_utf8"
EMPTY_LABEL = "empty_label"
UNKNOWN_CHARS = "unknown_chars"  # Characters outside the charset.
LABEL_TOO_LONG = "label_too_long"  # Longer than the limit, or than the image's CTC frames.
EMPTY_IMAGE = "empty_image"  # Zero bytes or zero pixels.
UNDECODABLE_IMAGE = "undecodable_image"  # Not an image, truncated or corrupt.

REASONS = (MISSING_RECORD, MISSING_KEY, MISSING_FILE, MALFORMED_LINE, INVALID_UTF8,
           EMPTY_LABEL, UNKNOWN_CHARS, LABEL_TOO_LONG, EMPTY_IMAGE, UNDECODABLE_IMAGE)
REASON_INDEX = {reason: i for i, reason in enumerate(REASONS)}
# Files read as images where a folder of them is given (the suffixes Pillow reads).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                  ".ppm", ".pbm")


class BadRecord(ValueError):
  """A record that must be skipped.

  Attributes:
    reason: one of `REASONS`.
    detail: a short human-readable explanation.
  """

  def __init__(self, reason: str, detail: str = ""):
    if reason not in REASON_INDEX:
      raise ValueError(f"unknown skip reason {reason!r}")
    self.reason = reason
    self.detail = detail
    super().__init__(f"{reason}: {detail}" if detail else reason)


def decode_label(label: bytes | str | None) -> str:
  """UTF-8 bytes or str -> NFC-normalized str without line breaks. Raises BadRecord."""
  if label is None:
    raise BadRecord(MISSING_KEY, "no label")
  if isinstance(label, (bytes, bytearray, memoryview)):
    try:
      label = bytes(label).decode("utf-8")
    except UnicodeDecodeError as e:
      raise BadRecord(INVALID_UTF8, f"label bytes {bytes(label)[:40]!r}: {e.reason}") from None
  text = unicodedata.normalize("NFC", str(label)).strip("\r\n")
  if not text.strip():
    raise BadRecord(EMPTY_LABEL, f"label {text!r}")
  return text


def decode_image(image: bytes | np.ndarray | Image.Image | None) -> np.ndarray:
  """Encoded bytes, an array or a PIL image -> uint8 grayscale `[H, W]`. Raises BadRecord."""
  if image is None:
    raise BadRecord(MISSING_KEY, "no image")
  if isinstance(image, (bytes, bytearray, memoryview)):
    data = bytes(image)
    if not data:
      raise BadRecord(EMPTY_IMAGE, "0 bytes")
    try:
      # Decoded in colour, then to grayscale as every other path does (`inference.load_image`,
      # the renderer): a JPEG's own luma plane differs by up to 32 levels on real crops, so
      # eval and predict would read different images.
      with Image.open(io.BytesIO(data)) as pil:
        pil.load()
        if pil.width == 0 or pil.height == 0:
          raise BadRecord(EMPTY_IMAGE, f"{pil.width}x{pil.height} pixels")
        return preprocess.to_grayscale(pil)
    except BadRecord:
      raise
    except Exception as e:  # pylint: disable=broad-except
      # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ... on bad data.
      message = re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e))
      raise BadRecord(UNDECODABLE_IMAGE, f"{type(e).__name__}: {message}"[:200]) from None
  if isinstance(image, Image.Image):
    if image.width == 0 or image.height == 0:
      raise BadRecord(EMPTY_IMAGE, f"{image.width}x{image.height} pixels")
    return preprocess.to_grayscale(image)
  array = np.asarray(image)
  if array.size == 0:
    raise BadRecord(EMPTY_IMAGE, f"shape {array.shape}")
  try:
    return preprocess.to_grayscale(array)
  except ValueError as e:
    raise BadRecord(UNDECODABLE_IMAGE, str(e)) from None


def check_text(text: str, *, allowed: Callable[[str], bool] | None = None,
               max_length: int = 0) -> None:
  """Raises BadRecord if `text` has characters `allowed` rejects or exceeds `max_length`."""
  if allowed is not None:
    bad = sorted({c for c in text if not allowed(c)})
    if bad:
      raise BadRecord(UNKNOWN_CHARS, f"label {text!r} has " + ", ".join(
          f"{c!r} (U+{ord(c):04X})" for c in bad[:5]))
  if max_length and len(text) > max_length:
    raise BadRecord(LABEL_TOO_LONG, f"label of {len(text)} > {max_length} characters")


def parse_record(record: Mapping[str, Any], *, allowed: Callable[[str], bool] | None = None,
                 max_length: int = 0) -> tuple[np.ndarray, str]:
  """Validates and decodes a raw record (labels are checked first: they are cheaper).

  Args:
    record: a raw record (see the module docstring).
    allowed: optional predicate on characters; labels with others are skipped.
    max_length: if positive, the longest allowed label.

  Returns:
    (uint8 `[H, W]` grayscale image, NFC label).

  Raises:
    BadRecord: the record must be skipped.
  """
  missing = record.get("missing")
  if missing:
    raise BadRecord(missing, record.get("detail", ""))
  text = decode_label(record.get("label"))
  check_text(text, allowed=allowed, max_length=max_length)
  return decode_image(record.get("image")), text


def encode_png(image: np.ndarray) -> bytes:
  """uint8 `[H, W]` grayscale -> PNG bytes."""
  buffer = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(image, np.uint8), mode="L").save(
      buffer, format="PNG", compress_level=3)
  return buffer.getvalue()


def ctc_frames_needed(ids: Iterable[int]) -> int:
  """Frames CTC needs for a label: its length plus one blank between repeated symbols."""
  ids = list(ids)
  return len(ids) + sum(a == b for a, b in zip(ids, ids[1:]))


class SkipReport:
  """Counts of written and skipped records per reason, naming the first few of each.

  Attributes:
    written: number of records kept.
    counts: reason -> number of records skipped.
    examples: reason -> up to `max_examples` (key, detail) pairs.
  """

  def __init__(self, max_examples: int = 5):
    self.max_examples = max_examples
    self.written = 0
    self.counts: collections.Counter[str] = collections.Counter()
    self.examples: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)

  @property
  def skipped(self) -> int:
    return sum(self.counts.values())

  def add(self, reason: str, key: str, detail: str = "") -> None:
    if reason not in REASON_INDEX:
      raise ValueError(f"unknown skip reason {reason!r}")
    self.counts[reason] += 1
    if len(self.examples[reason]) < self.max_examples:
      self.examples[reason].append((key, detail))

  def add_bad(self, key: str, error: BadRecord) -> None:
    self.add(error.reason, key, error.detail)

  def merge(self, other: "SkipReport") -> None:
    self.written += other.written
    for reason, count in other.counts.items():
      self.counts[reason] += count
      room = self.max_examples - len(self.examples[reason])
      self.examples[reason].extend(other.examples[reason][:max(room, 0)])

  def to_dict(self) -> dict[str, Any]:
    return dict(
        written=self.written,
        skipped=self.skipped,
        reasons={r: dict(count=self.counts[r],
                         first=[dict(key=k, detail=d) for k, d in self.examples[r]])
                 for r in REASONS if self.counts[r]})

  @classmethod
  def from_dict(cls, d: Mapping[str, Any], max_examples: int = 5) -> "SkipReport":
    report = cls(max_examples)
    report.written = int(d.get("written", 0))
    for reason, entry in d.get("reasons", {}).items():
      report.counts[reason] = int(entry["count"])
      report.examples[reason] = [(e["key"], e.get("detail", "")) for e in entry.get("first", [])]
    return report

  def format(self, indent: str = "  ") -> str:
    """Human-readable lines: one per reason with its count and first offending records."""
    lines = []
    for reason in REASONS:
      if not self.counts[reason]:
        continue
      first = "; ".join(f"{k} ({d})" if d else k for k, d in self.examples[reason])
      more = " ..." if self.counts[reason] > len(self.examples[reason]) else ""
      lines.append(f"{indent}{reason}: {self.counts[reason]} (first: {first}{more})")
    return "\n".join(lines)

  def __repr__(self) -> str:
    return f"SkipReport(written={self.written}, skipped={dict(self.counts)})"
