"""Device mesh and shardings: the batch is split over a `data` axis, the model state replicated.

With `shard_params=True` the state is sharded FSDP-style over the same axis instead: each large
enough parameter (and its optimizer moments, which have the same shape) is split along one of
its dimensions that divides by the device count; XLA gathers the parameters where they are used
and reduce-scatters their gradients. Small leaves (biases, BatchNorm statistics, counters) stay
replicated.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
# Leaves with fewer elements stay replicated under `shard_params`: splitting them saves little
# memory and costs a collective each.
MIN_SHARDED_SIZE = 2**14


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (all devices when None).

  The devices are in `jax.devices()` order, which groups each process's devices together, so
  every process holds one contiguous slice of a batch sharded over the mesh.
  """
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


def process_batch_slice(batch_size: int, mesh: Mesh) -> tuple[int, int]:
  """This process's rows of a global batch sharded over `mesh`: `(index, count)`.

  The process holds rows `[index * n, (index + 1) * n)` with `n = batch_size // count`; the
  input pipeline must give it exactly those samples (`pipeline.train_dataset(process_index=
  index, process_count=count)`).

  Raises:
    ValueError: if the batch does not divide over the devices, or this process's devices do not
      hold one contiguous slice of the batch.
  """
  check_batch_size(batch_size, mesh)
  indices = batch_sharded(mesh).addressable_devices_indices_map((batch_size,)).values()
  rows = sorted({(s[0].start or 0, s[0].stop or batch_size) for s in indices})
  start, stop = rows[0][0], rows[-1][1]
  covered = sum(hi - lo for lo, hi in rows)
  if covered != stop - start or batch_size % (stop - start):
    raise ValueError(f"this process's devices hold rows {rows} of a batch of {batch_size}: "
                     "not one contiguous slice")
  local = stop - start
  return start // local, batch_size // local


def device_batch(local_batch: dict[str, np.ndarray], mesh: Mesh,
                 host_only: tuple[str, ...] = ("text",)) -> dict[str, jax.Array]:
  """Global arrays, sharded over `data`, from this process's part of a batch.

  Args:
    local_batch: numpy arrays whose leading dimension is this process's share of the batch
      (the rows given by `process_batch_slice`).
    mesh: the mesh.
    host_only: keys that stay on the host (dropped from the result).

  Returns:
    The same keys (minus host_only) as global `jax.Array`s.
  """
  sharding = batch_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in local_batch.items() if k not in host_only}


def leaf_spec(shape: tuple[int, ...], num_shards: int,
              min_size: int = MIN_SHARDED_SIZE) -> P:
  """FSDP partition spec of one state leaf: its largest dimension that divides by `num_shards`.

  Args:
    shape: the leaf's shape.
    num_shards: devices along the data axis.
    min_size: leaves with fewer elements are replicated.

  Returns:
    `P(None, ..., 'data', ..., None)`, or `P()` (replicated) when the leaf is small or no
    dimension divides.
  """
  if num_shards <= 1 or not shape or int(np.prod(shape)) < min_size:
    return P()
  candidates = [d for d, n in enumerate(shape) if n % num_shards == 0]
  if not candidates:
    return P()
  dim = max(candidates, key=lambda d: (shape[d], d))  # Largest; the last one on ties.
  return P(*([None] * dim + [DATA_AXIS]))


def state_sharding(state: Any, mesh: Mesh, shard_params: bool = False,
                   min_size: int = MIN_SHARDED_SIZE) -> Any:
  """Shardings for every leaf of a state pytree.

  Args:
    state: a pytree of arrays (or of objects with a `.shape`, e.g. ShapeDtypeStruct).
    mesh: the mesh.
    shard_params: shard large leaves over the data axis (see `leaf_spec`); replicate all
      leaves when False.
    min_size: smallest leaf that is sharded.

  Returns:
    A pytree of `NamedSharding`s with the structure of `state`.
  """
  n = mesh.shape[DATA_AXIS]

  def one(leaf):
    if not shard_params:
      return replicated(mesh)
    return NamedSharding(mesh, leaf_spec(tuple(np.shape(leaf)), n, min_size))

  return jax.tree.map(one, state)
