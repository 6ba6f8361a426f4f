"""Device mesh and shardings: the batch is split over a `data` axis, the model state replicated."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (all devices when None)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(f"asked for {num_devices} devices, only {len(devices)} available")
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,),
              axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, what: str = "batch_size") -> None:
  """Fails clearly when a global batch does not divide over the mesh's devices."""
  n = mesh.devices.size
  if batch_size % n:
    raise ValueError(f"{what}={batch_size} does not divide by the {n} devices of the mesh; "
                     f"use a multiple of {n}")


def device_batch(local_batch: dict[str, np.ndarray], mesh: Mesh,
                 host_only: tuple[str, ...] = ("text",)) -> dict[str, jax.Array]:
  """Global arrays, sharded over `data`, from this process's part of a batch.

  Args:
    local_batch: numpy arrays whose leading dimension is this process's share of the batch.
    mesh: the mesh.
    host_only: keys that stay on the host (dropped from the result).

  Returns:
    The same keys (minus host_only) as global `jax.Array`s.
  """
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in local_batch.items() if k not in host_only}


def state_sharding(state: Any, mesh: Mesh) -> Any:
  """Replicated sharding for every leaf of a state pytree."""
  return jax.tree.map(lambda _: replicated(mesh), state)
