"""Tests of crnn_jax/config_file.py and of train.main's command-line checks."""

import pathlib
import subprocess
import sys

import pytest

from crnn_jax import config_file

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_load_a_variant_config_from_anywhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # `from configs import ...` must still resolve.
  config = config_file.load(REPO / "configs" / "scene_en.py")
  assert config.data.synthetic.augment == "scene"
  assert config_file.load(f"{REPO}/configs/scene_en.py:stage=4").num_train_steps == 800
  with pytest.raises(ValueError, match="stage=N"):
    config_file.load(f"{REPO}/configs/scene_en.py:stage=99")
  with pytest.raises(FileNotFoundError, match="does not exist"):
    config_file.load(tmp_path / "nope.py")
  (tmp_path / "empty.py").write_text("x = 1\n")
  with pytest.raises(ValueError, match="no get_config"):
    config_file.load(tmp_path / "empty.py")


def test_override_errors_name_the_field_and_the_nearest_ones():
  config = config_file.load(REPO / "configs" / "tiny.py")
  errors = config_file.override_errors(config, [
      "--config.optimizr.lr=1", "--config.optimizer.lr=1", "--config.seed.x=2",
      "--config.optimizer.learning_rate=1", "--workdir", "x"])
  assert errors == [
      "--config.optimizr.lr: 'optimizr' is not a config field; did you mean: optimizer?",
      "--config.optimizer.lr: 'lr' is not a config field of optimizer; did you mean: "
      "learning_rate?",
      "--config.seed.x: 'seed' is a value, not a group of fields"]


def _train_main(*args):
  return subprocess.run([sys.executable, "-m", "train.main", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_train_main_rejects_a_misspelt_field_in_one_line(tmp_path):
  result = _train_main("--config", "configs/tiny.py", "--workdir", str(tmp_path / "w"),
                       "--config.optimizr.learning_rate=1")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      "error: --config.optimizr.learning_rate: 'optimizr' is not a config field; "
      "did you mean: optimizer?"]
  assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_train_main_help_exits_zero_with_the_multi_host_example():
  result = _train_main("--help")
  assert result.returncode == 0
  assert "--config.distributed.num_processes=2" in result.stdout
  assert "--workdir ... \\\n      --config.distributed.coordinator_address" in result.stdout
  assert "--workdir: Directory for checkpoints" in result.stdout
