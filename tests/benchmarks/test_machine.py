"""Tests of benchmarks/machine.py: the machine line every benchmark script prints."""

import dataclasses
import json
import math
import os

import pytest


CPUINFO = """\
processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16 avx512_vnni avx512vl amx_tile
bogomips\t: 5199.99

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu amx_int8
"""


def test_model_and_flags_come_from_the_first_processor(machine):
  described = machine.describe(CPUINFO)
  assert described.cpu == "AMD EPYC 9R14"
  # Only the speed-relevant flags, in FLAGS's order (not cpuinfo's); amx_int8 is processor 1's.
  assert described.flags == ("avx2", "avx512f", "avx512_vnni", "avx512_bf16")
  assert set(described.flags) <= set(machine.FLAGS)
  assert described.cpus == len(os.sched_getaffinity(0))
  assert len(described.load) == 3


def test_unreadable_cpuinfo_is_unknown_without_flags(machine):
  described = machine.describe("")
  assert described.cpu == "unknown" and described.flags == ()
  assert "flags none" in described.line()


def test_line_and_dict(machine):
  described = dataclasses.replace(machine.describe(CPUINFO), cpus=2, load=(1.234, 2.0, 2.5))
  assert described.line() == (
      "AMD EPYC 9R14, 2 CPUs, flags avx2 avx512f avx512_vnni avx512_bf16, load 1.23 2.00 2.50")
  assert str(described) == described.line()
  assert described.line(load=False) == described.line().rsplit(", load", 1)[0]
  as_dict = described.as_dict()
  assert as_dict == {"cpu": "AMD EPYC 9R14", "cpus": 2,
                     "flags": ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"],
                     "loadavg": [1.23, 2.0, 2.5]}
  assert json.loads(json.dumps(as_dict)) == as_dict
  with pytest.raises(dataclasses.FrozenInstanceError):
    described.cpus = 4


def test_load_average(machine):
  load = machine.load_average()
  assert len(load) == 3 and all(x >= 0 or math.isnan(x) for x in load)
  assert machine.format_load((0.5, 1, 12.5)) == "0.50 1.00 12.50"
