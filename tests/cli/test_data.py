"""Tests of `crnn-jax data build` and `crnn-jax data to-lmdb`."""

import json
import logging
import pathlib

from absl import logging as absl_logging
import lmdb
import numpy as np
import pytest
from PIL import Image

from crnn_jax import cli
from crnn_jax.data import lmdb_io
from crnn_jax.data import records
from crnn_jax.data import sources
from crnn_jax.text.charset import Charset


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
  rc = cli.main(["data", "build", "synthetic", "--from-config", "configs/scene_en.py:stage=1",
                 "--num-records", "3", "--seed", "9", "--output", str(tmp_path / "tfds")])
  assert rc == 0
  assert "written: 3" in capsys.readouterr().out
  built = sources.open_dataset(tmp_path / "tfds")
  assert len(built) == 3
  from crnn_jax import config_file  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth.source_en import SyntheticTextSource  # pylint: disable=import-outside-toplevel
  config = config_file.load("configs/scene_en.py:stage=1")
  expected = SyntheticTextSource.from_config(
      config.data, Charset.from_config(config.text), seed=9, num_records=3)
  assert [built[i]["label"].decode() if isinstance(built[i]["label"], bytes)
          else built[i]["label"] for i in range(3)] == [expected[i]["text"] for i in range(3)]
  rc = cli.main(["data", "build", "synthetic", "--from-config", str(tmp_path / "none.py"),
                 "--output", str(tmp_path / "x")])
  assert rc != 0 and "does not exist" in capsys.readouterr().err


def _lines_folder(root: pathlib.Path) -> pathlib.Path:
  """gt.txt with a usable line, one too long for the frames of its narrow image at height 32
  (13 characters, 40 px: 11 frames), and one with a character outside alnum36."""
  root.mkdir(parents=True)
  for name, width, label in [("ok", 100, "hello"), ("narrow", 40, "abcdefghijklm"),
                             ("bang", 100, "Hi!")]:
    Image.fromarray(np.full((32, width), 200, np.uint8)).save(root / f"{name}.png")
  (root / "gt.txt").write_text("ok.png\thello\nnarrow.png\tabcdefghijklm\nbang.png\tHi!\n")
  return root


def _keep_ratio_config(tmp_path: pathlib.Path) -> pathlib.Path:
  path = tmp_path / "keep_ratio.py"
  path.write_text("from configs import tiny\n\n\ndef get_config():\n"
                  "  config = tiny.get_config()\n  config.data.resize = 'keep_ratio'\n"
                  "  return config\n")
  return path


