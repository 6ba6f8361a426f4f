"""Tests for crnn_jax.checkpointing: reading a training checkpoint's variables for inference."""

import logging

import grain
import jax
import numpy as np

import deploy_helpers
from crnn_jax import checkpointing, train_lib
from crnn_jax.data.charset import Charset
from crnn_jax.models import crnn


def _training_checkpoint(workdir):
  """A step-0 checkpoint with both items, the state and a grain iterator's position."""
  config = deploy_helpers.tiny_config()
  model = crnn.from_config(config.model, Charset.from_config(config.text).num_classes)
  state = train_lib.create_train_state(config, model, jax.random.key(0))
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  next(iterator)
  with checkpointing.make_manager(workdir) as manager:
    checkpointing.save(manager, state, iterator, force=True)
    manager.wait_until_finished()
  return state


def test_restore_variables_reads_a_training_checkpoint_quietly(tmp_path, caplog):
  state = _training_checkpoint(tmp_path)
  assert (checkpointing.checkpoint_dir(tmp_path) / "0" / checkpointing.DATA_ITEM).is_dir()
  with caplog.at_level(logging.WARNING):
    step, variables = checkpointing.restore_variables(tmp_path)
  assert step == 0
  jax.tree.map(np.testing.assert_array_equal, variables["params"], jax.device_get(state.params))
  jax.tree.map(np.testing.assert_array_equal, variables["batch_stats"],
               jax.device_get(state.batch_stats))
  # Evaluation and export read only the state; neither the data item nor opening the
  # checkpoint read-only may make orbax warn.
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  assert not warnings, warnings


def test_orbax_info_lines_are_hidden_unless_verbose(tmp_path, caplog):
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  checkpointing.quiet_orbax_info()
  checkpointing.quiet_orbax_info()  # Idempotent.
  absl_logger = logging.getLogger("absl")
  try:
    assert absl_logger.filters.count(checkpointing._QUIET_ORBAX) == 1  # pylint: disable=protected-access
    with caplog.at_level(logging.DEBUG):
      _training_checkpoint(tmp_path / "quiet")
    orbax = [r for r in caplog.records if "/orbax/" in r.pathname.replace("\\", "/")]
    assert not [r for r in orbax if r.levelno < logging.WARNING]
    caplog.clear()
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.DEBUG)
    try:
      with caplog.at_level(logging.DEBUG):
        _training_checkpoint(tmp_path / "verbose")
    finally:
      absl_logging.set_verbosity(verbosity)
    orbax = [r for r in caplog.records if "/orbax/" in r.pathname.replace("\\", "/")]
    assert len([r for r in orbax if r.levelno == logging.INFO]) >= 10
  finally:
    absl_logger.removeFilter(checkpointing._QUIET_ORBAX)  # pylint: disable=protected-access
