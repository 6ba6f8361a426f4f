"""`crnn-jax eval`: a model on datasets on disk (standard protocol), or on a synthetic split.

  crnn-jax eval --checkpoint WORKDIR --data data_lmdb_release/evaluation \
      [--case-sensitive] [--unfiltered] [--output results.json] [--markdown results.md]
  crnn-jax eval --checkpoint WORKDIR [--split test] [--num-records 2000] [--output m.json]
  crnn-jax eval ... [--decoder greedy,beam,lm,lexicon] [--beam-width 10] [--lexicon FILE]

With --data (`run_on_data`), each path may be a dataset built by `crnn-jax data build`, an LMDB
database, a folder with gt.txt, or a directory above several of them (each becomes one row:
`evaluation/` of deep-text-recognition-benchmark gives the ten benchmark sets). The table
(printed, and written as Markdown) has per dataset the records read, the records counted under
the protocol, word accuracy, 1 - NED, mean confidence and the records skipped per reason, then
the total over all rows and the totals over the usual benchmark groups (see
`crnn_jax.evaluation.protocol`). Without --data (`run_on_split`), the model is scored on its
run's held-out synthetic split (or eval datasets) as training evaluates it. Other decoders than
greedy (--decoder; by default the model's own, `lm` for English models, see
`crnn_jax.decoding.decoder.default_name`, in single-process runs) get a table each; every
table is headed by its decoder (`### decoder greedy`, `### decoder lm32`). The
evaluators are those of `crnn_jax.evaluation.evaluators` (`DatasetEvaluator`, `SplitEvaluator`,
`DecoderComparison`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import sys
from typing import Any, Sequence

from crnn_jax import pretrained
from crnn_jax.cli import decoder_flags
from crnn_jax.cli import format as cli_format
from crnn_jax.cli import model_flags
from crnn_jax.data import preprocess
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.evaluation import evaluators
from crnn_jax.evaluation import protocol as protocol_lib


def register(subparsers) -> None:
  """Adds the `eval` subcommand."""
  ev = subparsers.add_parser("eval", help="score a model (--checkpoint or --weights) on datasets "
                             "on disk (--data) or a run's held-out synthetic split")
  model_flags.add_model_arguments(ev)
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
  add_arguments(ev)
  add_eval_arguments(ev)
  ev.set_defaults(func=run)


def run(args) -> int:
  """The `crnn-jax eval` command: datasets on disk with --data, else the synthetic split.

  Run on every host of a multi-host job (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
  JAX_PROCESS_ID set, or a Cloud TPU pod), the processes join one distributed runtime first and
  each reads its share of the records.
  """
  from crnn_jax import distributed  # pylint: disable=g-import-not-at-top
  distributed.initialize()  # Before anything touches a device.
  return run_on_data(args) if args.data else run_on_split(args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds the dataset-evaluation options to the `eval` subcommand."""
  parser.add_argument("--data", nargs="+", metavar="PATH",
                      help="evaluate on these datasets (built ArrayRecord, LMDB, gt.txt folders "
                      "or directories above several) with the standard protocol")
  parser.add_argument("--kind", default="auto",
                      choices=("auto", "arrayrecord", "lmdb", "folder", "mjsynth"),
                      help="dataset kind of --data (auto: detected)")
  parser.add_argument("--data-split", default="",
                      help="split of built datasets / MJSynth annotation (default: the only one)")
  parser.add_argument("--case-sensitive", action="store_true",
                      help="62 alphanumeric characters, case compared")
  parser.add_argument("--unfiltered", action="store_true",
                      help="keep every label and compare the texts unchanged but for case (with "
                      "--case-sensitive: exactly, case too)")
  parser.add_argument("--nfkc", action="store_true",
                      help="the protocol of Chinese lines: keep every label, NFKC-normalize "
                      "labels and predictions, remove their white space, compare case")
  parser.add_argument("--skip-unknown-labels", action="store_true",
                      help="skip labels with characters outside the protocol's set instead of "
                      "stripping those characters (the standard strips them)")
  parser.add_argument("--max-label-length", type=int, default=protocol_lib.MAX_LABEL_LENGTH,
                      help="longer labels do not count (filtered protocols)")
  parser.add_argument("--markdown", help="write the table as Markdown (default: next to "
                      "--output, with suffix .md)")
  parser.add_argument("--read-threads", type=int, default=2,
                      help="threads decoding records")
  parser.add_argument("--max-width", type=int, default=preprocess.DEFAULT_MAX_WIDTH,
                      help="keep-ratio models: widest input in pixels, wider images are "
                      "squeezed (default: as predict and Recognizer; 0: the training config's "
                      "data.max_width)")


