"""Per-example transforms and collation: raw records and examples -> samples -> padded batches.

A sample (what a transform returns for one record) is a dict of
  image:        float32 `[H, W]` in [-1, 1]: grayscale, resized to height H = `data.height` and
                width W (`data.fixed_width`, or keeping the aspect ratio up to `data.max_width`).
  width:        int32 W.
  label:        int32 `[L]` class ids, 0 beyond `label_length`; L = `max_label_length(data)`.
  label_length: int32.
  mask:         bool, whether the sample counts.
  dropped:      int32, 1 where the label was dropped (characters outside the charset).
  text:         str, the ground truth normalized by the charset.

Transforms:
  EncodeExample  `{'image': uint8 [H, W], 'text': str}` (the synthetic renderer's) -> a sample.
  DecodeExample  a raw record (see `records`) -> a training sample, or a skip marker.
  EvalExample    a raw record -> a held-out sample; bad records become masked blanks.

`Collate` pads a list of samples into a batch, a dict of numpy arrays:
  image:        float32 `[B, H, W, 1]`, zero beyond each sample's width; W is the fixed width, or
                the smallest bucket (`data.bucket_widths`, `data.max_width`) that holds the
                batch's widest sample.
  width:        int32 `[B]` true widths.
  label:        int32 `[B, L]`.
  label_length: int32 `[B]`.
  mask:         bool `[B]` samples that count (False for dropped labels and batch padding).
  dropped:      int32 `[B]`.
  text:         `[B]` unicode strings, host only.
and, where the samples have them: `skipped` int32 `[B, len(SKIP_REASONS)]` (see `iterators`),
`skip_reason` int32 `[B]` (-1 for samples that count), `altered` int32 `[B]` and `key` `[B]`
record keys (see `EvalExample`).
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Sequence

import numpy as np

from crnn_jax.data import preprocess
from crnn_jax.data import records
from crnn_jax.text.charset import Charset
from crnn_jax.models.crnn import output_lengths

# Why a record does not count: the index of `skip` / `skip_reason` and the columns of `skipped`.
SKIP_REASONS = records.REASONS


def max_width(data_config) -> int:
  """Widest image the pipeline produces."""
  return data_config.fixed_width if data_config.resize == "fixed" else data_config.max_width


def max_label_length(data_config) -> int:
  """Longest label that can fit the frames of the widest image (longer ones are dropped).

  A positive `data_config.max_label_length` lowers the limit.
  """
  frames = int(output_lengths(max_width(data_config)))
  limit = int(data_config.get("max_label_length", 0) or 0)
  return min(frames, limit) if limit > 0 else frames


class EncodeExample:
  """Resizes, normalizes and encodes one `{'image': uint8 [H, W], 'text': str}` example."""

  def __init__(self, data_config, charset: Charset, unknown_chars: str = "drop"):
    if unknown_chars not in ("drop", "error"):
      raise ValueError(f"text.unknown_chars must be 'drop' or 'error', got {unknown_chars!r}")
    if data_config.resize not in ("fixed", "keep_ratio"):
      raise ValueError(f"data.resize must be 'fixed' or 'keep_ratio', got {data_config.resize!r}")
    self.height = data_config.height
    self.fixed_width = data_config.fixed_width if data_config.resize == "fixed" else None
    self.max_width = data_config.max_width
    self.max_label_length = max_label_length(data_config)
    self.charset = charset
    self.unknown_chars = unknown_chars

  def __call__(self, example: dict[str, Any]) -> dict[str, Any]:
    image = preprocess.resize(preprocess.to_grayscale(example["image"]), height=self.height,
                              fixed_width=self.fixed_width, max_width=self.max_width)
    text = self.charset.normalize(example["text"])
    label = np.zeros((self.max_label_length,), np.int32)
    dropped = not self.charset.can_encode(text)
    if dropped and self.unknown_chars == "error":
      self.charset.encode(text)  # Raises UnknownCharacterError naming the label.
    ids = [] if dropped else self.charset.encode(text)[:self.max_label_length]
    label[:len(ids)] = ids
    # A label longer than max_label_length cannot fit the frames: the loss masks it out.
    length = len(ids) if len(text) <= self.max_label_length else 0
    return dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]), label=label,
                label_length=np.int32(length), mask=not dropped, dropped=np.int32(dropped),
                text=text)


class DecodeExample:
  """Raw record -> an encoded training example, or a skip marker `{'skip': reason, 'key': ..}`.

  Examples have the fields of `EncodeExample` plus `skip = -1`. A record is skipped (see
  `records.REASONS`) when it is missing or cannot be decoded, when its label is empty, has
  characters outside the charset or is longer than `max_label_length`, or when CTC cannot
  align it to the frames of its resized image (its length plus repeated neighbours).
  """

  def __init__(self, data_config, charset: Charset):
    self.encode = EncodeExample(data_config, charset)
    self.charset = charset
    self.max_label_length = max_label_length(data_config)

  def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
    enc = self.encode
    try:
      image, text = records.parse_record(record)
      text = self.charset.normalize(text)
      unknown = self.charset.unknown_chars(text)
      if unknown:
        raise records.BadRecord(records.UNKNOWN_CHARS, f"label {text!r} has " + ", ".join(
            f"{c!r} (U+{ord(c):04X})" for c in unknown[:5]))
      ids = self.charset.encode(text)
      if len(ids) > self.max_label_length:
        raise records.BadRecord(records.LABEL_TOO_LONG,
                                f"{len(ids)} > {self.max_label_length} characters")
      image = preprocess.resize(image, height=enc.height, fixed_width=enc.fixed_width,
                                max_width=enc.max_width)
      frames = int(output_lengths(image.shape[1]))
      needed = records.ctc_frames_needed(ids)
      if needed > frames:
        raise records.BadRecord(records.LABEL_TOO_LONG, f"label {text!r} needs {needed} "
                                f"frames, the {image.shape[1]}-pixel image has {frames}")
    except records.BadRecord as e:
      return dict(skip=np.int32(records.REASON_INDEX[e.reason]),
                  key=str(record.get("key", "?")), detail=e.detail)
    label = np.zeros((self.max_label_length,), np.int32)
    label[:len(ids)] = ids
    return dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]), label=label,
                label_length=np.int32(len(ids)), mask=True, dropped=np.int32(0), text=text,
                skip=np.int32(-1))


def charset_label_check(charset: Charset) -> Callable[[str], str]:
  """A label check for held-out data: labels the charset cannot encode do not count."""

  def check(text: str) -> str:
    text = charset.normalize(text)
    unknown = charset.unknown_chars(text)
    if unknown:
      raise records.BadRecord(records.UNKNOWN_CHARS, f"label {text!r} has " + ", ".join(
          f"{c!r} (U+{ord(c):04X})" for c in unknown[:5]))
    return text

  return check


class EvalExample:
  """Raw record -> a held-out example; bad records become masked blank examples.

  Examples have the fields of `EncodeExample` (with empty labels: evaluation compares texts),
  `skip_reason` (-1, or the `SKIP_REASONS` index of why the record does not count) and, with
  `with_key`, the record's `key`.
  """

  def __init__(self, data_config, label_check: Callable[[str], str] | None = None, *,
               with_key: bool = False):
    """Args:
      data_config: `config.data` (resizing).
      label_check: maps a label to the text compared with predictions, or to (that text,
        whether the check altered it: the example then has `altered`, 0 or 1), or raises
        BadRecord when the record must not count.
      with_key: add the record key (host only).
    """
    self.height = data_config.height
    self.fixed_width = data_config.fixed_width if data_config.resize == "fixed" else None
    self.max_width = data_config.max_width
    self.label_length = max_label_length(data_config)
    self.label_check = label_check
    self.with_key = with_key

  def blank(self, reason: int, key: str = "") -> dict[str, Any]:
    width = self.fixed_width or preprocess.MIN_WIDTH
    example = dict(image=np.zeros((self.height, width), np.float32), width=np.int32(width),
                   label=np.zeros((self.label_length,), np.int32), label_length=np.int32(0),
                   mask=False, dropped=np.int32(0), text="", skip_reason=np.int32(reason),
                   altered=np.int32(0))
    if self.with_key:
      example["key"] = key
    return example

  def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
    if record.get("padding"):  # Batch padding.
      return self.blank(-1)
    key = str(record.get("key", "?"))
    try:
      image, text = records.parse_record(record)
      altered = 0
      if self.label_check is not None:
        text = self.label_check(text)
        if isinstance(text, tuple):
          text, altered = text
    except records.BadRecord as e:
      return self.blank(records.REASON_INDEX[e.reason], key)
    image = preprocess.resize(image, height=self.height, fixed_width=self.fixed_width,
                              max_width=self.max_width)
    example = dict(image=preprocess.normalize(image), width=np.int32(image.shape[1]),
                   label=np.zeros((self.label_length,), np.int32), label_length=np.int32(0),
                   mask=True, dropped=np.int32(0), text=text, skip_reason=np.int32(-1),
                   altered=np.int32(altered))
    if self.with_key:
      example["key"] = key
    return example


# Optional per-sample keys and their dtypes (see the module docstring).
_EXTRA_KEYS = {"skipped": np.int32, "skip_reason": np.int32, "altered": np.int32, "key": object}


class Collate:
  """Pads a list of encoded examples into a batch (see the module docstring).

  With fixed-width resizing every batch has that width; with keep-ratio resizing a batch is
  padded to the smallest bucket width that holds its widest image.
  """

  def __init__(self, data_config, batch_size: int | None = None):
    self.fixed = data_config.resize == "fixed"
    self.fixed_width = data_config.fixed_width
    self.buckets = sorted(set(data_config.bucket_widths) | {data_config.max_width})
    self.batch_size = batch_size  # If set, partial batches are padded with masked samples.

  def bucket_width(self, width: int) -> int:
    if self.fixed:
      return self.fixed_width
    return self.buckets[min(bisect.bisect_left(self.buckets, width), len(self.buckets) - 1)]

  def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    examples = list(examples)
    width = self.bucket_width(max(int(e["width"]) for e in examples))
    batch = dict(
        image=preprocess.pad_to_width([e["image"] for e in examples], width),
        width=np.array([e["width"] for e in examples], np.int32),
        label=np.stack([e["label"] for e in examples]).astype(np.int32),
        label_length=np.array([e["label_length"] for e in examples], np.int32),
        mask=np.array([e["mask"] for e in examples], bool),
        dropped=np.array([e["dropped"] for e in examples], np.int32),
        text=np.array([e["text"] for e in examples], dtype=object),
    )
    for key, dtype in _EXTRA_KEYS.items():
      if key in examples[0]:
        batch[key] = np.stack([np.asarray(e[key], dtype) for e in examples])
    if self.batch_size and len(examples) < self.batch_size:
      batch = pad_batch(batch, self.batch_size)
    return batch


def pad_batch(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads a partial batch to `size` samples with masked-out copies of zeros."""
  pad = size - len(batch["mask"])
  out = {}
  for key, value in batch.items():
    filler = np.zeros((pad,) + value.shape[1:], value.dtype)
    if key in ("text", "key"):
      filler = np.array([""] * pad, dtype=object)
    elif key == "skip_reason":
      filler = np.full((pad,), -1, np.int32)
    elif key == "width":
      filler = np.full((pad,), preprocess.MIN_WIDTH, np.int32)
    out[key] = np.concatenate([value, filler])
  return out
