"""The flags that name the model a subcommand reads: --checkpoint, --step, --weights.

`eval` and `predict` take a training workdir's checkpoint or, without one, shipped weights or a
weights directory (`run_files.load_model` opens either).
"""

from __future__ import annotations

import argparse

from crnn_jax import pretrained


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds --checkpoint, --step and --weights (default: the shipped default model)."""
  parser.add_argument("--checkpoint", default="",
                      help="training workdir (default: the shipped weights, see --weights)")
  parser.add_argument("--step", type=int, default=None,
                      help="checkpoint step (default: latest)")
  parser.add_argument("--weights", default="",
                      help="without --checkpoint: a shipped model name "
                      f"({', '.join(pretrained.available()) or 'none installed'}) or a weights "
                      f"directory (default: {pretrained.DEFAULT_MODEL})")
