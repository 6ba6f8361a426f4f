"""Tests of crnn_jax/run_files.py, and that the deploy side does not load the training module."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny
from crnn_jax import run_files


def test_config_round_trip_and_a_clear_error_for_a_missing_workdir(tmp_path):
  config = tiny.get_config()
  config.model.lstm_hidden = 24
  run_files.save_config(config, tmp_path)
  assert run_files.load_config(tmp_path).model.lstm_hidden == 24
  with pytest.raises(FileNotFoundError, match="is .*nothing a crnn-jax training workdir"):
    run_files.load_config(tmp_path / "nothing")


def test_run_info_names_versions_devices_and_batch_layout(tmp_path):
  from crnn_jax import sharding  # pylint: disable=import-outside-toplevel
  config = tiny.get_config()
  mesh = sharding.make_mesh()
  info = run_files.run_info(config, mesh, start_step=3)
  assert info["start_step"] == 3 and info["versions"]["jax"] == jax.__version__
  assert info["device_count"] == jax.device_count() == len(info["devices"])
  assert info["effective_batch_size"] == config.batch_size * info["grad_accum_steps"]
  run_files.save_run_info(info, tmp_path)
  assert json.loads((tmp_path / run_files.RUN_INFO_FILE).read_text()) == json.loads(
      json.dumps(info))


@pytest.mark.slow
def test_inference_and_export_do_not_import_the_training_module():
  code = ("import sys, crnn_jax.inference, crnn_jax.export, crnn_jax.pretrained; "
          "print('crnn_jax.train_lib' in sys.modules)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
  assert result.stdout.strip() == "False"


def test_load_model_opens_a_checkpoint_or_weights(tiny_workdir, tmp_path):
  from crnn_jax import checkpointing  # pylint: disable=import-outside-toplevel
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
  loaded = run_files.load_model(tiny_workdir)
  _, reference = checkpointing.restore_variables(tiny_workdir)
  assert loaded.step == 0 and loaded.name == str(tiny_workdir)
  assert loaded.config.model.lstm_hidden == run_files.load_config(tiny_workdir).model.lstm_hidden
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, loaded.variables,
                                                       reference))
  logits, lengths = loaded.module.apply(loaded.variables, np.zeros((1, 32, 40, 1), np.float32),
                                        np.array([40]), train=False)
  assert logits.shape[-1] == loaded.charset.num_classes and int(lengths[0]) == 11
  shipped = run_files.load_model(weights="synth_en")
  assert shipped.name == "weights synth_en"
  assert shipped.step == pretrained.info("synth_en").get("step", 0)
  assert run_files.load_model().name == f"weights {pretrained.DEFAULT_MODEL}"
  with pytest.raises(FileNotFoundError):
    run_files.load_model(tmp_path / "nothing")
