"""`crnn-jax export` and `crnn-jax import-torch`: a model to other formats and back.

  crnn-jax export --checkpoint WORKDIR --format onnx|stablehlo --output FILE [--quantize int8]
      [--calibration-data DIR]
  crnn-jax export --checkpoint WORKDIR --format weights --output DIR [--dtype float32]
  crnn-jax export --weights NAME_OR_DIR --format onnx|stablehlo|weights --output FILE
  crnn-jax import-torch crnn.pth --output WORKDIR

ONNX export and int8 quantization need the `export` extra (pip install 'crnn-jax[export]');
without it the command says so in one line.
"""

from __future__ import annotations

import argparse
import sys

from crnn_jax.text import charset as charset_lib



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
                  "calibrated on images like the model's inputs; int8 LSTMs, dynamic)")
  ex.add_argument("--calibration-images", type=int, default=1024,
                  help="--quantize int8: images the activation ranges are taken from (at most "
                  "this many of --calibration-data)")
  ex.add_argument("--calibration-data", metavar="DIR", default=None,
                  help="--quantize int8: calibrate on your own images (a directory, searched "
                  "recursively), or 'renderer': the model's own training renderer (needs its "
                  "fonts and extras); default: images rendered with the fonts every install "
                  "has, in the model's text mix")
  ex.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=True,
                  help="--quantize int8: 7-bit weights, which CPUs without AVX-512 VNNI need "
                  "(full 8-bit weights saturate their int8 kernels)")
  ex.set_defaults(func=_export)

  im = subparsers.add_parser("import-torch", help="convert crnn.pytorch weights to a workdir")
  im.add_argument("checkpoint_file", metavar="CRNN_PTH", help="crnn.pytorch state dict (.pth)")
  im.add_argument("--output", required=True, help="workdir to create")
  im.add_argument("--alphabet", default=charset_lib.ALPHANUMERIC_36,
                  help="characters of classes 1..K-1 (default: crnn.pytorch's 36)")
  im.add_argument("--overwrite", action="store_true", help="allow a non-empty output directory")
  im.set_defaults(func=_import_torch)


def _export(args) -> int:
  if args.format == "weights":
    from crnn_jax import pretrained, run_files  # pylint: disable=g-import-not-at-top
    if args.checkpoint:
      out = run_files.export_checkpoint(args.checkpoint, args.output, args.step, args.dtype)
    else:
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
  if args.calibration_data and args.quantize == "none":
    print("error: --calibration-data is for --quantize int8", file=sys.stderr)
    return 2
  options = dict(quantize=args.quantize, calibration_images=args.calibration_images,
                 reduce_range=args.reduce_range, calibration_data=args.calibration_data)
  try:
    if args.checkpoint:
      path = export.export_checkpoint(args.checkpoint, args.format, args.output, args.step,
                                      args.opset, **options)
    else:
      path = export.export_weights(args.weights, args.format, args.output, args.opset,
                                   **options)
  except ImportError as e:  # The export extra (onnx, onnxruntime): one line, as predict says.
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
  return 0


def _import_torch(args) -> int:
  from crnn_jax import torch_import  # pylint: disable=g-import-not-at-top
  out = torch_import.import_torch(args.checkpoint_file, args.output, alphabet=args.alphabet,
                                  overwrite=args.overwrite)
  print(f"wrote crnn-jax workdir {out} (try: crnn-jax predict --checkpoint {out} IMAGE)",
        file=sys.stderr)
  return 0
