"""Command-line pieces for decoding and deployment, wired into `crnn_jax/cli.py`.

  crnn-jax export --checkpoint WORKDIR --format onnx|stablehlo --output FILE
  crnn-jax export --checkpoint WORKDIR --format weights --output DIR [--dtype float32]
  crnn-jax export --weights NAME_OR_DIR --format onnx|stablehlo|weights --output FILE
  crnn-jax import-torch crnn.pth --output WORKDIR
  crnn-jax predict ... [--decoder greedy|beam|lexicon] [--visualize OUT_DIR]
  crnn-jax eval ... [--decoder greedy,beam,lexicon] [--beam-width 10] [--lexicon FILE]
                    [--image-lexicons FILE] [--delta 3]

Heavy modules (JAX, onnx, PyTorch) are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any, Sequence

from crnn_jax.decoding import select


def register(subparsers) -> None:
  """Adds the `export` and `import-torch` subcommands."""
  ex = subparsers.add_parser("export", help="export a checkpoint or shipped model to ONNX, "
                             "StableHLO or a weights directory (crnn-jax predict --weights DIR)")
  model = ex.add_mutually_exclusive_group(required=True)
  model.add_argument("--checkpoint", help="training workdir")
  model.add_argument("--weights", metavar="NAME_OR_DIR",
                     help="a shipped model (e.g. synth_en) or a weights directory")
  ex.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  ex.add_argument("--format", required=True, choices=("onnx", "stablehlo", "weights"),
                  help="onnx (onnxruntime), stablehlo (jax.export) or weights (a directory "
                  "that --weights reads)")
  ex.add_argument("--output", required=True, help="file to write (weights: a directory)")
  ex.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"),
                  help="weights: storage dtype of the floating arrays")
  ex.add_argument("--opset", type=int, default=21, help="ONNX opset")
  ex.add_argument("--quantize", default="none", choices=("none", "int8"),
                  help="onnx: int8 writes a quantized model (int8 convolutions, static, "
                  "calibrated on images of the model's own renderer; int8 LSTMs, dynamic)")
  ex.add_argument("--calibration-images", type=int, default=1024,
                  help="--quantize int8: synthetic images the activation ranges are taken from")
  ex.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=True,
                  help="--quantize int8: 7-bit weights, which CPUs without AVX-512 VNNI need "
                  "(full 8-bit weights saturate their int8 kernels)")
  ex.set_defaults(func=_export)

  im = subparsers.add_parser("import-torch", help="convert crnn.pytorch weights to a workdir")
  im.add_argument("checkpoint_file", metavar="CRNN_PTH", help="crnn.pytorch state dict (.pth)")
  im.add_argument("--output", required=True, help="workdir to create")
  im.add_argument("--alphabet", default="0123456789abcdefghijklmnopqrstuvwxyz",
                  help="characters of classes 1..K-1 (default: crnn.pytorch's 36)")
  im.add_argument("--overwrite", action="store_true", help="allow a non-empty output directory")
  im.set_defaults(func=_import_torch)


def _export(args) -> int:
  if args.format == "weights":
    from crnn_jax import pretrained  # pylint: disable=g-import-not-at-top
    if args.checkpoint:
      out = pretrained.export_checkpoint(args.checkpoint, args.output, args.step, args.dtype)
    else:
      from crnn_jax import run_files  # pylint: disable=g-import-not-at-top
      loaded = run_files.load_model(weights=args.weights)
      out = pretrained.save(args.output, loaded.config, loaded.variables, dtype=args.dtype,
                            info={"weights": str(args.weights)})
    size = (out / pretrained.VARIABLES_FILE).stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB of {args.dtype} weights; try: crnn-jax predict "
          f"--weights {out} IMAGE)", file=sys.stderr)
    return 0
  from crnn_jax import export  # pylint: disable=g-import-not-at-top
  if args.quantize != "none" and args.format != "onnx":
    print(f"error: --quantize {args.quantize} is for --format onnx", file=sys.stderr)
    return 2
  options = dict(quantize=args.quantize, calibration_images=args.calibration_images,
                 reduce_range=args.reduce_range)
  if args.checkpoint:
    path = export.export_checkpoint(args.checkpoint, args.format, args.output, args.step,
                                    args.opset, **options)
  else:
    path = export.export_weights(args.weights, args.format, args.output, args.opset, **options)
  print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
  return 0


def _import_torch(args) -> int:
  from crnn_jax import torch_import  # pylint: disable=g-import-not-at-top
  out = torch_import.import_torch(args.checkpoint_file, args.output, alphabet=args.alphabet,
                                  overwrite=args.overwrite)
  print(f"wrote crnn-jax workdir {out} (try: crnn-jax predict --checkpoint {out} IMAGE)",
        file=sys.stderr)
  return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
  """`eval` options: `--decoder` (repeatable), `--beam-width`, `--lexicon`, `--image-lexicons`,
  `--delta`."""
  select.add_arguments(parser, multiple=True)


def decoders_requested(args) -> bool:
  """Whether `eval` was asked for anything but the default greedy decoding."""
  return select.decoder_names(args) != ["greedy"]


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
  """`predict` options: decoder choice, backend, and `--visualize OUT_DIR`."""
  select.add_arguments(parser, multiple=False)
  parser.add_argument("--backend", default="jax", choices=("jax", "onnxruntime"),
                      help="jax (XLA) or onnxruntime (the model exported to ONNX on the fly, "
                      "kept in the cache directory; needs the export extra)")
  parser.add_argument("--onnx", metavar="FILE", default="",
                      help="read with an exported .onnx file (float32 or int8) in onnxruntime "
                      "instead of --checkpoint or --weights")
  parser.add_argument("--threads", type=int, default=0,
                      help="onnxruntime: intra-op threads (0: one per core)")
  parser.add_argument("--visualize", metavar="OUT_DIR",
                      help="write a PNG per image: input, per-frame path, text and confidence")


def recognizer_kwargs(args) -> dict[str, Any]:
  """Recognizer constructor arguments from `predict`'s decoder options."""
  name = getattr(args, "decoder", "greedy") or "greedy"
  if name == "lexicon" and not getattr(args, "lexicon", None):
    raise ValueError("--decoder lexicon needs --lexicon FILE")
  kwargs = dict(decoder=name, beam_width=args.beam_width, lexicon=args.lexicon,
                delta=args.delta, threads=getattr(args, "threads", 0))
  if not getattr(args, "onnx", ""):  # An --onnx file always runs in onnxruntime.
    kwargs["backend"] = getattr(args, "backend", "jax")
  return kwargs


