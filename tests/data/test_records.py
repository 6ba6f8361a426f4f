"""Tests of raw-record validation and decoding, and of the skip report."""

import io

import numpy as np
import pytest
from PIL import Image

from crnn_jax.data import records
from tests.data_helpers import encode, image_array


def _reason(fn, *args, **kwargs):
  with pytest.raises(records.BadRecord) as info:
    fn(*args, **kwargs)
  return info.value.reason


def test_labels_are_decoded_nfc_and_checked():
  assert records.decode_label(b"Stra\xc3\x9fe") == "Straße"
  assert records.decode_label("e\u0301t\u00e9\r\n") == "\u00e9t\u00e9"  # NFC, CRLF stripped.
  assert _reason(records.decode_label, b"\xff\xfe") == "invalid_utf8"
  assert _reason(records.decode_label, b"") == "empty_label"
  assert _reason(records.decode_label, "  \r\n") == "empty_label"
  assert _reason(records.decode_label, None) == "missing_key"
  assert _reason(records.check_text, "ab$", allowed=set("ab").__contains__) == "unknown_chars"
  assert _reason(records.check_text, "abc", max_length=2) == "label_too_long"
  records.check_text("abc", allowed=set("abc").__contains__, max_length=3)


def test_images_decode_to_grayscale_and_bad_bytes_are_classified():
  gray = image_array(0, width=33, height=17)
  np.testing.assert_array_equal(records.decode_image(encode(gray)), gray)
  rgb = np.stack([gray, gray, gray], -1)
  np.testing.assert_array_equal(records.decode_image(encode(rgb)), gray)
  jpeg = records.decode_image(encode(rgb, "JPEG"))
  assert jpeg.shape == (17, 33) and jpeg.dtype == np.uint8
  np.testing.assert_array_equal(records.decode_image(gray), gray)
  assert _reason(records.decode_image, b"") == "empty_image"
  assert _reason(records.decode_image, np.zeros((0, 10), np.uint8)) == "empty_image"
  assert _reason(records.decode_image, b"GIF89a nonsense") == "undecodable_image"
  truncated = encode(image_array(1, width=200, height=64))[:100]
  assert _reason(records.decode_image, truncated) == "undecodable_image"
  assert _reason(records.decode_image, None) == "missing_key"


def test_colour_jpeg_decodes_as_the_recognizer_reads_the_file(tmp_path):
  # eval (records) and predict (inference.load_image) must see the same pixels: a JPEG's own
  # luma plane differs from the grayscale of its decoded colours.
  from crnn_jax import inference  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  colours = rng.integers(0, 256, size=(8, 12, 3)).astype(np.uint8)
  image = Image.fromarray(colours).resize((96, 64), Image.NEAREST)
  path = tmp_path / "crop.jpg"
  image.save(path, quality=60)  # 4:2:0 chroma subsampling, as most photographs have.
  decoded = records.decode_image(path.read_bytes())
  np.testing.assert_array_equal(decoded, inference.load_image(path))
  with Image.open(path) as pil:
    pil.draft("L", pil.size)  # The luma plane alone: what this test guards against.
    assert (np.asarray(pil.convert("L")) != decoded).any()


def test_parse_record_checks_labels_before_images():
  good = dict(key="k", image=encode(image_array(2)), label=b"abc")
  image, text = records.parse_record(good)
  assert text == "abc" and image.shape == (32, 60)
  # A bad label is reported even when the image is bad too (labels are checked first).
  assert _reason(records.parse_record, dict(key="k", image=b"", label=b"")) == "empty_label"
  assert _reason(records.parse_record, dict(key="k", image=None, label=None,
                                            missing="missing_record")) == "missing_record"


def test_ctc_frames_needed_counts_repeats():
  assert records.ctc_frames_needed([1, 2, 3]) == 3
  assert records.ctc_frames_needed([1, 1, 2, 2, 2]) == 8
  assert records.ctc_frames_needed([]) == 0


def test_png_round_trip_is_lossless():
  array = image_array(3, width=77, height=31)
  with Image.open(io.BytesIO(records.encode_png(array))) as image:
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), array)


def test_skip_report_counts_names_first_records_and_merges():
  report = records.SkipReport(max_examples=2)
  for i in range(3):
    report.add("empty_label", f"db/{i}", "label ''")
  report.add("invalid_utf8", "db/9")
  report.written = 5
  assert report.skipped == 4 and report.counts["empty_label"] == 3
  assert [k for k, _ in report.examples["empty_label"]] == ["db/0", "db/1"]
  text = report.format()
  assert "empty_label: 3 (first: db/0 (label ''); db/1 (label '') ...)" in text
  assert "invalid_utf8: 1 (first: db/9)" in text
  other = records.SkipReport(max_examples=2)
  other.add("empty_label", "db2/0")
  other.add("missing_key", "db2/1")
  other.written = 1
  report.merge(other)
  assert report.written == 6 and report.counts["empty_label"] == 4
  assert len(report.examples["empty_label"]) == 2
  again = records.SkipReport.from_dict(report.to_dict())
  assert again.to_dict() == report.to_dict()
  with pytest.raises(ValueError, match="unknown skip reason"):
    report.add("nonsense", "k")
