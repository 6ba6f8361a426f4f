"""Checkpoints of the train state and the data iterator, with orbax.

A checkpoint step directory holds two items: `state` (step, params, batch_stats, opt_state) and
`data` (the grain iterator's state), saved together so a resumed run sees the same batches as an
unbroken one.
"""

from __future__ import annotations

import pathlib
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

STATE_ITEM = "state"
DATA_ITEM = "data"


def checkpoint_dir(workdir: str | pathlib.Path) -> pathlib.Path:
  return pathlib.Path(workdir).absolute() / "checkpoints"


def make_manager(workdir, *, max_to_keep: int = 3, read_only: bool = False
                 ) -> ocp.CheckpointManager:
  """A CheckpointManager for `workdir/checkpoints`."""
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                         read_only=read_only)
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


def restore_variables(workdir, step: int | None = None) -> tuple[int, dict[str, Any]]:
  """Loads only the model variables (params, batch_stats) of a checkpoint, for inference.

  Works whatever the topology the checkpoint was saved with (device count, processes,
  sharded parameters): the arrays are restored onto this process's first device.

  Returns:
    (step, {'params': ..., 'batch_stats': ...}) as host numpy arrays.
  """
  path = checkpoint_dir(workdir)
  if not path.is_dir():
    raise FileNotFoundError(f"no checkpoints under {path}")
  options = ocp.CheckpointManagerOptions(read_only=True, create=False)
  # The data item gets its handler too, though it is not read: without one, orbax warns about
  # it ('found in the checkpoint, but could not be restored') on every eval and export.
  handlers = {STATE_ITEM: ocp.StandardCheckpointHandler(),
              DATA_ITEM: grain.checkpoint.CheckpointHandler()}
  with ocp.CheckpointManager(path, options=options, item_handlers=handlers) as manager:
    step = manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no complete checkpoint under {path}")
    # The saved shardings name the training run's devices: restore onto a local one instead.
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=local),
                          manager.item_metadata(step)[STATE_ITEM])
    restored = manager.restore(
        step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore(target)})
    )[STATE_ITEM]
  variables = dict(params=restored["params"], batch_stats=restored.get("batch_stats", {}))
  return step, jax.device_get(variables)
