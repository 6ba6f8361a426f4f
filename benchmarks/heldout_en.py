"""Case-sensitive word accuracy on the held-out English test set: crnn-jax against Tesseract.

  python benchmarks/heldout_en.py                       # the default model vs Tesseract
  python benchmarks/heldout_en.py --weights synth_en     # the clean-print model
  python benchmarks/heldout_en.py --checkpoint runs/synth_en --no-tesseract
  python benchmarks/heldout_en.py --output results.json
  python benchmarks/heldout_en.py --data testdata/heldout_irregular --weights scene_en \\
      --decoder greedy --no-tesseract       # the irregular set: a column per geometry too

The set (testdata/heldout_en, see crnn_jax/evaluation/heldout_en.py) is rendered with fonts outside
the training pool. Tesseract (Debian `tesseract-ocr`, English model) reads each image with
`--psm 7` (one text line), once as installed and once restricted to the same 62 characters as
our model (`tessedit_char_whitelist`). Prints a Markdown table: accuracy overall, per group
(words, digits, random strings) and per kind, and seconds per image; for an irregular set
(testdata/heldout_irregular, whose meta.tsv names each image's geometry) per geometry too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import peers  # pylint: disable=wrong-import-position
from crnn_jax import pretrained  # pylint: disable=wrong-import-position
from crnn_jax.text import charset as charset_lib  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import heldout_en  # pylint: disable=wrong-import-position

ROWS = ("all", "words", "word_lower", "word_upper", "word_capitalized", "digits", "random")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", default=str(REPO / "testdata" / "heldout_en"))
  parser.add_argument("--checkpoint", default="", help="a training workdir instead of --weights")
  parser.add_argument("--weights", default=pretrained.DEFAULT_MODEL,
                      help="shipped model name or directory (default: the default model)")
  parser.add_argument("--decoder", default=None,
                      help="crnn-jax decoder (default: the model's own, lm for English models; "
                      "the README's tables before 2026-12-03 are greedy)")
  parser.add_argument("--no-tesseract", action="store_true")
  parser.add_argument("--no-crnn", action="store_true", help="only Tesseract")
  parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                      help="Tesseract processes at a time (seconds/image are per process)")
  parser.add_argument("--output", help="write the tables and predictions as JSON")
  parser.add_argument("--show-errors", type=int, default=0, help="print N errors per system")
  args = parser.parse_args()

  samples = heldout_en.read_test_set(args.data)
  paths = [pathlib.Path(args.data) / s.file for s in samples]
  systems = {}
  if not args.no_crnn:
    texts, _, seconds = peers.run_crnn(paths, args.checkpoint, args.weights,
                                       decoder=args.decoder)
    label = "crnn-jax " + (args.checkpoint or args.weights)
    systems[label + (f" ({args.decoder})" if args.decoder else "")] = (texts, seconds)
  if not args.no_tesseract:
    if shutil.which("tesseract") is None:
      print("tesseract not found (apt-get install tesseract-ocr); use --no-tesseract",
            file=sys.stderr)
      return 1
    version = peers.tesseract_version()
    for name, whitelist in (("", None), (", 62-char whitelist", charset_lib.ALPHANUMERIC_62)):
      texts, _, seconds = peers.run_tesseract(paths, args.threads, whitelist)
      systems[f"{version} --psm 7{name}"] = (texts, seconds)

  tables = {name: heldout_en.accuracy_by_group(samples, texts)
            for name, (texts, _) in systems.items()}
  rows = ROWS + tuple(g for g in heldout_en.GEOMETRIES if any(s.geometry == g for s in samples))
  print(f"{len(samples)} images of {args.data}; case-sensitive word accuracy (%)\n")
  print("| system | " + " | ".join(rows) + " | s/image |")
  print("|---" * (len(rows) + 2) + "|")
  for name, table in tables.items():
    cells = [f"{100 * table[row]['accuracy']:.1f}" if row in table else "-" for row in rows]
    print(f"| {name} | " + " | ".join(cells) + f" | {systems[name][1]:.4f} |")
  if args.show_errors:
    for name, (texts, _) in systems.items():
      errors = [(s, t) for s, t in zip(samples, texts) if s.text != t][:args.show_errors]
      print(f"\n{name}: first {len(errors)} errors")
      for sample, text in errors:
        print(f"  {sample.file}\t{sample.text!r} -> {text!r}\t({sample.font})")
  if args.output:
    payload = {name: {"table": tables[name], "seconds_per_image": systems[name][1],
                      "predictions": systems[name][0]} for name in systems}
    pathlib.Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
