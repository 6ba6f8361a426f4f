"""`crnn-jax data`: build ArrayRecord datasets, and write datasets as standard LMDB.

  crnn-jax data build lmdb --input data_lmdb_release/training/MJ --output ~/tfds --name MJ
  crnn-jax data build mjsynth --input mnt/ramdisk/max/90kDICT32px --output ~/tfds --num-workers 8
  crnn-jax data build folder --input my_lines/ --output ~/tfds [--split test]
  crnn-jax data build synthetic --num-records 10000 --seed 7 --output ~/tfds
  crnn-jax data to-lmdb --input ~/tfds/crnn_folder/my_lines --output my_lines_lmdb
  crnn-jax data heldout-set --output testdata/heldout_en --fonts-dir /usr/share/fonts/truetype/liberation
  crnn-jax data heldout-set --augment scene-irregular --output testdata/heldout_irregular \
      --fonts-dir /usr/share/fonts/truetype/klee
  crnn-jax data heldout-zh --output testdata/heldout_zh
  crnn-jax data samples --config configs/scene_en.py --output grid.png [--real DIR]
      [--count 32]

A build writes `OUTPUT/crnn_<kind>/<NAME>/1.0.0/` and prints a report: records written and
records skipped per reason, naming the first few of each. Training reads the result with
`config.data.source = 'arrayrecord'` (or 'auto'), evaluation with `crnn-jax eval --data`.

`samples` draws a contact sheet of what a training config's renderer draws (its text mix,
fonts and augmentation, from its training seed), optionally beside real crops from a folder
(`crnn_jax/samples.py`), to look at before a run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from crnn_jax.cli import format as cli_format
from crnn_jax import progress
from crnn_jax.text import charset as charset_lib

BUILDER_KINDS = ("lmdb", "mjsynth", "folder", "synthetic")
_CHARSETS = {"alnum36": charset_lib.ALPHANUMERIC_36, "alnum62": charset_lib.ALPHANUMERIC_62}


def _charset(value: str) -> str:
  return _CHARSETS.get(value, value)


def _add_filters(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--charset", default="",
                      help="skip labels with characters outside this set (a string, or alnum36 "
                      "/ alnum62); default: keep all")
  parser.add_argument("--fold-case", action="store_true",
                      help="lower-case labels before the --charset check")
  parser.add_argument("--max-label-length", type=int, default=0,
                      help="skip longer labels (0: no limit)")
  parser.add_argument("--for-config", default="", metavar="CONFIG",
                      help="also skip what training with this config would skip: characters "
                      "outside its charset, labels too long for its limit or for the CTC "
                      "frames of the image resized as it resizes (e.g. configs/synth_en.py)")
  parser.add_argument("--report", help="also write the report as JSON here")


def register(subparsers) -> None:
  """Adds the `data` subcommand (build, to-lmdb, heldout-set, heldout-zh, samples)."""
  data = subparsers.add_parser("data", help="build datasets, convert them to LMDB, draw "
                               "samples of a config's renderer",
                               description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = data.add_subparsers(dest="data_command", required=True)

  build = sub.add_parser("build", help="write a dataset as ArrayRecord shards (TFDS)")
  build.add_argument("kind", choices=BUILDER_KINDS)
  build.add_argument("--input", nargs="+", default=[], metavar="PATH",
                     help="input datasets (lmdb: databases or directories above them; mjsynth: "
                     "the Synth90k root or an annotation file; folder: directories with gt.txt "
                     "or the files)")
  build.add_argument("--output", required=True, help="TFDS data directory")
  build.add_argument("--name", default="", help="dataset name (default: the input's name)")
  build.add_argument("--split", default="train", help="split name written (default: train)")
  build.add_argument("--source-split", default="",
                     help="mjsynth: annotation train, val or test (default: train)")
  build.add_argument("--height", type=int, default=0,
                     help="resize images to this height, keeping the aspect ratio (0: keep)")
  build.add_argument("--num-workers", type=int, default=0,
                     help="processes decoding and re-encoding images")
  build.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset")
  cli_format.add_quiet_argument(build)
  _add_filters(build)
  synth = build.add_argument_group("synthetic")
  synth.add_argument("--num-records", type=int, default=1000, help="images rendered")
  synth.add_argument("--seed", type=int, default=0,
                     help="record i depends only on (seed, i) and the installed fonts")
  synth.add_argument("--alphabet", default="alnum62",
                     help="characters rendered (a string, or alnum36 / alnum62)")
  synth.add_argument("--from-config", default="", metavar="CONFIG",
                     help="take every renderer setting below from a training config's "
                     "data.synthetic and text.charset (e.g. configs/scene_en.py:stage=1); "
                     "--num-records and --seed still apply")
  _add_render_flags(synth)
  build.set_defaults(func=_build)

  to_lmdb = sub.add_parser(
      "to-lmdb", help="write a dataset as a standard LMDB database",
      description="Writes image-%%09d / label-%%09d / num-samples records (crnn.pytorch, "
      "deep-text-recognition-benchmark). Images are written as the input holds them: the "
      "encoded bytes of LMDB, MJSynth and folder inputs are copied unchanged (colour stays "
      "colour); a built ArrayRecord dataset holds grayscale PNGs (builds convert to grayscale "
      "as model inputs are), so its LMDB is grayscale too.")
  to_lmdb.add_argument("--input", required=True,
                       help="a built dataset, a folder with gt.txt, LMDB or MJSynth")
  to_lmdb.add_argument("--output", required=True, help="the new LMDB directory")
  to_lmdb.add_argument("--kind", default="auto",
                       choices=("auto", "arrayrecord", "lmdb", "folder", "mjsynth"),
                       help="the input's format (auto: detected)")
  to_lmdb.add_argument("--split", default="", help="split of a built dataset / MJSynth")
  cli_format.add_quiet_argument(to_lmdb)
  _add_filters(to_lmdb)
  to_lmdb.set_defaults(func=_to_lmdb)

  heldout = sub.add_parser("heldout-set",
                           help="render a test set with fonts outside the training pool")
  heldout.add_argument("--output", "--out", dest="output", required=True,
                       help="the new directory (gt.txt, meta.tsv, PNGs)")
  heldout.add_argument("--fonts-dir", action="append", required=True, metavar="DIR",
                       help="a directory of held-out .ttf/.otf fonts (repeatable)")
  heldout.add_argument("--seed", type=int, default=20261124, help="seed of all random choices")
  heldout.add_argument("--max-length", type=int, default=12, help="longest text drawn")
  heldout.add_argument("--augment", default="light",
                       choices=("none", "light", "strong", "scene-irregular"),
                       help="renderer level (light: clean print, mild noise and blur; "
                       "scene-irregular: the scene level, every word curved, in perspective "
                       "or rotated, fonts checked against the 'signage' pool)")
  heldout.add_argument("--backgrounds-dir", default="", metavar="DIR",
                       help="scene-irregular: held-out background photographs (default: "
                       "flat, gradient and noise panels only)")
  cli_format.add_quiet_argument(heldout)
  heldout.set_defaults(func=_heldout_set)

  heldout_zh = sub.add_parser(
      "heldout-zh", help="render the mixed Chinese/English test set in held-out CJK faces")
  heldout_zh.add_argument("--output", "--out", dest="output", required=True,
                          help="the new directory (gt.txt, meta.tsv, PNGs)")
  heldout_zh.add_argument("--seed", type=int, default=None,
                          help="seed of all random choices (default: the repository set's)")
  heldout_zh.add_argument("--count", type=int, action="append", default=None,
                          metavar="N", help="images per kind, in the order chinese, mixed, "
                          "latin, punctuation (repeat 4 times; default 120, 120, 80, 80)")
  cli_format.add_quiet_argument(heldout_zh)
  heldout_zh.set_defaults(func=_heldout_zh)

  samples = sub.add_parser("samples",
                           help="draw a grid of what a config's data engine renders, "
                           "optionally beside real crops")
  samples.add_argument("--config", required=True, metavar="CONFIG",
                       help="a training config file (e.g. configs/scene_en.py:stage=9)")
  samples.add_argument("--output", required=True, help="the PNG to write")
  samples.add_argument("--real", metavar="DIR", default="",
                       help="also a panel of real crops from this folder (searched "
                       "recursively; labels from its gt.txt files)")
  samples.add_argument("--count", type=int, default=32, help="images per panel")
  samples.add_argument("--columns", type=int, default=4, help="images per row of a panel")
  samples.add_argument("--seed", type=int, default=None,
                       help="the renderer's seed (default: the config's data.train_seed)")
  samples.set_defaults(func=_samples)


def _heldout_set(args) -> int:
  from crnn_jax.synth import fonts  # pylint: disable=g-import-not-at-top
  from crnn_jax.evaluation import heldout_en  # pylint: disable=g-import-not-at-top

  font_paths = []
  try:
    for directory in args.fonts_dir:
      font_paths.extend(fonts.fonts_in_directory(directory))
    samples = heldout_en.write_test_set(args.output, font_paths, seed=args.seed,
                                        max_length=args.max_length, augment=args.augment,
                                        backgrounds_dir=args.backgrounds_dir,
                                        progress=not args.quiet)
  except (ValueError, OSError, ImportError) as e:  # ImportError: the 'wide' pool's packages
    print(f"error: {e}", file=sys.stderr)
    return 1
  families = sorted({fonts.typeface_family(p) for p in font_paths})
  print(f"wrote {len(samples)} images to {args.output} with {len(font_paths)} fonts "
        f"({', '.join(families)})")
  return 0


def _heldout_zh(args) -> int:
  try:
    from crnn_jax.evaluation import heldout_zh  # pylint: disable=g-import-not-at-top
    from crnn_jax.synth import cjk_fonts  # pylint: disable=g-import-not-at-top
    counts = None
    if args.count is not None:
      if len(args.count) != len(heldout_zh.KINDS):
        raise ValueError(f"--count is given once per kind ({', '.join(heldout_zh.KINDS)}), "
                         f"got {len(args.count)} values")
      counts = dict(zip(heldout_zh.KINDS, args.count))
    seed = heldout_zh.DEFAULT_SEED if args.seed is None else args.seed
    faces = cjk_fonts.held_out_fonts()
    samples = heldout_zh.write_test_set(args.output, faces, seed=seed, counts=counts,
                                        progress=not args.quiet)
  except (ValueError, OSError, ImportError) as e:  # ImportError: jieba (pip install '.[zh]').
    print(f"error: {e}", file=sys.stderr)
    return 1
  families = sorted({cjk_fonts.face_family(face) for face in faces})
  print(f"wrote {len(samples)} images to {args.output} with {len(faces)} face(s) "
        f"({', '.join(families)})")
  return 0


def _samples(args) -> int:
  from crnn_jax import config_file  # pylint: disable=g-import-not-at-top
  from crnn_jax import samples  # pylint: disable=g-import-not-at-top
  config = config_file.load(args.config)
  try:
    result = samples.write_samples(config, args.output, count=args.count, seed=args.seed,
                                   real=args.real or None, columns=args.columns,
                                   config_name=pathlib.Path(args.config).stem)
  except ImportError as e:  # The font packages or extras of the config's renderer.
    print(f"error: {e}", file=sys.stderr)
    return 1
  for message in result["skipped"][:5]:
    print(f"warning: left out {message}", file=sys.stderr)
  if len(result["skipped"]) > 5:
    print(f"warning: left out {len(result['skipped'])} unreadable images in all", file=sys.stderr)
  real = f" and {result['real']} real crops from {args.real}" if args.real else ""
  print(f"wrote {result['output']} ({result['size'][0]} x {result['size'][1]} px): "
        f"{result['rendered']} rendered images{real}")
  return 0


def _print_report(report, header: str) -> None:
  print(header)
  print(f"  written: {report.written}")
  print(f"  skipped: {report.skipped}")
  details = report.format(indent="    ")
  if details:
    print(details)


def _write_report(path: str | None, payload: dict) -> None:
  if path:
    pathlib.Path(path).write_text(json.dumps(payload, indent=2) + "\n")


_JSON_FIELDS = ("scene_params", "glyph", "zh_mix")  # Sets of overrides, given as JSON objects.


def _add_render_flags(group) -> None:
  """One flag per `RenderParams` field (`--font-size` for font_size), with its default and help."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from crnn_jax.synth.params import RenderParams  # pylint: disable=g-import-not-at-top
  for field in dataclasses.fields(RenderParams):
    flag = "--" + field.name.replace("_", "-")
    help_text = field.metadata["help"]
    if field.name in _JSON_FIELDS:
      group.add_argument(flag, default="", metavar="JSON", help=help_text)
    elif field.name == "cjk_regions":
      group.add_argument(flag, default=",".join(field.default), help=help_text)
    elif isinstance(field.default, bool):
      group.add_argument(flag, default=field.default, action=argparse.BooleanOptionalAction,
                         help=help_text)
    else:
      group.add_argument(flag, type=type(field.default), default=field.default,
                         choices=field.metadata.get("choices"),
                         help=help_text + " (default: %(default)s)")


