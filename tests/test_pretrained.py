"""Tests of weights directories (crnn_jax/pretrained.py) and of the shipped English model."""

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import deploy_helpers
import crnn_jax
from crnn_jax.text import charset as charset_lib
from crnn_jax import checkpointing
from crnn_jax import cli
from crnn_jax import pretrained
from crnn_jax import run_files
from crnn_jax.evaluation import heldout_en

REPO = pathlib.Path(__file__).resolve().parents[1]
HELDOUT_EN = REPO / "testdata" / "heldout_en"
# Case-sensitive word accuracy of the shipped default model (scene_en) on the held-out set. The
# issue's target is TARGET_ACCURACY; the shipped weights (2026-12-01, stage 3 keep-ratio, bfloat16)
# measured 97.5% overall: words 99.7, digits 100, random 90.7 (synth_en: 96.2%). The group floors sit at
# most two images under the measured figures, so a broken export, preprocessing or decoding
# change fails here.
TARGET_ACCURACY = 0.95
MIN_ACCURACY = TARGET_ACCURACY
MIN_GROUP_ACCURACY = {"words": 0.98, "digits": 0.98, "random": 0.88}


@pytest.fixture(scope="module")
def english():
  return crnn_jax.Recognizer.from_pretrained()


def _flat(tree):
  return {pathlib.PurePath(*map(str, k)).as_posix(): np.asarray(v)
          for k, v in _items(tree)}


def _items(tree, prefix=()):
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _items(value, prefix + (key,))
    else:
      yield prefix + (key,), value


def test_export_cli_round_trip(tiny_workdir, tmp_path, capsys):
  _, reference = checkpointing.restore_variables(tiny_workdir)
  reference = _flat(reference)
  for dtype in ("float32", "bfloat16"):
    out = tmp_path / dtype
    assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "weights",
                     "--output", str(out), "--dtype", dtype]) == 0
    assert f"of {dtype} weights" in capsys.readouterr().err
    config, variables = pretrained.load(out)
    assert config.model.lstm_hidden == deploy_helpers.TINY_HIDDEN
    loaded = _flat(variables)
    assert loaded.keys() == reference.keys()
    for name, value in loaded.items():
      assert value.dtype == np.float32, name
      if dtype == "float32":
        np.testing.assert_array_equal(value, reference[name], err_msg=name)
      else:  # bfloat16 keeps 8 significant bits: relative error at most 2^-8.
        np.testing.assert_allclose(value, reference[name], rtol=2.0**-8, atol=1e-30,
                                   err_msg=name)
        rounded = np.asarray(jnp.asarray(reference[name], jnp.bfloat16).astype(jnp.float32))
        np.testing.assert_array_equal(value, rounded, err_msg=name)
  bf16_size = (tmp_path / "bfloat16" / pretrained.VARIABLES_FILE).stat().st_size
  f32_size = (tmp_path / "float32" / pretrained.VARIABLES_FILE).stat().st_size
  assert bf16_size < 0.6 * f32_size


def test_recognizer_from_weights_equals_checkpoint(tiny_workdir, tmp_path):
  out = run_files.export_checkpoint(tiny_workdir, tmp_path / "w", dtype="float32")
  images = deploy_helpers.text_images(2, [90, 40, 200])
  from_weights = crnn_jax.Recognizer.from_pretrained(out).recognize(images)
  from_checkpoint = crnn_jax.Recognizer.from_checkpoint(tiny_workdir).recognize(images)
  assert [p.text for p in from_weights] == [p.text for p in from_checkpoint]
  np.testing.assert_allclose([p.confidence for p in from_weights],
                             [p.confidence for p in from_checkpoint], rtol=1e-5)


def test_resize_follows_the_training_config(tiny_workdir, tmp_path):
  config, variables = pretrained.load(run_files.export_checkpoint(tiny_workdir, tmp_path / "w"))
  image = deploy_helpers.text_images(0, [300], height=64)[0]
  config.data.resize = "fixed"
  config.data.fixed_width = 100
  assert crnn_jax.Recognizer.from_config(config, variables).preprocess(image).shape == (32, 100)
  config.data.resize = "keep_ratio"
  assert crnn_jax.Recognizer.from_config(config, variables).preprocess(image).shape == (32, 150)


def test_load_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="shipped models"):
    pretrained.load("no_such_model")
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / pretrained.VARIABLES_FILE).write_bytes(b"\x00not msgpack")
  (bad / pretrained.CONFIG_FILE).write_text("{}")
  with pytest.raises(ValueError, match="variables.msgpack"):
    pretrained.load(bad)
  with pytest.raises(ValueError, match="dtype"):
    pretrained.save(tmp_path / "x", deploy_helpers.tiny_config(), {"params": {}},
                    dtype="float16")


