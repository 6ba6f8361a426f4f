"""Fixtures of the benchmark tests: the scripts of benchmarks/, loaded as modules."""

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _script(name: str):
  """benchmarks/NAME.py as a module (benchmarks/ is not a package)."""
  spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def real_crops():
  return _script("real_crops")


@pytest.fixture(scope="module")
def lm_decoder():
  return _script("lm_decoder")


@pytest.fixture(scope="module")
def heldout_zh():
  return _script("heldout_zh")


@pytest.fixture(scope="module")
def speed():
  return _script("speed")


@pytest.fixture(scope="module")
def machine():
  return _script("machine")


@pytest.fixture(scope="module")
def serve_load():
  return _script("serve_load")
