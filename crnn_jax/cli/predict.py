"""`crnn-jax predict IMAGE_OR_DIR ...`: read text from images with a trained model.

  crnn-jax predict IMAGE_OR_DIR ... [--checkpoint WORKDIR | --weights DIR] [--output preds.tsv]
      [--format tsv|text|jsonl] [--decoder greedy|beam|lm|lexicon] [--visualize OUT_DIR]
      [--backend onnxruntime | --onnx FILE]
  cat word.png | crnn-jax predict -              # an image on standard input
  find crops -name '*.jpg' | crnn-jax predict -  # image paths on standard input, one a line

Reads every image through `Recognizer.recognize` and prints (or writes, --output) one line per
image that was read, in input order, in the --format:

  tsv (default)  path<TAB>text<TAB>confidence
  text           text
  jsonl          {"path", "text", "confidence", "raw_confidence", "too_wide"} as JSON; an input
                 that cannot be read gets {"path", "error"}

`confidence` is the estimated probability that the text is right for models with a calibration
map (the shipped ones; see `crnn_jax.calibration`), else the decoder's own confidence
(`raw_confidence`). Directories are searched recursively for image files. `-` reads standard
input: an image (any format Pillow recognizes, named `-` in the output), or else UTF-8 text
with one image path (or directory) per line. Inputs that cannot be read (missing, empty,
corrupt files, directories without images) are named on stderr and make the exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
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
  pr.add_argument("inputs", nargs="+",
                  help="image files or directories; '-': standard input (an image, or image "
                  "paths one a line)")
  pr.add_argument("--output", help="write the lines here instead of standard output")
  pr.add_argument("--format", default="tsv", choices=FORMATS,
                  help="tsv: path<TAB>text<TAB>confidence; text: the text alone; jsonl: a JSON "
                  "object per image")
  pr.add_argument("--batch-size", type=int, default=64, help="images per batch")
  cli_format.add_quiet_argument(pr)
  add_predict_arguments(pr)
  pr.set_defaults(func=run)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
  """`predict` options: decoder choice, backend, and `--visualize OUT_DIR`."""
  decoder_flags.add_arguments(parser, multiple=False, image_lexicons=False)
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


FORMATS = ("tsv", "text", "jsonl")
STDIN = "-"


def read_inputs(inputs: Sequence[str], stdin=None
                ) -> tuple[list[tuple[str, Any]], list[str]]:
  """The images of `predict`'s arguments.

  Args:
    inputs: files, directories (searched recursively for image files) and at most one '-'.
    stdin: a binary stream for '-' (default: sys.stdin.buffer).

  Returns:
    ([(name, source)] in input order, where a source is a path or a decoded image array;
    [error message] for inputs that hold no image: an empty directory, an empty or
    unreadable standard input).

  Raises:
    ValueError: '-' given more than once.
  """
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top
  if list(inputs).count(STDIN) > 1:
    raise ValueError("'-' (standard input) can be given once")
  images, errors = [], []
  for given in inputs:
    if given == STDIN:
      stdin = stdin if stdin is not None else sys.stdin.buffer
      found, error = _read_stdin(stdin.read(), inference)
      images.extend(found)
      if error:
        errors.append(error)
      continue
    path = pathlib.Path(given)
    if path.is_dir():
      found = inference.expand_inputs([path])
      if not found:
        errors.append(f"{path}: no image files in this directory (searched recursively for "
                      f"{', '.join(inference.IMAGE_SUFFIXES)})")
      images.extend((str(p), p) for p in found)
    else:
      images.append((str(path), path))
  return images, errors


def _read_stdin(data: bytes, inference) -> tuple[list[tuple[str, Any]], str]:
  """(images, error) of standard input's bytes: one image, or a list of paths."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not data.strip():
    return [], ("standard input is empty: pipe an image (crnn-jax predict - < word.png) or "
                "image paths, one a line")
  try:
    with Image.open(io.BytesIO(data)):
      pass  # A format Pillow recognizes: the input is one image.
  except Exception:  # pylint: disable=broad-except
    pass
  else:
    try:
      return [(STDIN, inference.load_image(data, name="standard input"))], ""
    except ValueError as e:
      return [], str(e)
  try:
    lines = data.decode("utf-8-sig").splitlines()
  except UnicodeDecodeError:
    return [], ("standard input is neither an image Pillow can read nor UTF-8 text with one "
                "image path a line")
  images, errors = read_inputs([line.strip() for line in lines if line.strip()])
  return images, "; ".join(errors)


def format_line(fmt: str, name: str, prediction) -> str:
  """One output line of a prediction (`prediction.error` set: jsonl only, see FORMATS)."""
  if fmt == "jsonl":
    if prediction.error:
      return json.dumps({"path": name, "error": prediction.error}, ensure_ascii=False)
    return json.dumps({"path": name, "text": prediction.text,
                       "confidence": round(float(prediction.confidence), 6),
                       "raw_confidence": round(float(prediction.raw_confidence), 6),
                       "too_wide": bool(prediction.too_wide)}, ensure_ascii=False)
  if fmt == "text":
    return prediction.text
  return f"{name}\t{prediction.text}\t{prediction.confidence:.4f}"


def recognizer_kwargs(args) -> dict[str, Any]:
  """Recognizer constructor arguments from `predict`'s options: the decoder, built for the
  model's charset by `decoder_flags.decoder_from_args`, and the backend."""
  if getattr(args, "decoder", None) == "lexicon" and not getattr(args, "lexicon", None):
    raise ValueError("--decoder lexicon needs --lexicon FILE")
  kwargs = dict(decoder=functools.partial(decoder_flags.decoder_from_args, args),
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
    images, input_errors = read_inputs(args.inputs)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for message in input_errors:
    print(f"error: {message}", file=sys.stderr)
  if not images:
    print("no input images found", file=sys.stderr)
    return 1
  names = [name for name, _ in images]
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
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", inference.TooWideWarning)
    predictions = recognizer.recognize([source for _, source in images],
                                       batch_size=args.batch_size, errors="report",
                                       progress=not args.quiet)
  for warning in caught:
    if issubclass(warning.category, inference.TooWideWarning):
      print(f"warning: {warning.message}", file=sys.stderr)
    else:
      warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
  failed = [p.error for p in predictions if p.error]
  for message in failed:
    print(f"error: {message}", file=sys.stderr)
  lines = [format_line(args.format, name, p) for name, p in zip(names, predictions)
           if args.format == "jsonl" or not p.error]
  good = [pathlib.Path(name) for name, p in zip(names, predictions) if not p.error]
  good_sources = [source for (_, source), p in zip(images, predictions) if not p.error]
  predictions = [p for p in predictions if not p.error]
  if args.visualize:
    arrays = [recognizer.prepare(source)[0] for source in good_sources]
    rectified = recognizer.backend.rectify(arrays)
    count = write_visualizations(args.visualize, good, arrays, predictions, rectified)
    print(f"wrote {count} pictures to {args.visualize}", file=sys.stderr)
  if args.output:
    pathlib.Path(args.output).write_text("".join(line + "\n" for line in lines),
                                         encoding="utf-8")
    print(f"wrote {len(predictions)} predictions to {args.output}", file=sys.stderr)
  else:
    for line in lines:
      print(line)
  failed += input_errors
  if failed:
    print(f"{len(failed)} of {len(images) + len(input_errors)} inputs could not be read",
          file=sys.stderr)
  return 1 if failed else 0