def _synthetic_options(args) -> dict:
  """The renderer settings of `data build synthetic`: from --from-config, else the flags."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from crnn_jax.synth.params import RenderParams  # pylint: disable=g-import-not-at-top
  if args.from_config:
    from crnn_jax import config_file  # pylint: disable=g-import-not-at-top
    config = config_file.load(args.from_config)
    return dict(alphabet=config.text.charset,
                render=RenderParams.from_config(config.data.synthetic))
  values = {}
  for field in dataclasses.fields(RenderParams):
    value = getattr(args, field.name)
    if field.name in _JSON_FIELDS:
      value = _json_object(value, "--" + field.name.replace("_", "-"))
    elif field.name == "cjk_regions":
      value = tuple(r for r in value.split(",") if r)
    values[field.name] = value
  return dict(alphabet=_charset(args.alphabet), render=RenderParams(**values))


def _json_object(text: str, flag: str) -> dict:
  """A flag's JSON object (RenderParams checks its fields); empty: {}."""
  if not text:
    return {}
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{flag} is not JSON ({e}): {text!r}") from None
  if not isinstance(value, dict):
    raise ValueError(f"{flag} must be a JSON object, got {text!r}")
  return value


def _build(args) -> int:
  import absl.logging  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  from crnn_jax.data import builders  # pylint: disable=g-import-not-at-top

  tfds.disable_progress_bar()
  if args.kind != "synthetic" and not args.input:
    raise ValueError(f"data build {args.kind} needs --input")
  options = dict(paths=tuple(args.input), split=args.split, source_split=args.source_split,
                 charset=_charset(args.charset), fold_case=args.fold_case,
                 max_label_length=args.max_label_length, height=args.height,
                 num_workers=args.num_workers, training_config=args.for_config)
  if args.kind == "synthetic":
    options.update(num_records=args.num_records, seed=args.seed,
                   **_synthetic_options(args))
  verbosity = absl.logging.get_verbosity()
  if verbosity < absl.logging.INFO:  # TFDS's per-build chatter, unless `--verbosity info`.
    absl.logging.set_verbosity(absl.logging.ERROR)
  try:
    result = builders.build(args.kind, args.output, name=args.name, overwrite=args.overwrite,
                            progress=not args.quiet, **options)
  except FileExistsError as e:
    raise ValueError(str(e)) from None
  finally:
    absl.logging.set_verbosity(verbosity)
  for note in result.notes:
    print(f"warning: {note}", file=sys.stderr)
  _print_report(result.report, f"built {result.name} ({args.kind}, split {result.split}) in "
                f"{result.directory}")
  _write_report(args.report, dict(directory=str(result.directory), name=result.name,
                                  split=result.split, notes=result.notes,
                                  **result.report.to_dict()))
  return 0


