"""`crnn-jax predict IMAGE_OR_DIR ...`: read text from images with a trained model.

  crnn-jax predict IMAGE_OR_DIR ... [--checkpoint WORKDIR | --weights DIR] [--output preds.tsv]
      [--decoder greedy|beam|lm|lexicon] [--visualize OUT_DIR] [--backend onnxruntime | --onnx FILE]

Prints (or writes) `path<TAB>text<TAB>confidence` per image, through `Recognizer.recognize`;
files that cannot be read are named on stderr and make the exit status 1.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import warnings
from typing import Any, Sequence

from crnn_jax import pretrained
from crnn_jax.cli import decoder_flags
from crnn_jax.cli import format as cli_format
from crnn_jax.cli import model_flags


def register(subparsers) -> None:
  """Adds the `predict` subcommand."""
  pr = subparsers.add_parser("predict", help="read text from images")
  model_flags.add_model_arguments(pr)
  pr.add_argument("inputs", nargs="+", help="image files or directories")
  pr.add_argument("--output", help="write path<TAB>text<TAB>confidence lines here")
  pr.add_argument("--batch-size", type=int, default=64, help="images per batch")
  cli_format.add_quiet_argument(pr)
  add_predict_arguments(pr)
  pr.set_defaults(func=run)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
  """`predict` options: decoder choice, backend, and `--visualize OUT_DIR`."""
  decoder_flags.add_arguments(parser, multiple=False)
  parser.add_argument("--backend", default="jax", choices=("jax", "onnxruntime"),
                      help="jax (XLA) or onnxruntime (the model exported to ONNX on the fly, "
                      "kept in the cache directory; needs the export extra)")
  parser.add_argument("--onnx", metavar="FILE", default="",
                      help="read with an exported .onnx file (float32 or int8) in onnxruntime "
                      "instead of --checkpoint or --weights")
  parser.add_argument("--threads", type=int, default=0,
                      help="onnxruntime: intra-op threads (0: one per core)")
  parser.add_argument("--visualize", metavar="OUT_DIR",
                      help="write a PNG per image: input, per-frame path, text and confidence "
                      "(with a rectifier: also the rectified image and the fiducial points)")


def recognizer_kwargs(args) -> dict[str, Any]:
  """Recognizer constructor arguments from `predict`'s decoder options."""
  name = getattr(args, "decoder", None) or None  # None: the Recognizer's default.
  if name == "lexicon" and not getattr(args, "lexicon", None):
    raise ValueError("--decoder lexicon needs --lexicon FILE")
  kwargs = dict(decoder=name, beam_width=args.beam_width, lexicon=args.lexicon,
                delta=args.delta, lm_weight=args.lm_weight, length_bonus=args.length_bonus,
                threads=getattr(args, "threads", 0))
  if not getattr(args, "onnx", ""):  # An --onnx file always runs in onnxruntime.
    kwargs["backend"] = getattr(args, "backend", "jax")
  return kwargs


def write_visualizations(out_dir, paths: Sequence[pathlib.Path], arrays, predictions,
                         rectified=None) -> int:
  """Writes OUT_DIR/NNNN_<stem>.png for each prediction; returns how many.

  `rectified`: per array, (rectified image, fiducial points) of `visualize.rectify_arrays`
  (None: the model has no rectifier)."""
  from crnn_jax import visualize  # pylint: disable=g-import-not-at-top
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for i, (path, array, prediction) in enumerate(zip(paths, arrays, predictions)):
    extra = {}
    if rectified is not None:
      extra = dict(rectified=rectified[i][0], points=rectified[i][1])
    visualize.save_prediction_png(out_dir / f"{i:04d}_{pathlib.Path(path).stem}.png", array,
                                  prediction, **extra)
  return len(predictions)


def run(args) -> int:
  """The `crnn-jax predict` command."""
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top

  try:
    kwargs = recognizer_kwargs(args)
    if args.onnx:
      if args.checkpoint or args.weights:
        raise ValueError("--onnx reads the model from the file: leave out --checkpoint and "
                         "--weights")
      recognizer = inference.Recognizer.from_onnx(args.onnx, **kwargs)
    elif args.checkpoint:
      recognizer = inference.Recognizer.from_checkpoint(args.checkpoint, args.step, **kwargs)
    else:
      recognizer = inference.Recognizer.from_pretrained(args.weights or pretrained.DEFAULT_MODEL,
                                                        **kwargs)
  except (FileNotFoundError, ValueError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  paths = inference.expand_inputs(args.inputs)
  if not paths:
    print("no input images found", file=sys.stderr)
    return 1
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", inference.TooWideWarning)
    predictions = recognizer.recognize(paths, batch_size=args.batch_size, errors="report",
                                       progress=not args.quiet)
  for warning in caught:
    if issubclass(warning.category, inference.TooWideWarning):
      print(f"warning: {warning.message}", file=sys.stderr)
    else:
      warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
  failed = [p.error for p in predictions if p.error]
  for message in failed:
    print(f"error: {message}", file=sys.stderr)
  good = [path for path, p in zip(paths, predictions) if not p.error]
  predictions = [p for p in predictions if not p.error]
  lines = [f"{path}\t{p.text}\t{p.confidence:.4f}" for path, p in zip(good, predictions)]
  if args.visualize:
    arrays = [recognizer.prepare(path)[0] for path in good]
    from crnn_jax import visualize  # pylint: disable=g-import-not-at-top
    rectified = visualize.rectify_arrays(recognizer.model, recognizer.variables, arrays)
    count = write_visualizations(args.visualize, good, arrays, predictions, rectified)
    print(f"wrote {count} pictures to {args.visualize}", file=sys.stderr)
  if args.output:
    pathlib.Path(args.output).write_text("".join(line + "\n" for line in lines),
                                         encoding="utf-8")
    print(f"wrote {len(lines)} predictions to {args.output}", file=sys.stderr)
  else:
    for line in lines:
      print(line)
  if failed:
    print(f"{len(failed)} of {len(paths)} inputs could not be read", file=sys.stderr)
  return 1 if failed else 0
