"""Tests of the TFDS builders: inputs with bad records in, ArrayRecord out, with a skip report."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from crnn_jax.data import builders
from crnn_jax.data import sources
from crnn_jax.text.charset import Charset
from crnn_jax.synth.params import RenderParams
from crnn_jax.synth.source_en import SyntheticTextSource

tfds.disable_progress_bar()


def _read_built(directory):
  """Every example of the only split, decoded by TFDS itself: [(key, text, image [H, W])]."""
  builder = tfds.builder_from_directory(str(directory))
  (split,) = builder.info.splits.keys()
  data = builder.as_data_source(split=split)
  out = []
  for i in range(len(data)):
    example = data[i]
    assert example["image"].ndim == 3 and example["image"].shape[-1] == 1
    out.append((example["key"].decode(), example["text"].decode(), example["image"][..., 0]))
  return out


def _reasons(report):
  return dict(report.counts)


def test_lmdb_builder_keeps_good_records_in_order_and_reports_bad_ones(tmp_path, bad_lmdb):
  path, good, bad = bad_lmdb
  result = builders.build("lmdb", tmp_path / "tfds", paths=[path])
  assert result.directory == tmp_path / "tfds" / "crnn_lmdb" / "IIIT5k_3000" / "1.0.0"
  assert result.report.written == len(good) == 6
  expected = {}
  for reason in bad.values():
    expected[reason] = expected.get(reason, 0) + 1
  assert _reasons(result.report) == expected
  # The report names the offending records.
  assert [k for k, _ in result.report.examples["missing_record"]] == [
      "IIIT5k_3000/000000013", "IIIT5k_3000/000000014"]
  assert result.report.examples["invalid_utf8"][0][0] == "IIIT5k_3000/000000010"
  built = _read_built(result.directory)
  assert [(k, t) for k, t, _ in built] == [(f"IIIT5k_3000/{i + 1:09d}", t) for i, t, _ in good]
  for (_, _, image), (_, _, expected_image) in zip(built, good):
    np.testing.assert_array_equal(image, expected_image)
  # The report is kept in the dataset's metadata.
  metadata = json.loads((result.directory / "metadata.json").read_text())
  assert metadata["build_report"]["written"] == 6
  assert metadata["build_report"]["reasons"]["undecodable_image"]["count"] == 2
  # Readable through `tfds.data_source` with the data directory too.
  data = tfds.data_source("crnn_lmdb/IIIT5k_3000", data_dir=str(tmp_path / "tfds"),
                          split="train")
  assert len(data) == 6 and data[2]["text"] == "a1b2".encode()
  with pytest.raises(FileExistsError):
    builders.build("lmdb", tmp_path / "tfds", paths=[path])


def test_folder_builder_filters_labels_and_resizes(tmp_path, gt_folder):
  root, good, bad = gt_folder
  result = builders.build("folder", tmp_path / "tfds", paths=[root], name="lines-v1",
                          split="test", charset="abcdefghijklmnopqrstuvwxyz0123456789",
                          fold_case=True, max_label_length=5, height=16)
  assert result.name == "lines_v1" and result.split == "test"
  kept = [(ln, t, a) for ln, t, a in good
          if t.lower().isascii() and t.lower().isalnum() and len(t) <= 5]
  assert [t for _, t, _ in kept] == ["alpha", "Beta", "7up"]  # Case kept; 'gamma delta' out.
  report = result.report
  assert report.counts["unknown_chars"] == 2  # 'gamma delta' (space), 'Ünïcode'.
  assert report.counts["missing_file"] == 1 and report.counts["malformed_line"] == 1
  assert report.counts["empty_label"] == 1 and report.counts["invalid_utf8"] == 1
  assert report.counts["undecodable_image"] == 1 and report.written == 3
  built = _read_built(result.directory)
  assert [t for _, t, _ in built] == ["alpha", "Beta", "7up"]
  for (_, _, image), (_, _, original) in zip(built, kept):
    assert image.shape == (16, round(original.shape[1] * 16 / original.shape[0]))


def test_mjsynth_builder_and_parallel_build_give_the_same_dataset(tmp_path, mjsynth_tree):
  root, good, bad = mjsynth_tree
  serial = builders.build("mjsynth", tmp_path / "a", paths=[root], name="mj")
  parallel = builders.build("mjsynth", tmp_path / "b", paths=[root], name="mj", num_workers=2)
  for result in (serial, parallel):
    assert result.report.written == 3
    assert _reasons(result.report) == {"empty_image": 1, "malformed_line": 1,
                                       "missing_file": 1}
  a, b = _read_built(serial.directory), _read_built(parallel.directory)
  assert [t for _, t, _ in a] == [w for w, _ in good] == [t for _, t, _ in b]
  for (_, _, x), (_, _, y), (_, expected) in zip(a, b, good):
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, expected)
  assert a[0][0].endswith(":./2000/6/0_MONIKER_4000.png")


def test_synthetic_builder_stores_the_rendered_records(tmp_path):
  params = RenderParams(augment="none", max_length=5)
  result = builders.build("synthetic", tmp_path / "tfds", num_records=5, seed=11,
                          alphabet="abc123", render=params)
  assert result.directory.parent.name == "synthetic_11" and result.report.written == 5
  source = SyntheticTextSource(charset=Charset("abc123"), seed=11, num_records=5, params=params)
  built = _read_built(result.directory)
  for i, (key, text, image) in enumerate(built):
    assert key == f"synthetic/{i}" and text == source[i]["text"]
    np.testing.assert_array_equal(image, source[i]["image"])
  # The built dataset opens as a source for the pipeline and the evaluation.
  opened = sources.open_dataset(tmp_path / "tfds")
  assert opened.kind == "arrayrecord" and opened.name == "synthetic_11" and len(opened) == 5


def test_synthetic_builder_stores_scene_records_as_model_grayscale(tmp_path):
  from crnn_jax.data import preprocess  # pylint: disable=import-outside-toplevel
  params = RenderParams(augment="scene", max_length=6, vocabulary="wordfreq",
                        punctuation_fraction=0.5, strong_fraction=0.0, font_pool="standard")
  result = builders.build("synthetic", tmp_path / "tfds", num_records=4, seed=5,
                          alphabet="abcdefgh", render=params)
  assert result.report.written == 4
  source = SyntheticTextSource(charset=Charset("abcdefgh"), seed=5, num_records=4, params=params)
  for i, (_, text, image) in enumerate(_read_built(result.directory)):
    colour = source[i]["image"]
    assert colour.ndim == 3 and text == source[i]["text"]
    np.testing.assert_array_equal(image, preprocess.to_grayscale(colour))


def test_builders_fail_clearly_on_missing_or_useless_input(tmp_path, bad_lmdb):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    builders.build("lmdb", tmp_path / "tfds", paths=[tmp_path / "nope"])
  with pytest.raises(ValueError, match="no usable record"):
    builders.build("lmdb", tmp_path / "tfds", paths=[bad_lmdb[0]], charset="#")
  with pytest.raises(ValueError, match="unknown builder"):
    builders.build("csv", tmp_path / "tfds")


def test_builders_read_the_manual_directory_through_plain_tfds(tmp_path, gt_folder):
  root, good, _ = gt_folder
  builder = builders.CrnnFolder(config=builders.TextLineConfig(name="manual"),
                                data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare(
      file_format="array_record", download_dir=str(tmp_path / "downloads"),
      download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
  data = builder.as_data_source(split="train")
  assert [data[i]["text"].decode() for i in range(len(data))] == [t for _, t, _ in good]
  assert builder.report.written == 5 and builder.report.skipped == 5
