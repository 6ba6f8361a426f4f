"""Multi-process start-up: `jax.distributed.initialize` from `config.distributed` or the environment.

One process runs per host (or per GPU); all of them run the same program. They find each other
through a coordinator (process 0's address), after which `jax.devices()` lists the devices of
every process and jitted steps run over all of them.

  - `config.distributed.coordinator_address` ("host:port"), `num_processes` and `process_id`
    set the run explicitly; each falls back to the environment variables
    `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID`.
  - On Cloud TPU VMs (pod slices included) and with `initialize='always'` (Slurm, Open MPI,
    Kubernetes...) unset values are detected by JAX itself.
  - On CPU, cross-process collectives use gloo over TCP.

Call `initialize` before anything else touches JAX devices.
"""

from __future__ import annotations

import os

from absl import logging
import jax

MODES = ("auto", "always", "never")


def _on_cloud_tpu_vm() -> bool:
  try:
    from jax._src import cloud_tpu_init  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  return bool(getattr(cloud_tpu_init, "running_in_cloud_tpu_vm", False))


def _env_int(name: str) -> int | None:
  value = os.environ.get(name, "")
  return int(value) if value.strip() else None


def resolve(dist_config) -> dict | None:
  """The arguments for `jax.distributed.initialize`, or None when it should not be called.

  Args:
    dist_config: `config.distributed` (`initialize`, `coordinator_address`, `num_processes`,
      `process_id`, `initialization_timeout`); a missing or None config means 'auto' with
      everything from the environment.

  Returns:
    Keyword arguments for `jax.distributed.initialize` (None values are detected by JAX).
  """
  get = (lambda key, default: dist_config.get(key, default)) if dist_config else (
      lambda key, default: default)
  mode = get("initialize", "auto")
  if mode not in MODES:
    raise ValueError(f"distributed.initialize must be one of {MODES}, got {mode!r}")
  address = get("coordinator_address", "") or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
  num_processes = get("num_processes", 0) or _env_int("JAX_NUM_PROCESSES")
  process_id = get("process_id", -1)
  if process_id is None or process_id < 0:
    process_id = _env_int("JAX_PROCESS_ID")
  if mode == "never":
    return None
  if mode == "auto" and address is None and num_processes is None and not _on_cloud_tpu_vm():
    return None  # A single-process run.
  return dict(coordinator_address=address, num_processes=num_processes, process_id=process_id,
              initialization_timeout=int(get("initialization_timeout", 300)))


def initialize(dist_config=None) -> bool:
  """Starts the JAX distributed runtime if the config or environment asks for it.

  Idempotent: does nothing if it is already running.

  Returns:
    True if the distributed runtime is running.
  """
  if jax.distributed.is_initialized():
    return True
  kwargs = resolve(dist_config)
  if kwargs is None:
    return False
  if jax.config.jax_cpu_collectives_implementation is None:
    # Older JAX versions default to no CPU collectives; gloo is the TCP implementation.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  logging.info("jax.distributed.initialize(%s)",
               ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
  jax.distributed.initialize(**kwargs)
  logging.info("process %d of %d; %d local and %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return True