def test_for_config_skips_what_training_with_that_config_would_skip(tmp_path, capsys):
  folder = _lines_folder(tmp_path / "lines")
  config = _keep_ratio_config(tmp_path)
  assert cli.main(["data", "to-lmdb", "--input", str(folder), "--output",
                   str(tmp_path / "all")]) == 0
  assert "written: 3" in capsys.readouterr().out
  for command in (["data", "to-lmdb", "--input", str(folder), "--output", str(tmp_path / "fit")],
                  ["data", "build", "folder", "--input", str(folder), "--output",
                   str(tmp_path / "tfds")]):
    assert cli.main([*command, "--for-config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "written: 1" in printed and "skipped: 2" in printed
    assert "label_too_long: 1 (first: " in printed and "needs 13 frames" in printed
    assert "unknown_chars: 1" in printed and "'!'" in printed
  assert _lmdb_contents(tmp_path / "fit")[b"label-000000001"] == b"hello"


def test_long_data_commands_show_progress_on_a_terminal(tmp_path, terminal_stderr, capsys):
  folder = _lines_folder(tmp_path / "lines")
  runs = {
      "build": ["data", "build", "folder", "--input", str(folder), "--output",
                str(tmp_path / "tfds")],
      "to-lmdb": ["data", "to-lmdb", "--input", str(folder), "--output", str(tmp_path / "l")],
  }
  for name, command in runs.items():
    for quiet in (False, True):
      suffix = "_quiet" if quiet else ""
      with terminal_stderr() as terminal:
        assert cli.main([*command[:-1], command[-1] + suffix] + (["--quiet"] if quiet else [])) == 0
      shown = terminal.getvalue()
      if quiet:
        assert "3/3" not in shown, name
      else:
        assert "3/3" in shown and "rec/s" in shown, (name, shown)
  out = capsys.readouterr().out
  assert "Downloading" not in out and "Subsequent calls" not in out  # TFDS's lines.
  # Without a terminal there is no bar.
  assert cli.main(["data", "to-lmdb", "--input", str(folder), "--output",
                   str(tmp_path / "plain")]) == 0
  assert "rec/s" not in capsys.readouterr().err


def test_verbosity_info_shows_the_libraries_lines(tmp_path, caplog):
  folder = _lines_folder(tmp_path / "lines")
  verbosity = absl_logging.get_verbosity()
  try:
    with caplog.at_level(logging.INFO):
      assert cli.main(["data", "build", "folder", "--input", str(folder), "--output",
                       str(tmp_path / "quiet")]) == 0
      assert "preparing crnn_folder" not in caplog.text
      assert cli.main(["--verbosity", "info", "data", "build", "folder", "--input",
                       str(folder), "--output", str(tmp_path / "loud")]) == 0
      assert "preparing crnn_folder" in caplog.text
  finally:
    absl_logging.set_verbosity(verbosity)


def test_to_lmdb_help_says_what_happens_to_colour():
  text = cli.build_parser()._subparsers._group_actions[0].choices["data"]  # pylint: disable=protected-access
  to_lmdb = text._subparsers._group_actions[0].choices["to-lmdb"]  # pylint: disable=protected-access
  help_text = " ".join(to_lmdb.format_help().split())
  assert "copied unchanged (colour stays colour)" in help_text
  assert "grayscale PNGs" in help_text


def test_build_synthetic_draws_the_configs_scene_params(tmp_path, capsys):
  rc = cli.main(["data", "build", "synthetic", "--from-config", "configs/scene_en.py:stage=4",
                 "--num-records", "8", "--seed", "9", "--output", str(tmp_path / "tfds")])
  assert rc == 0, capsys.readouterr().err
  built = sources.open_dataset(tmp_path / "tfds")
  from crnn_jax import config_file  # pylint: disable=import-outside-toplevel
  from crnn_jax.data import preprocess  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth.source_en import SyntheticTextSource  # pylint: disable=import-outside-toplevel
  config = config_file.load("configs/scene_en.py:stage=4")
  expected = SyntheticTextSource.from_config(
      config.data, Charset.from_config(config.text), seed=9, num_records=8)
  default = config_file.load("configs/scene_en.py:stage=4")
  default.data.synthetic.scene_params = {}
  unchanged = SyntheticTextSource.from_config(
      default.data, Charset.from_config(default.text), seed=9, num_records=8)
  images = [records.decode_image(built[i]["image"]) for i in range(8)]
  want = [np.asarray(preprocess.to_grayscale(np.asarray(expected[i]["image"]))) for i in range(8)]
  for image, target in zip(images, want):
    np.testing.assert_array_equal(np.squeeze(image), np.squeeze(target))
  differs = [np.asarray(unchanged[i]["image"]).shape != np.asarray(expected[i]["image"]).shape
             or (np.asarray(unchanged[i]["image"]) != np.asarray(expected[i]["image"])).any()
             for i in range(8)]
  # The overrides changed what is drawn (each effect draws from its own stream, so only the
  # records whose draws fall in a changed probability differ).
  assert any(differs)


def test_build_synthetic_scene_params_flag_is_checked(tmp_path, capsys):
  for text, message in (("{bevel", "not JSON"), ("[1]", "JSON object"),
                        ('{"bevel": 1}', "unknown scene parameter")):
    rc = cli.main(["data", "build", "synthetic", "--augment", "scene", "--num-records", "2",
                   "--scene-params", text, "--output", str(tmp_path / "x")])
    assert rc != 0 and message in capsys.readouterr().err, text


@pytest.mark.slow
def test_build_synthetic_from_the_zh_config_draws_mixed_lines(tmp_path, capsys):
  pytest.importorskip("jieba")
  from crnn_jax.synth import cjk_fonts  # pylint: disable=import-outside-toplevel
  if not cjk_fonts.discover_cjk_fonts():
    pytest.skip("no CJK face: apt-get install fonts-noto-cjk")
  rc = cli.main(["data", "build", "synthetic", "--from-config", "configs/zh_en.py",
                 "--num-records", "3", "--seed", "9", "--output", str(tmp_path / "tfds")])
  assert rc == 0, capsys.readouterr().err
  built = sources.open_dataset(tmp_path / "tfds")
  from crnn_jax import config_file  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth import source_zh as zh_synthetic  # pylint: disable=import-outside-toplevel
  config = config_file.load("configs/zh_en.py")
  expected = zh_synthetic.ZhSyntheticSource.from_config(
      config.data, Charset.from_config(config.text), seed=9, num_records=3)
  labels = [records.decode_label(built[i]["label"]) for i in range(3)]
  assert labels == [expected[i]["text"] for i in range(3)]
