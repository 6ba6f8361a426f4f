"""The `crnn-jax` command: evaluate and run trained models.

  crnn-jax eval --checkpoint WORKDIR [--split test] [--num-records 2000] [--output m.json]
  crnn-jax eval --checkpoint WORKDIR --data DATASET [DATASET ...] [--case-sensitive] [--unfiltered]
  crnn-jax eval --data testdata/heldout_en --case-sensitive     # the shipped English model
  crnn-jax predict IMAGE_OR_DIR ... [--checkpoint WORKDIR | --weights DIR] [--output preds.tsv]
      [--decoder greedy|beam|lexicon] [--visualize OUT_DIR] [--backend onnxruntime | --onnx FILE]
  crnn-jax export --checkpoint WORKDIR --format onnx|stablehlo --output FILE [--quantize int8]
  crnn-jax import-torch crnn.pth --output WORKDIR
  crnn-jax data build {lmdb,mjsynth,folder,synthetic} --input PATH ... --output DATA_DIR
  crnn-jax data to-lmdb --input DATASET --output LMDB_DIR

Training has its own entry point with config files: `python -m train.main --config ...`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import warnings
from typing import Sequence

from crnn_jax import cli_format
from crnn_jax import data_cli
from crnn_jax import deploy_cli
from crnn_jax import eval_cli
from crnn_jax import pretrained



def model_name(args) -> str:
  """What `eval` / `predict` read: the checkpoint workdir or the weights."""
  if args.checkpoint:
    return str(args.checkpoint)
  return f"weights {args.weights or pretrained.DEFAULT_MODEL}"


def _eval(args) -> int:
  if args.data:  # Datasets on disk, with the standard protocol (crnn_jax/eval_cli.py).
    return eval_cli.run(args)
  from crnn_jax import run_files, sharding, train_lib  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  config = run_files.load_model_config(args.checkpoint, args.weights)
  if args.batch_size:
    config.eval_batch_size = args.batch_size
  charset, step, state = train_lib.restore_inference_state(config, args.checkpoint, args.step,
                                                           args.weights)
  mesh = sharding.make_mesh()
  num_records = args.num_records or None  # None: all of the run's eval datasets, or eval_size.
  print(f"evaluating step {step} of {model_name(args)} on "
        f"{pipeline.describe_eval_data(config, args.split, num_records)}", file=sys.stderr)
  evaluator = train_lib.Evaluator(config, charset, mesh, args.split, num_records,
                                  progress=not args.quiet)
  metrics, examples = evaluator.run(state, num_examples=args.show)
  metrics = dict(checkpoint=model_name(args), step=step, split=args.split, **metrics)
  if deploy_cli.decoders_requested(args):  # --decoder beam / lexicon: each one's metrics.
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    metrics["decoders"] = deploy_cli.eval_decoders(args, state.apply_fn, variables, charset,
                                                   evaluator.batches)
    deploy_cli.print_decoder_metrics(metrics["decoders"])
  for pred, target, conf in examples:
    print(f"{'ok ' if pred == target else 'BAD'} {pred!r:24} target {target!r:24} "
          f"confidence {conf:.3f}")
  for key in ("count", "word_accuracy", "word_accuracy_ignore_case", "one_minus_ned",
              "char_error_rate", "mean_confidence"):
    value = metrics[key]
    print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(metrics, indent=2) + "\n")
  return 0


def _predict(args) -> int:
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top

  try:
    kwargs = deploy_cli.recognizer_kwargs(args)
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
    count = deploy_cli.write_visualizations(args.visualize, good, arrays, predictions)
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


VERBOSITY_LEVELS = ("error", "warning", "info", "debug")


def set_verbosity(level: str) -> None:
  """Sets absl's log level, which JAX, TFDS and orbax log through (orbax's INFO lines show at
  'debug' only: see `checkpointing.QuietOrbaxInfo`)."""
  import absl.logging  # pylint: disable=g-import-not-at-top
  absl.logging.set_verbosity(level)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="crnn-jax", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--verbosity", default="warning", choices=VERBOSITY_LEVELS,
                      help="log lines shown: warning: crnn-jax's lines and real warnings; "
                      "info: also the libraries' INFO lines (TFDS, JAX); debug: everything, "
                      "orbax's checkpoint lines too")
  sub = parser.add_subparsers(dest="command", required=True)

  ev = sub.add_parser("eval", help="evaluate a checkpoint on a held-out synthetic split")
  ev.add_argument("--checkpoint", default="",
                  help="training workdir (default: the shipped weights, see --weights)")
  ev.add_argument("--weights", default="",
                  help="without --checkpoint: a shipped model name or a weights directory "
                  f"(default: {pretrained.DEFAULT_MODEL})")
  ev.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  ev.add_argument("--split", default="test", choices=("eval", "test"),
                  help="synthetic split (seed data.eval_seed or data.test_seed)")
  ev.add_argument("--num-records", type=int, default=0,
                  help="records evaluated (default: all of the run's data.eval_paths, or "
                  "data.eval_size synthetic images)")
  ev.add_argument("--batch-size", type=int, default=0,
                  help="images per batch (0: the config's eval_batch_size)")
  ev.add_argument("--show", type=int, default=0, help="print the first N predictions")
  ev.add_argument("--output", help="write the metrics as JSON")
  cli_format.add_quiet_argument(ev)
  eval_cli.add_arguments(ev)
  deploy_cli.add_eval_arguments(ev)
  ev.set_defaults(func=_eval)

  pr = sub.add_parser("predict", help="read text from images")
  pr.add_argument("--checkpoint", default="",
                  help="training workdir (default: the shipped weights, see --weights)")
  pr.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  pr.add_argument("--weights", default="",
                  help="without --checkpoint: a shipped model name or a weights directory "
                  f"(default: {pretrained.DEFAULT_MODEL}, the English model of 62 "
                  "case-sensitive characters)")
  pr.add_argument("inputs", nargs="+", help="image files or directories")
  pr.add_argument("--output", help="write path<TAB>text<TAB>confidence lines here")
  pr.add_argument("--batch-size", type=int, default=64, help="images per batch")
  cli_format.add_quiet_argument(pr)
  deploy_cli.add_predict_arguments(pr)
  pr.set_defaults(func=_predict)
  data_cli.register(sub)
  deploy_cli.register(sub)
  return cli_format.apply(parser)


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  set_verbosity(args.verbosity)
  try:
    return args.func(args)
  except (FileNotFoundError, ValueError) as e:
    print(f"crnn-jax {args.command}: error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
