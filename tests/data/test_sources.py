"""Tests of the LMDB reader/writer and of the dataset readers (LMDB, gt.txt folders, MJSynth)."""

import pickle

import lmdb
import numpy as np
import pytest

from crnn_jax.data import lmdb_io
from crnn_jax.data import records
from crnn_jax.data import sources
from tests.data_helpers import encode, image_array, write_raw_lmdb


def _classify(source):
  """(good [(index, label, image)], bad {index: reason}) of every record of a source."""
  good, bad = [], {}
  for i in range(len(source)):
    try:
      image, text = records.parse_record(source[i])
      good.append((i, text, image))
    except records.BadRecord as e:
      bad[i] = e.reason
  return good, bad


def test_lmdb_writer_writes_the_standard_format(tmp_path):
  path = tmp_path / "out"
  with lmdb_io.LmdbWriter(path, commit_every=2) as writer:
    for label in ["one", "två", "three"]:
      writer.add(label.encode() * 3, label)
  env = lmdb.open(str(path), readonly=True, lock=False)
  with env.begin() as txn:
    keys = [k for k, _ in txn.cursor()]
    assert txn.get(b"num-samples") == b"3"
    assert txn.get(b"image-000000001") == b"oneoneone"
    assert txn.get(b"label-000000002") == "två".encode()
  env.close()
  assert sorted(keys) == sorted([b"num-samples"] + [b"%s-%09d" % (k, i) for k in (b"image", b"label")
                                                    for i in (1, 2, 3)])
  with pytest.raises(FileExistsError):
    lmdb_io.LmdbWriter(path)


def test_lmdb_writer_grows_its_map(tmp_path):
  with lmdb_io.LmdbWriter(tmp_path / "small", map_size=1 << 16) as writer:
    for i in range(40):
      writer.add(bytes(4000), f"w{i}")
  reader = lmdb_io.LmdbReader(tmp_path / "small")
  assert len(reader) == 40 and reader[39]["label"] == b"w39"


def test_lmdb_reader_reports_every_kind_of_bad_record(bad_lmdb):
  path, good, bad = bad_lmdb
  reader = lmdb_io.LmdbReader(path)
  assert len(reader) == 14 and reader.note == ""
  assert reader[0]["key"] == "IIIT5k_3000/000000001"
  found_good, found_bad = _classify(reader)
  assert found_bad == bad
  assert [(i, t) for i, t, _ in found_good] == [(i, t) for i, t, _ in good]
  for (_, _, image), (_, _, expected) in zip(found_good, good):
    np.testing.assert_array_equal(image, expected)
  with pytest.raises(IndexError):
    reader[14]
  # Readers pickle without their environment and reopen it, also next to another reader.
  again = pickle.loads(pickle.dumps(reader))
  assert again[0]["label"] == b"hello" and lmdb_io.LmdbReader(path)[2]["label"] == b"World"


def test_lmdb_without_num_samples_counts_its_labels(tmp_path):
  entries = {"image-000000001": encode(image_array(0)), "label-000000001": b"a",
             "image-000000003": encode(image_array(1)), "label-000000003": b"c"}
  reader = lmdb_io.LmdbReader(write_raw_lmdb(tmp_path / "db", entries, num_samples=None))
  assert len(reader) == 3 and "num-samples is missing" in reader.note
  assert reader[1]["missing"] == "missing_record" and reader[2]["label"] == b"c"


def test_lmdb_source_concatenates_nested_databases(tmp_path):
  for name, labels in [("MJ/MJ_train", ["a", "b"]), ("MJ/MJ_valid", ["c"])]:
    with lmdb_io.LmdbWriter(tmp_path / name) as writer:
      for label in labels:
        writer.add(encode(image_array(0)), label)
  source = sources.open_dataset(tmp_path / "MJ")
  assert source.kind == "lmdb" and len(source) == 3
  assert [source[i]["label"] for i in range(3)] == [b"a", b"b", b"c"]
  assert source[2]["key"] == "MJ_valid/000000001"
  entries = sources.find_datasets(tmp_path / "MJ")
  assert [(e.name, e.kind) for e in entries] == [("MJ_train", "lmdb"), ("MJ_valid", "lmdb")]


def test_folder_source(gt_folder):
  root, good, bad = gt_folder
  source = sources.open_dataset(root)
  assert source.kind == "folder" and source.name == "mylines"
  found_good, found_bad = _classify(source)
  line = lambda i: int(source[i]["key"].split(":")[1])
  assert {line(i): r for i, r in found_bad.items()} == bad
  assert [(line(i), t) for i, t, _ in found_good] == [(ln, t) for ln, t, _ in good]
  for (_, _, image), (_, _, expected) in zip(found_good, good):
    np.testing.assert_array_equal(image, expected)
  assert source[0]["key"] == "gt.txt:1:img/0.png"
  # The gt file itself is a dataset path too.
  assert len(sources.open_dataset(root / "gt.txt")) == len(source)


def test_space_separated_lines_are_accepted(tmp_path):
  (tmp_path / "a.png").write_bytes(encode(image_array(0)))
  (tmp_path / "gt.txt").write_text("a.png two words\n")
  image, text = records.parse_record(sources.open_dataset(tmp_path)[0])
  assert text == "two words" and image.shape == (32, 60)


def test_mjsynth_source(mjsynth_tree):
  root, good, bad = mjsynth_tree
  source = sources.open_dataset(root)
  assert source.kind == "mjsynth" and len(source) == 6
  found_good, found_bad = _classify(source)
  assert {i + 1: r for i, r in found_bad.items()} == bad
  assert [t for _, t, _ in found_good] == [w for w, _ in good]
  for (_, _, image), (_, expected) in zip(found_good, good):
    np.testing.assert_array_equal(image, expected)
  assert sources.MJSynthSource.label_of("./2697/6/466_MONIKER_49537.jpg") == "MONIKER"
  assert sources.MJSynthSource.label_of("1_snake_case_2.jpg") == "snake_case"
  val = sources.open_dataset(root, split="val")
  assert len(val) == 1 and val[0]["label"] == "sweet"
  assert len(sources.open_dataset(root / "annotation_val.txt")) == 1


def test_detection_and_start_up_errors(tmp_path, bad_lmdb, gt_folder, mjsynth_tree):
  assert sources.detect_kind(bad_lmdb[0]) == "lmdb"
  assert sources.detect_kind(bad_lmdb[0].parent) == "lmdb"
  assert sources.detect_kind(gt_folder[0]) == "folder"
  assert sources.detect_kind(mjsynth_tree[0]) == "mjsynth"
  with pytest.raises(FileNotFoundError, match="does not exist"):
    sources.open_dataset(tmp_path / "nope")
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no dataset found"):
    sources.open_dataset(tmp_path / "empty")
  write_raw_lmdb(tmp_path / "zero", {}, num_samples=0)
  with pytest.raises(ValueError, match="holds no records"):
    sources.open_dataset(tmp_path / "zero")
  (tmp_path / "blank").mkdir()
  (tmp_path / "blank" / "gt.txt").write_text("\n\n")
  with pytest.raises(ValueError, match="holds no records"):
    sources.open_dataset(tmp_path / "blank")
  with pytest.raises(FileNotFoundError, match="no LMDB"):
    sources.open_dataset(gt_folder[0], kind="lmdb")