def test_a_pinned_name_loads_only_the_file_it_pins(tmp_path):
  digest = pretrained.sha256_file(pretrained.resolve("synth_en") / pretrained.VARIABLES_FILE)
  assert pretrained.resolve(f"synth_en@sha256:{digest[:12].upper()}") == pretrained.resolve(
      "synth_en")
  assert pretrained.info(f"synth_en@sha256:{digest}")["variables_sha256"] == digest
  other = "0" * 12 if not digest.startswith("0" * 12) else "1" * 12
  with pytest.raises(ValueError, match=f"pinned to sha256 {other}.*has sha256 {digest}"):
    pretrained.load(f"synth_en@sha256:{other}")
  with pytest.raises(ValueError, match="8 to 64 hex digits"):
    pretrained.resolve("synth_en@sha256:5b88")
  # A weights directory can be pinned too.
  directory = pretrained.save(tmp_path / "w", deploy_helpers.tiny_config(), {"params": {
      "w": np.ones(3, np.float32)}})
  pin = pretrained.info(directory)["variables_sha256"][:8]
  assert pretrained.resolve(f"{directory}@sha256:{pin}") == directory


def test_the_recipes_pin_the_shipped_weights():
  from configs import scene_en  # pylint: disable=import-outside-toplevel
  assert pretrained.resolve(scene_en.SYNTH_EN) == pretrained.resolve("synth_en")
  assert scene_en.get_config("stage=1").init_weights == scene_en.SYNTH_EN


def test_predict_cli_reports_missing_weights(tmp_path, capsys):
  image = tmp_path / "a.png"
  Image.fromarray(deploy_helpers.text_images(0, [64])[0]).save(image)
  assert cli.main(["predict", "--weights", str(tmp_path / "nothing"), str(image)]) == 2
  assert "no weights" in capsys.readouterr().err


# --- The shipped English model ----------------------------------------------------------------


def test_shipped_model_is_small_and_case_sensitive():
  assert pretrained.DEFAULT_MODEL in pretrained.available()
  directory = pretrained.resolve()
  assert (directory / pretrained.VARIABLES_FILE).stat().st_size < 20e6
  config, _ = pretrained.load()
  assert not config.text.fold_case
  assert sorted(config.text.charset) == sorted(charset_lib.ALPHANUMERIC_62)
  assert tuple(config.model.conv_channels) == (64, 128, 256, 256, 512, 512, 512)  # Full size.


@pytest.fixture(scope="module")
def heldout_table(english):
  """Per-group accuracy of the shipped model on the held-out set."""
  samples = heldout_en.read_test_set(HELDOUT_EN)
  predictions = english.recognize([HELDOUT_EN / s.file for s in samples])
  return heldout_en.accuracy_by_group(samples, [p.text for p in predictions])


@pytest.mark.slow
def test_shipped_model_meets_the_target_on_the_heldout_set(heldout_table):
  assert heldout_table["all"]["accuracy"] >= TARGET_ACCURACY, heldout_table
  for group, minimum in MIN_GROUP_ACCURACY.items():
    assert heldout_table[group]["accuracy"] >= minimum, (group, heldout_table)



def test_predict_cli_without_checkpoint_uses_the_shipped_model(english, capsys):
  samples = heldout_en.read_test_set(HELDOUT_EN)
  picked = [next(s for s in samples if s.kind == kind)
            for kind in ("word_capitalized", "word_upper", "digits", "random")]
  paths = [str(HELDOUT_EN / s.file) for s in picked]
  assert cli.main(["predict", *paths]) == 0
  lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
  expected = english.recognize(paths)
  assert [line[0] for line in lines] == paths
  assert [line[1] for line in lines] == [p.text for p in expected]
  assert sum(line[1] == s.text for line, s in zip(lines, picked)) >= 3, (lines, picked)


@pytest.mark.slow
def test_eval_cli_without_checkpoint_scores_the_shipped_model(tmp_path, capsys):
  output = tmp_path / "heldout.json"
  assert cli.main(["eval", "--data", str(HELDOUT_EN), "--case-sensitive",
                   "--output", str(output)]) == 0
  results = json.loads(output.read_text())
  assert results["checkpoint"] == "weights scene_en"
  assert results["step"] == pretrained.info()["step"]
  [scores] = results["datasets"]
  assert scores["name"] == "heldout_en"
  assert scores["count"] == 600
  assert scores["word_accuracy"] >= MIN_ACCURACY, scores
  assert "heldout_en" in capsys.readouterr().out


def test_a_weights_directory_names_its_config_as_a_run_does():
  assert pretrained.CONFIG_FILE == run_files.CONFIG_FILE


ZH_LINES = {"chinese/00012.png": "良一二。解金空对空武氏兄弟", "chinese/00021.png": "从植被外资所有制亿立方米"}
HELDOUT_ZH = pathlib.Path(__file__).resolve().parent.parent / "testdata" / "heldout_zh"


@pytest.mark.slow
def test_zh_en_reads_chinese_lines_in_utf8(tmp_path):
  """predict --weights zh_en writes UTF-8 (whatever the locale), and the Recognizer reads two
  held-out Chinese lines that the shipped weights read right when they were shipped."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  paths = [str(HELDOUT_ZH / name) for name in ZH_LINES]
  recognizer = crnn_jax.Recognizer.from_pretrained("zh_en", decoder="greedy")
  assert [p.text for p in recognizer.recognize(paths)] == list(ZH_LINES.values())
  env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}
  out = subprocess.run([sys.executable, "-c", "import sys; from crnn_jax import cli; "
                        "sys.exit(cli.main())", "predict", "--weights", "zh_en",
                        "--decoder", "greedy", "--format", "text", *paths],
                       capture_output=True, check=True, env=env).stdout
  assert out.decode("utf-8").splitlines() == list(ZH_LINES.values())
