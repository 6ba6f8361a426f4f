"""Shared test fixtures."""

import os
import sys

# Tests import the `configs` and `train` packages from the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