def write_visualizations(out_dir, paths: Sequence[pathlib.Path], arrays, predictions) -> int:
  """Writes OUT_DIR/NNNN_<stem>.png for each prediction; returns how many."""
  from crnn_jax import visualize  # pylint: disable=g-import-not-at-top
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for i, (path, array, prediction) in enumerate(zip(paths, arrays, predictions)):
    visualize.save_prediction_png(out_dir / f"{i:04d}_{pathlib.Path(path).stem}.png", array,
                                  prediction)
  return len(predictions)


def eval_decoders(args, apply_fn, variables, charset, batches) -> dict[str, dict[str, Any]]:
  """Metrics of each `--decoder` on the eval batches (the model runs once per batch)."""
  import jax  # pylint: disable=g-import-not-at-top

  decoders = select.decoders_from_args(args, charset)
  image_lexicons = (select.load_image_lexicons(args.image_lexicons)
                    if getattr(args, "image_lexicons", None) else None)
  apply = jax.jit(lambda v, x, w: apply_fn(v, x, w, train=False))
  variables = jax.device_put(variables)

  def logits_fn(images, widths):
    return jax.device_get(apply(variables, images, widths))

  return select.evaluate(logits_fn, batches, decoders, image_lexicons,
                         num_examples=getattr(args, "show", 0))


def print_decoder_metrics(results: dict[str, dict[str, Any]], file=None) -> None:
  """A small table: one row per decoder."""
  file = file or sys.stdout
  keys = ("word_accuracy", "word_accuracy_ignore_case", "one_minus_ned", "char_error_rate",
          "mean_confidence")
  print(f"{'decoder':12s} " + " ".join(f"{k:>26s}" for k in keys), file=file)
  for label, metrics in results.items():
    print(f"{label:12s} " + " ".join(f"{metrics[k]:26.4f}" for k in keys), file=file)
