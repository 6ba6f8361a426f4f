"""XLA flags for the CPU backend, set before JAX initializes its backends.

`--xla_cpu_experimental_ynn_fusion_type=individual_dot` sends convolutions to Eigen instead of
YNNPACK (matrix products keep YNNPACK), whose conv weight-gradient kernels are slower on the
CPUs measured (docs/benchmarks.md, "Speed on a 2-core CPU"). It is a `xla_cpu_*` flag, read only by the CPU compiler, so
GPU and TPU programs are unaffected. Set CRNN_JAX_NO_XLA_FLAGS=1 to leave XLA_FLAGS alone.
"""

import os

CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=individual_dot",)


def apply() -> None:
  """Adds CPU_FLAGS to XLA_FLAGS unless the user set them (or CRNN_JAX_NO_XLA_FLAGS)."""
  if os.environ.get("CRNN_JAX_NO_XLA_FLAGS"):
    return
  flags = os.environ.get("XLA_FLAGS", "")
  for flag in CPU_FLAGS:
    if flag.split("=")[0] not in flags:
      flags = f"{flags} {flag}".strip()
  os.environ["XLA_FLAGS"] = flags
