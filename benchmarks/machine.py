"""The machine a benchmark runs on, in one line: CPU model, usable CPUs, flags, load average.

The timing scripts of benchmarks/ (speed, cpu_latency, rectifier, renderer, serve_load,
input_pipeline) print this line with their figures (most also write it, or `Machine.as_dict()`,
into their JSON), then `load_average()` again when done: other processes on the cores slow
every figure, and the instruction-set flags say which kernels (AVX-512, VNNI, BF16, AMX) XLA,
onnxruntime and PyTorch can use.

  import machine  # benchmarks/ is on sys.path when a script runs
  print(machine.describe().line())
  # AMD EPYC 9R14, 2 CPUs, flags avx2 avx512f avx512_vnni avx512_bf16, load 1.23 2.00 2.50
"""

# No `from __future__ import annotations`: dataclasses would then look the module up in
# sys.modules, where a script loaded by its path (tests/benchmarks/conftest.py) is not.
from collections.abc import Sequence
import dataclasses
import math
import os
import pathlib

CPUINFO = pathlib.Path("/proc/cpuinfo")
# The instruction-set flags that change the speed of the benchmarks, in the order printed.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def load_average() -> tuple[float, float, float]:
  """The 1, 5 and 15-minute load averages (NaN where the system does not report them)."""
  try:
    return os.getloadavg()
  except OSError:
    return (math.nan,) * 3


def format_load(load: Sequence[float]) -> str:
  """Load averages as `/proc/loadavg` starts: '1.23 2.00 2.50'."""
  return " ".join(f"{x:.2f}" for x in load)


@dataclasses.dataclass(frozen=True)
class Machine:
  """What a benchmark's figures depend on besides the code.

  Attributes:
    cpu: the CPU model name ('model name' of /proc/cpuinfo), 'unknown' where unreadable.
    cpus: the CPUs this process may run on (its affinity, not the machine's count).
    flags: those of FLAGS that the CPU has, in FLAGS's order.
    load: the 1, 5 and 15-minute load averages when it was described.
  """

  cpu: str
  cpus: int
  flags: tuple[str, ...]
  load: tuple[float, float, float]

  def line(self, load: bool = True) -> str:
    """'MODEL, N CPUs, flags F1 F2, load L1 L5 L15' (without the load if `load` is False)."""
    text = f"{self.cpu}, {self.cpus} CPUs, flags {' '.join(self.flags) or 'none'}"
    return f"{text}, load {format_load(self.load)}" if load else text

  def __str__(self) -> str:
    return self.line()

  def as_dict(self) -> dict:
    """The JSON form: keys cpu, cpus, flags (a list) and loadavg (three numbers)."""
    return {"cpu": self.cpu, "cpus": self.cpus, "flags": list(self.flags),
            "loadavg": [round(x, 2) for x in self.load]}


def describe(cpuinfo: str | None = None) -> Machine:
  """This machine now.

  Args:
    cpuinfo: the text of /proc/cpuinfo to read the model and flags from (for tests); None
      reads the file.

  Returns:
    The Machine, with this process's CPU count and the current load average.
  """
  if cpuinfo is None:
    try:
      cpuinfo = CPUINFO.read_text()
    except OSError:
      cpuinfo = ""
  model, present = "unknown", set()
  for line in cpuinfo.splitlines():
    key, _, value = line.partition(":")
    key = key.strip()
    if key == "model name" and model == "unknown":
      model = value.strip() or model
    elif key == "flags" and not present:
      present = set(value.split())
  return Machine(cpu=model, cpus=len(os.sched_getaffinity(0)),
                 flags=tuple(f for f in FLAGS if f in present), load=load_average())
