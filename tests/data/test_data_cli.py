"""Tests of `crnn-jax data build` and `crnn-jax data to-lmdb`."""

import json

import lmdb
import numpy as np

from crnn_jax import cli
from crnn_jax.data import lmdb_io
from crnn_jax.data import records
from crnn_jax.data import sources
from crnn_jax.data.charset import Charset


def _lmdb_contents(path):
  env = lmdb.open(str(path), readonly=True, lock=False)
  with env.begin() as txn:
    contents = dict(txn.cursor())
  env.close()
  return contents


def test_build_prints_the_report_and_writes_it_as_json(tmp_path, bad_lmdb, capsys):
  path, good, _ = bad_lmdb
  report = tmp_path / "report.json"
  rc = cli.main(["data", "build", "lmdb", "--input", str(path), "--output",
                 str(tmp_path / "tfds"), "--report", str(report)])
  out = capsys.readouterr().out
  assert rc == 0
  assert "built IIIT5k_3000 (lmdb, split train)" in out
  assert "written: 6" in out and "skipped: 8" in out
  assert "undecodable_image: 2 (first: IIIT5k_3000/000000002 (UnidentifiedImageError" in out
  assert "missing_record: 2 (first: IIIT5k_3000/000000013" in out
  saved = json.loads(report.read_text())
  assert saved["written"] == 6 and saved["skipped"] == 8
  assert saved["reasons"]["missing_key"]["first"][0]["key"] == "IIIT5k_3000/000000012"
  assert saved["directory"].endswith("crnn_lmdb/IIIT5k_3000/1.0.0")
  # Building again is refused; a missing input fails clearly.
  rc = cli.main(["data", "build", "lmdb", "--input", str(path), "--output",
                 str(tmp_path / "tfds")])
  assert rc == 2 and "already exists" in capsys.readouterr().err
  rc = cli.main(["data", "build", "folder", "--input", str(tmp_path / "nope"), "--output",
                 str(tmp_path / "tfds")])
  assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_to_lmdb_from_a_folder_keeps_the_original_bytes(tmp_path, gt_folder, capsys):
  root, good, bad = gt_folder
  out = tmp_path / "lines_lmdb"
  assert cli.main(["data", "to-lmdb", "--input", str(root), "--output", str(out)]) == 0
  printed = capsys.readouterr().out
  assert "written: 5" in printed and "missing_file: 1" in printed
  contents = _lmdb_contents(out)
  assert contents[b"num-samples"] == b"5"
  assert len(contents) == 11  # num-samples + 5 images + 5 labels, keys 1..5.
  for i, (_, label, array) in enumerate(good, start=1):
    assert contents[b"label-%09d" % i].decode() == label
    assert contents[b"image-%09d" % i] == (root / "img" / f"{i - 1}.png").read_bytes()
    np.testing.assert_array_equal(records.decode_image(contents[b"image-%09d" % i]), array)


def test_to_lmdb_from_a_built_dataset_round_trips(tmp_path, bad_lmdb, capsys):
  path, good, _ = bad_lmdb
  assert cli.main(["data", "build", "lmdb", "--input", str(path), "--output",
                   str(tmp_path / "tfds")]) == 0
  out = tmp_path / "again"
  rc = cli.main(["data", "to-lmdb", "--input", str(tmp_path / "tfds"), "--output", str(out),
                 "--charset", "alnum36", "--fold-case"])
  assert rc == 0
  assert "unknown_chars: 1" in capsys.readouterr().out  # 'Straße'.
  reader = lmdb_io.LmdbReader(out)
  kept = [(t, a) for _, t, a in good if t != "Straße"]
  assert len(reader) == len(kept) == 5
  for i, (label, array) in enumerate(kept):
    image, text = records.parse_record(reader[i])
    assert text == label
    np.testing.assert_array_equal(image, array)
  rc = cli.main(["data", "to-lmdb", "--input", str(tmp_path / "tfds"), "--output", str(out)])
  assert rc == 2 and "already holds" in capsys.readouterr().err
  rc = cli.main(["data", "to-lmdb", "--input", str(path), "--output", str(tmp_path / "none"),
                 "--charset", "#"])
  assert rc == 2 and "no usable record" in capsys.readouterr().err
  assert not (tmp_path / "none").exists()


def test_build_synthetic_from_a_training_config(tmp_path, capsys):
  rc = cli.main(["data", "build", "synthetic", "--from-config", "configs/synth_en_scene.py",
                 "--num-records", "3", "--seed", "9", "--output", str(tmp_path / "tfds")])
  assert rc == 0
  assert "written: 3" in capsys.readouterr().out
  built = sources.open_dataset(tmp_path / "tfds")
  assert len(built) == 3
  from crnn_jax import config_file  # pylint: disable=import-outside-toplevel
  from crnn_jax.data.synthetic import SyntheticTextSource  # pylint: disable=import-outside-toplevel
  config = config_file.load("configs/synth_en_scene.py")
  expected = SyntheticTextSource.from_config(
      config.data, Charset.from_config(config.text), seed=9, num_records=3)
  assert [built[i]["label"].decode() if isinstance(built[i]["label"], bytes)
          else built[i]["label"] for i in range(3)] == [expected[i]["text"] for i in range(3)]
  rc = cli.main(["data", "build", "synthetic", "--from-config", str(tmp_path / "none.py"),
                 "--output", str(tmp_path / "x")])
  assert rc != 0 and "does not exist" in capsys.readouterr().err
