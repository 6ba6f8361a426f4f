"""The `crnn-jax` command: evaluate and run trained models.

  crnn-jax eval --checkpoint WORKDIR [--split test] [--num-records 2000] [--output m.json]
  crnn-jax eval --checkpoint WORKDIR --data DATASET [DATASET ...] [--case-sensitive] [--unfiltered]
  crnn-jax eval --data testdata/heldout_en --case-sensitive     # the shipped English model
  crnn-jax predict IMAGE_OR_DIR ... [--checkpoint WORKDIR | --weights DIR] [--output preds.tsv]
      [--format tsv|text|jsonl] [--decoder greedy|beam|lm|lexicon] [--visualize OUT_DIR]
      [--backend onnxruntime | --onnx FILE]
  crnn-jax predict -        # standard input: an image, or image paths one a line
  crnn-jax export --checkpoint WORKDIR --format onnx|stablehlo --output FILE [--quantize int8]
      [--calibration-data DIR]
  crnn-jax import-torch crnn.pth --output WORKDIR
  crnn-jax serve [--weights NAME ... | --checkpoint WORKDIR] [--host 127.0.0.1] [--port 8080]
  crnn-jax data build {lmdb,mjsynth,folder,synthetic} --input PATH ... --output DATA_DIR
  crnn-jax data to-lmdb --input DATASET --output LMDB_DIR
  crnn-jax data samples --config CONFIG --output grid.png [--real DIR] [--count N]
  crnn-jax --version

Training has its own entry point with config files: `python -m train.main --config ...`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from crnn_jax.cli import data as data_command
from crnn_jax.cli import eval as eval_command
from crnn_jax.cli import export as export_command
from crnn_jax.cli import format as cli_format
from crnn_jax.cli import predict as predict_command
from crnn_jax.cli import serve as serve_command

# One module per subcommand, each with its `register(subparsers)`: eval.py, predict.py,
# export.py (export and import-torch), data.py and serve.py; format.py sets how --help looks.
# Heavy modules (JAX, onnx, PyTorch, the web server) are imported only when a command runs.

VERBOSITY_LEVELS = ("error", "warning", "info", "debug")


def set_verbosity(level: str) -> None:
  """Sets absl's log level, which JAX, TFDS and orbax log through (orbax's INFO lines show at
  'debug' only: see `checkpointing.QuietOrbaxInfo`)."""
  import absl.logging  # pylint: disable=g-import-not-at-top
  absl.logging.set_verbosity(level)


def _version() -> str:
  import crnn_jax  # pylint: disable=g-import-not-at-top
  return crnn_jax.__version__


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="crnn-jax", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--version", action="version", version=f"crnn-jax {_version()}",
                      help="print the version and exit")
  parser.add_argument("--verbosity", default="warning", choices=VERBOSITY_LEVELS,
                      help="log lines shown: warning: crnn-jax's lines and real warnings; "
                      "info: also the libraries' INFO lines (TFDS, JAX); debug: everything, "
                      "orbax's checkpoint lines too")
  sub = parser.add_subparsers(dest="command", required=True)
  eval_command.register(sub)
  predict_command.register(sub)
  data_command.register(sub)
  export_command.register(sub)
  serve_command.register(sub)
  return cli_format.apply(parser)


def utf8_output() -> None:
  """Standard output and error in UTF-8, whatever the locale: readings of Chinese lines must
  print (a C/POSIX locale gives Python an ASCII stdout), and files and pipes of readings are
  UTF-8 everywhere else in crnn-jax (gt.txt, --output)."""
  for stream in (sys.stdout, sys.stderr):
    encoding = (getattr(stream, "encoding", "") or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(stream, "reconfigure"):
      stream.reconfigure(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  set_verbosity(args.verbosity)
  utf8_output()
  try:
    return args.func(args)
  except (FileNotFoundError, ValueError) as e:
    print(f"crnn-jax {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
