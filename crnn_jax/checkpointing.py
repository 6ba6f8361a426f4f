"""Checkpoints of the train state and the data iterator, with orbax.

A checkpoint step directory holds two items: `state` (step, params, batch_stats, opt_state) and
`data` (the grain iterator's state), saved together so a resumed run sees the same batches as an
unbroken one.

Preemption (as MaxText's `reached_preemption`): `PreemptionWatcher` tells the loop when a
SIGTERM asks it to save and stop; the loop then raises `Preempted`, which `train.main` turns into
exit status `PREEMPTED_EXIT_CODE`.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import signal
from typing import Any

import grain
import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

_LOG = logging.getLogger("absl")  # Where absl.logging writes, as the training loop does.
STATE_ITEM = "state"
DATA_ITEM = "data"
# The exit status of `train.main` after a SIGTERM-triggered checkpoint: 128 + SIGTERM, as if the
# signal had ended the process, so schedulers and wrappers see an unfinished run.
PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM


class Preempted(Exception):
  """The run received SIGTERM, saved a checkpoint at `step` and stopped."""

  def __init__(self, step: int):
    super().__init__(f"SIGTERM: stopped at step {step} after saving a checkpoint; "
                     "run the same command again to resume")
    self.step = step


def checkpoint_dir(workdir: str | pathlib.Path) -> pathlib.Path:
  return pathlib.Path(workdir).absolute() / "checkpoints"


class _DropMessage(logging.Filter):
  """Drops log records whose message starts with a given text."""

  def __init__(self, prefix: str):
    super().__init__()
    self.prefix = prefix

  def filter(self, record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(self.prefix)


class QuietOrbaxInfo(logging.Filter):
  """Drops orbax's INFO and DEBUG records (about 35 per checkpoint save) while absl's
  verbosity is at its default: `--verbosity=1` (or `-v 1`) shows them again. Orbax's
  warnings and errors always pass."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
    if absl_logging.get_verbosity() > absl_logging.INFO:
      return True
    path = record.pathname.replace("\\", "/")
    return "/orbax/" not in path


_QUIET_ORBAX = QuietOrbaxInfo()


def quiet_orbax_info() -> None:
  """Installs `QuietOrbaxInfo` on absl's logger (orbax logs through absl.logging); idempotent."""
  absl_logger = logging.getLogger("absl")
  if _QUIET_ORBAX not in absl_logger.filters:
    absl_logger.addFilter(_QUIET_ORBAX)


@contextlib.contextmanager
def _without_read_only_warning():
  """Silences orbax's 'Given directory is read only' warning, which it logs for every read-only
  CheckpointManager: opening a checkpoint to read it is not worth a warning to the user."""
  log_filter = _DropMessage("Given directory is read only")
  absl_logger = logging.getLogger("absl")  # orbax logs through absl.logging
  absl_logger.addFilter(log_filter)
  try:
    yield
  finally:
    absl_logger.removeFilter(log_filter)


def _read_only_options() -> ocp.CheckpointManagerOptions:
  """Options of a manager that only reads: the fields orbax would otherwise reset with a
  warning each (no saving, nothing to keep or delete, no directory to create)."""
  return ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0,
                                      max_to_keep=None)


def make_manager(workdir, *, max_to_keep: int = 3, read_only: bool = False
                 ) -> ocp.CheckpointManager:
  """A CheckpointManager for `workdir/checkpoints`."""
  if read_only:
    options = _read_only_options()
  else:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
  with _without_read_only_warning():
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                                 item_names=(STATE_ITEM, DATA_ITEM))


def state_to_dict(state) -> dict[str, Any]:
  """The saved part of a TrainState."""
  return dict(step=state.step, params=state.params, batch_stats=state.batch_stats,
              opt_state=state.opt_state)


def save(manager: ocp.CheckpointManager, state, data_iterator=None, *, force: bool = False
         ) -> bool:
  """Saves `state` (and the data iterator's position) at `state.step`."""
  step = int(jax.device_get(state.step))
  items = {STATE_ITEM: ocp.args.StandardSave(state_to_dict(state))}
  if data_iterator is not None:
    items[DATA_ITEM] = grain.checkpoint.CheckpointSave(data_iterator)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def restore(manager: ocp.CheckpointManager, state, data_iterator=None, step: int | None = None):
  """Restores the latest (or given) checkpoint into `state`'s structure and shardings.

  Returns:
    The restored state; the data iterator, if given, is moved to the saved position in place.
  """
  step = manager.latest_step() if step is None else step
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_to_dict(state))
  items = {STATE_ITEM: ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items[DATA_ITEM] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))[STATE_ITEM]
  return state.replace(**restored)


DAMAGED_DIR = "damaged_checkpoints"


class NoReadableCheckpoint(FileNotFoundError):
  """Every checkpoint of a workdir failed to load (each reason is in the message)."""