def _to_lmdb(args) -> int:
  from crnn_jax.data import lmdb_io  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import records  # pylint: disable=g-import-not-at-top
  from crnn_jax.data import sources  # pylint: disable=g-import-not-at-top

  source = sources.open_dataset(args.input, args.kind, args.split)
  for note in source.notes:
    print(f"warning: {note}", file=sys.stderr)
  output = pathlib.Path(args.output)
  if lmdb_io.is_lmdb_dir(output):
    raise ValueError(f"{output} already holds an LMDB database")
  created = not output.exists()
  chars = set(_charset(args.charset))
  allowed = None
  if chars:
    allowed = (lambda c: c.lower() in chars) if args.fold_case else chars.__contains__
  training_check = None
  if args.for_config:
    from crnn_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    training_check = pipeline.training_skip_check(args.for_config)
  report = records.SkipReport()
  with lmdb_io.LmdbWriter(output) as writer:
    for i in progress.bar(range(len(source)), desc=output.name, unit="rec", quiet=args.quiet):
      record = source[i]
      try:
        image, text = records.parse_record(record, allowed=allowed,
                                           max_length=args.max_label_length)
      except records.BadRecord as e:
        report.add_bad(str(record.get("key", i)), e)
        continue
      skip = training_check(record) if training_check is not None else None
      if skip is not None:
        report.add_bad(str(record.get("key", i)), skip)
        continue
      data = record["image"]
      # Keep the original encoded bytes (they decoded fine); arrays are written as PNG.
      data = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else (
          records.encode_png(image))
      writer.add(data, text)
      report.written += 1
  if not report.written:
    if created:
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(output, ignore_errors=True)
    raise ValueError(f"no usable record in {args.input}:\n{report.format()}")
  _print_report(report, f"wrote {output} from {args.input} ({source.kind})")
  _write_report(args.report, dict(output=str(output), input=str(args.input),
                                  **report.to_dict()))
  return 0