def protocol_from_args(args) -> protocol_lib.Protocol:
  """The protocol of the eval flags (--nfkc excludes --case-sensitive and --unfiltered)."""
  if getattr(args, "nfkc", False):
    if args.case_sensitive or args.unfiltered or getattr(args, "skip_unknown_labels", False):
      raise ValueError("--nfkc is a protocol of its own (every label, NFKC, no white space, "
                       "case compared): drop --case-sensitive, --unfiltered and "
                       "--skip-unknown-labels")
    return dataclasses.replace(protocol_lib.NFKC, max_label_length=int(args.max_label_length))
  return protocol_lib.Protocol(case_sensitive=bool(args.case_sensitive),
                               filter_labels=not args.unfiltered,
                               strip_labels=not getattr(args, "skip_unknown_labels", False),
                               max_label_length=int(args.max_label_length))


def expand_datasets(paths: Sequence[str], kind: str = "auto"):
  """The datasets (one table row each) at or below `paths`; fails if a path has none."""
  from crnn_jax.data import sources  # pylint: disable=g-import-not-at-top
  entries = []
  for path in paths:
    found = sources.find_datasets(path, kind)
    if not found:
      raise FileNotFoundError(f"no dataset at {path}")
    entries.extend(found)
  return entries


def _image_lexicons(args):
  """The per-image lexicons of --image-lexicons (None without)."""
  if not getattr(args, "image_lexicons", None):
    return None
  return decoder_lib.load_image_lexicons(args.image_lexicons)


def _other_decoders(args, config, charset, state, entries, protocol) -> dict[str, dict]:
  """Per-dataset results of each `--decoder` other than greedy (single process), by label."""
  import jax  # pylint: disable=g-import-not-at-top

  if not decoders_requested(args, charset):
    return {}
  if jax.process_count() > 1:
    raise ValueError("--decoder beam/lm/lexicon with --data runs in a single process")
  image_lexicons = _image_lexicons(args)
  logits_fn = evaluators.logits_function(state)
  evaluator = evaluators.DatasetEvaluator(entries, config.data, protocol,
                                          config.eval_batch_size, split=args.data_split,
                                          read_threads=args.read_threads)
  out = {}
  for decoder in decoder_flags.decoders_from_args(args, charset):
    if decoder.name == "greedy":
      continue  # The main results.
    out[decoder.label] = evaluator.run(decoder_lib.make_predict(logits_fn, decoder,
                                                                image_lexicons))
  return out


def check_max_width(max_width: int) -> None:
  """Raises ValueError unless `--max-width` is 0 or at least the model's narrowest input."""
  if max_width and max_width < preprocess.MIN_WIDTH:
    raise ValueError(f"--max-width must be at least {preprocess.MIN_WIDTH} pixels (or 0 for "
                     f"the training config's), got {max_width}")


def reading_config(data_config, max_width: int):
  """`config.data` as `eval --data` reads images: keep-ratio ones up to `max_width` columns
  (the width `predict` and `Recognizer` allow) instead of the training width; 0 keeps it.

  Raises:
    ValueError: a width narrower than the model's narrowest input.
  """
  check_max_width(max_width)
  if data_config.get("resize") != "keep_ratio" or not max_width:
    return data_config
  data_config = data_config.copy_and_resolve_references()
  data_config.max_width = int(max_width)
  return data_config


def run_on_data(args) -> int:
  """`crnn-jax eval --data ...`: datasets on disk under the standard protocol."""
  import jax  # pylint: disable=g-import-not-at-top

  from crnn_jax import run_files, sharding  # pylint: disable=g-import-not-at-top

  name = model_name(args)
  protocol = protocol_from_args(args)
  check_max_width(args.max_width)  # Bad flags fail before the model loads.
  entries = expand_datasets(args.data, args.kind)  # Fails early on a missing path.
  # The model is restored once, for the greedy results and every other --decoder.
  model = run_files.load_model(args.checkpoint, args.step, getattr(args, "weights", ""))
  config, charset, step = model.config, model.charset, model.step
  if args.batch_size:
    config.eval_batch_size = args.batch_size
  state = evaluators.model_state(model.module.apply, model.variables, model.step)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.eval_batch_size, mesh, "eval batch size")
  predict = functools.partial(evaluators.greedy_predictor(charset, mesh), state)
  config.data = reading_config(config.data, args.max_width)  # For every decoder below.
  log = (lambda m: print(m, file=sys.stderr)) if jax.process_index() == 0 else None
  if log:
    log(f"evaluating step {step} of {name} on {len(entries)} dataset(s), "
        f"protocol {protocol.name}")
  evaluator = evaluators.DatasetEvaluator(
      entries, config.data, protocol, config.eval_batch_size, split=args.data_split,
      process_index=jax.process_index(), process_count=jax.process_count(),
      read_threads=args.read_threads,
      allreduce=evaluators.sum_over_processes if jax.process_count() > 1 else None, log=log,
      quiet=getattr(args, "quiet", False) or jax.process_index() != 0)
  results = evaluator.run(predict)
  results = dict(checkpoint=name, step=int(step), **results)
  tables = ""
  others = _other_decoders(args, config, charset, state, entries, protocol)
  for label, decoded in others.items():
    results.setdefault("decoders", {})[label] = decoded
    tables += f"\n### decoder {label}\n\n" + protocol_lib.markdown_table(decoded)
  if jax.process_index() != 0:
    return 0
  table = "### decoder greedy\n\n" + protocol_lib.markdown_table(results) + tables
  print(table)
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
  markdown = args.markdown or (str(pathlib.Path(args.output).with_suffix(".md"))
                               if args.output else None)
  if markdown:
    pathlib.Path(markdown).write_text(table)
  return 0