def _describe(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def set_aside(workdir, step: int) -> pathlib.Path:
  """Moves a damaged step directory to `workdir/damaged_checkpoints/<step>[.k]` (kept, never
  deleted); returns the new path."""
  source = checkpoint_dir(workdir) / str(step)
  target_root = pathlib.Path(workdir).absolute() / DAMAGED_DIR
  target_root.mkdir(parents=True, exist_ok=True)
  target = target_root / str(step)
  k = 1
  while target.exists():
    target = target_root / f"{step}.{k}"
    k += 1
  source.rename(target)
  return target


def restore_newest_readable(manager: ocp.CheckpointManager, workdir, state,
                            data_iterator=None, log=logging.getLogger(__name__).warning):
  """`restore` of the newest checkpoint that loads; damaged newer ones are set aside.

  A checkpoint that fails to load (a truncated array file, an empty `_METADATA`, an empty
  data-iterator file, ...) is named in a warning with the reason, moved to
  `workdir/damaged_checkpoints/` (see `set_aside`) and the next older one is tried.

  Returns:
    (state, step), or (None, None) when the workdir has no checkpoint.

  Raises:
    NoReadableCheckpoint: there were checkpoints and none loaded (all are set aside).
  """
  failures = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return restore(manager, state, data_iterator, step=step), step
    except Exception as e:  # pylint: disable=broad-except  # orbax raises many kinds.
      failures.append(f"step {step} ({_describe(e)})")
      if jax.process_index() == 0:  # One process moves it; the others skip it.
        moved = set_aside(workdir, step)
        log(f"checkpoint step {step} is unreadable ({_describe(e)}); moved it to {moved} and "
            "trying the next older one")
      manager.reload()
  if failures:
    raise NoReadableCheckpoint(
        f"no checkpoint of {workdir} could be read: {'; '.join(failures)}; all are kept in "
        f"{pathlib.Path(workdir).absolute() / DAMAGED_DIR}. Rerun to start from step 0.")
  return None, None


def restore_variables(workdir, step: int | None = None) -> tuple[int, dict[str, Any]]:
  """Loads only the model variables (params, batch_stats) of a checkpoint, for inference.

  Works whatever the topology the checkpoint was saved with (device count, processes,
  sharded parameters): the arrays are restored onto this process's first device.

  Without `step`, the newest checkpoint that loads is read: a damaged newer one is named in a
  warning and skipped (left in place: reading never changes the workdir).

  Returns:
    (step, {'params': ..., 'batch_stats': ...}) as host numpy arrays.

  Raises:
    FileNotFoundError: no checkpoint; NoReadableCheckpoint (a FileNotFoundError): none loads.
    ValueError: the `step` asked for does not load.
  """
  path = checkpoint_dir(workdir)
  if not path.is_dir():
    raise FileNotFoundError(f"no checkpoints under {path}")
  options = _read_only_options()
  # The data item gets its handler too, though it is not read: without one, orbax warns about
  # it ('found in the checkpoint, but could not be restored') on every eval and export.
  handlers = {STATE_ITEM: ocp.StandardCheckpointHandler(),
              DATA_ITEM: grain.checkpoint.CheckpointHandler()}
  with _without_read_only_warning():
    manager = ocp.CheckpointManager(path, options=options, item_handlers=handlers)
  with manager:
    steps = sorted(manager.all_steps(), reverse=True) if step is None else [step]
    if not steps:
      raise FileNotFoundError(f"no complete checkpoint under {path}")
    failures = []
    for candidate in steps:
      try:
        restored = _restore_state_item(manager, candidate)
      except Exception as e:  # pylint: disable=broad-except  # orbax raises many kinds.
        if step is not None:  # The step asked for: no fallback.
          raise ValueError(f"checkpoint step {step} of {workdir} is unreadable "
                           f"({_describe(e)})") from e
        failures.append(f"step {candidate} ({_describe(e)})")
        logging.getLogger(__name__).warning(
            "checkpoint step %d of %s is unreadable (%s); reading the next older one",
            candidate, workdir, _describe(e))
        continue
      variables = dict(params=restored["params"], batch_stats=restored.get("batch_stats", {}))
      return candidate, jax.device_get(variables)
  raise NoReadableCheckpoint(f"no checkpoint of {workdir} could be read: {'; '.join(failures)}")


def _restore_state_item(manager: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  """The `state` item of a step, onto this process's first device."""
  # The saved shardings name the training run's devices: restore onto a local one instead.
  local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=local),
                        manager.item_metadata(step)[STATE_ITEM])
  return manager.restore(
      step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(target)})
  )[STATE_ITEM]


class PreemptionWatcher:
  """Tells when to stop for a preemption notice (SIGTERM).

  Single process: a SIGTERM handler sets a flag. Several processes: JAX's preemption sync
  manager (started by `jax.distributed.initialize`) catches SIGTERM on any process and makes
  all of them agree on the step at which to stop.
  """

  def __init__(self):
    self.received = False
    self._previous = None
    self._multi = jax.process_count() > 1
    if not self._multi:
      try:
        self._previous = signal.signal(signal.SIGTERM, self._handler)
      except ValueError:  # Not the main thread: leave signals alone.
        _LOG.warning("not in the main thread: SIGTERM will not trigger a checkpoint")

  def _handler(self, signum, frame):
    del signum, frame
    self.received = True
    _LOG.warning("SIGTERM: saving a checkpoint after the current step, then stopping")

  def reached(self, step: int) -> bool:
    """Whether to save and stop after `step` (call at every step, on every process)."""
    if not self._multi:
      return self.received
    try:
      return multihost_utils.reached_preemption_sync_point(step)
    except RuntimeError as e:  # The preemption service is off.
      _LOG.warning("preemption notices are not handled: %s", e)
      self._multi = False
      return False

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
