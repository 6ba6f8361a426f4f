"""Tests of crnn_jax/run_files.py, and that the deploy side does not load the training module."""

import subprocess
import sys

import pytest

from configs import tiny
from crnn_jax import run_files


def test_config_round_trip_and_a_clear_error_for_a_missing_workdir(tmp_path):
  config = tiny.get_config()
  config.model.lstm_hidden = 24
  run_files.save_config(config, tmp_path)
  assert run_files.load_config(tmp_path).model.lstm_hidden == 24
  assert run_files.load_model_config(str(tmp_path)).model.lstm_hidden == 24
  assert run_files.load_model_config("", "synth_en").text.charset == config.text.charset + (
      "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
  with pytest.raises(FileNotFoundError, match="is .*nothing a crnn-jax training workdir"):
    run_files.load_config(tmp_path / "nothing")


def test_inference_and_export_do_not_import_the_training_module():
  code = ("import sys, crnn_jax.inference, crnn_jax.export, crnn_jax.pretrained; "
          "print('crnn_jax.train_lib' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
  assert result.stdout.strip() == "False"
