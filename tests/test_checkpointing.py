"""Tests for crnn_jax.checkpointing: reading a training checkpoint's variables for inference."""

import logging

import grain
import jax
import numpy as np
import pytest

import deploy_helpers
from crnn_jax import checkpointing, train_lib
from crnn_jax.text.charset import Charset
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


def _two_checkpoints(workdir):
  """Checkpoints at steps 0 and 1 (the second with other parameters): returns both states."""
  config = deploy_helpers.tiny_config()
  model = crnn.from_config(config.model, Charset.from_config(config.text).num_classes)
  first = train_lib.create_train_state(config, model, jax.random.key(0))
  second = first.replace(step=first.step + 1,
                         params=jax.tree.map(lambda x: x + 1.0, first.params))
  with checkpointing.make_manager(workdir) as manager:
    for state in (first, second):
      iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
      next(iterator)
      checkpointing.save(manager, state, iterator, force=True)
    manager.wait_until_finished()
  return first, second


def _damage(step_dir, kind):
  if kind == "truncated_array":
    biggest = max((p for p in (step_dir / "state").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:biggest.stat().st_size // 2])
  elif kind == "empty_metadata":
    (step_dir / "state" / "_METADATA").write_bytes(b"")
  elif kind == "empty_data_file":
    for path in (step_dir / checkpointing.DATA_ITEM).iterdir():
      path.write_bytes(b"")


@pytest.mark.parametrize("kind", ["truncated_array", "empty_metadata", "empty_data_file"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_readable(tmp_path, kind, caplog):
  first, _ = _two_checkpoints(tmp_path)
  damaged = checkpointing.checkpoint_dir(tmp_path) / "1"
  _damage(damaged, kind)
  if kind != "empty_data_file":  # Reading variables never looks at the data item.
    with caplog.at_level(logging.WARNING):
      step, variables = checkpointing.restore_variables(tmp_path)
    assert step == 0 and damaged.is_dir()  # Readers leave the workdir as it is.
    assert any("step 1" in r.getMessage() and "unreadable" in r.getMessage()
               for r in caplog.records)
    jax.tree.map(np.testing.assert_array_equal, variables["params"],
                 jax.device_get(first.params))
    with pytest.raises(ValueError, match="step 1 .* is unreadable"):
      checkpointing.restore_variables(tmp_path, step=1)
  messages = []
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  with checkpointing.make_manager(tmp_path) as manager:
    state, step = checkpointing.restore_newest_readable(manager, tmp_path, first, iterator,
                                                        log=messages.append)
    assert manager.all_steps() == [0]
  assert step == 0 and int(state.step) == int(first.step)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.params),
               jax.device_get(first.params))
  assert next(iterator) == 1  # The data position of step 0 (one element consumed).
  assert not damaged.exists()
  assert (tmp_path / checkpointing.DAMAGED_DIR / "1").is_dir()  # Kept aside, not deleted.
  assert len(messages) == 1 and "checkpoint step 1 is unreadable" in messages[0]


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
  first, _ = _two_checkpoints(tmp_path)
  for step in ("0", "1"):
    _damage(checkpointing.checkpoint_dir(tmp_path) / step, "empty_metadata")
  with pytest.raises(checkpointing.NoReadableCheckpoint, match="step 1 .*step 0"):
    checkpointing.restore_variables(tmp_path)
  with checkpointing.make_manager(tmp_path) as manager:
    with pytest.raises(checkpointing.NoReadableCheckpoint, match="all are kept"):
      checkpointing.restore_newest_readable(manager, tmp_path, first, log=lambda m: None)
  assert sorted(p.name for p in (tmp_path / checkpointing.DAMAGED_DIR).iterdir()) == ["0", "1"]