def run_on_split(args) -> int:
  """`crnn-jax eval` without --data: the run's held-out synthetic split (or eval datasets)."""
  from crnn_jax import run_files, sharding  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  model = run_files.load_model(args.checkpoint, args.step, args.weights)
  config, charset, step = model.config, model.charset, model.step
  if args.batch_size:
    config.eval_batch_size = args.batch_size
  state = evaluators.model_state(model.module.apply, model.variables, model.step)
  mesh = sharding.make_mesh()
  num_records = args.num_records or None  # None: all of the run's eval datasets, or eval_size.
  print(f"evaluating step {step} of {model_name(args)} on "
        f"{pipeline.describe_eval_data(config, args.split, num_records)}", file=sys.stderr)
  evaluator = evaluators.SplitEvaluator(config, charset, mesh, args.split, num_records,
                                       progress=not args.quiet)
  metrics, examples = evaluator.run(state, num_examples=args.show)
  metrics = dict(checkpoint=model_name(args), step=step, split=args.split, **metrics)
  if decoders_requested(args, charset):  # Other decoders than greedy: each one's metrics.
    metrics["decoders"] = eval_decoders(args, state, charset, evaluator.batches)
    print_decoder_metrics(metrics["decoders"])
  for pred, target, conf in examples:
    print(f"{'ok ' if pred == target else 'BAD'} {pred!r:24} target {target!r:24} "
          f"confidence {conf:.3f}")
  print("decoder greedy")
  for key in ("count", "word_accuracy", "word_accuracy_ignore_case", "one_minus_ned",
              "char_error_rate", "mean_confidence"):
    value = metrics[key]
    print(f"{key:28s} {value:.4f}" if isinstance(value, float) else f"{key:28s} {value}")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(metrics, indent=2) + "\n")
  return 0


def model_name(args) -> str:
  """What `eval` / `predict` read: the checkpoint workdir or the weights."""
  if args.checkpoint:
    return str(args.checkpoint)
  return f"weights {args.weights or pretrained.DEFAULT_MODEL}"


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
  """`eval` options: `--decoder` (repeatable), `--beam-width`, `--lexicon`, `--image-lexicons`,
  `--delta`."""
  decoder_flags.add_arguments(parser, multiple=True)


def decoders_requested(args, charset=None) -> bool:
  """Whether `eval` scores anything but greedy decoding: given `--decoder`, or by default, in a
  single process, for a model whose default decoder is not greedy (see
  `decoder_flags.decoder_names`)."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() > 1:
    charset = None  # The default extra decoder runs in a single process only.
  return decoder_flags.decoder_names(args, charset) != ["greedy"]


def eval_decoders(args, state, charset, batches) -> dict[str, dict[str, Any]]:
  """Metrics of each `--decoder` on the eval batches (the model runs once per batch)."""
  decoders = decoder_flags.decoders_from_args(args, charset)
  comparison = evaluators.DecoderComparison(batches, decoders, _image_lexicons(args))
  return comparison.run(evaluators.logits_function(state), num_examples=getattr(args, "show", 0))


def print_decoder_metrics(results: dict[str, dict[str, Any]], file=None) -> None:
  """A small table: one row per decoder."""
  file = file or sys.stdout
  keys = ("word_accuracy", "word_accuracy_ignore_case", "one_minus_ned", "char_error_rate",
          "mean_confidence")
  print(f"{'decoder':12s} " + " ".join(f"{k:>26s}" for k in keys), file=file)
  for label, metrics in results.items():
    print(f"{label:12s} " + " ".join(f"{metrics[k]:26.4f}" for k in keys), file=file)
