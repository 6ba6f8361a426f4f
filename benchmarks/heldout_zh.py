"""Line accuracy on the held-out mixed Chinese/English set: crnn-jax, Tesseract and RapidOCR.

  python benchmarks/heldout_zh.py                          # zh_en weights (if shipped), peers
  python benchmarks/heldout_zh.py --checkpoint ~/runs/zh_en --no-tesseract
  python benchmarks/heldout_zh.py --no-crnn --rapidocr --output peers_zh.json
  python benchmarks/heldout_zh.py --weights DIR --onnx zh_en.onnx zh_en_int8.onnx --no-tesseract

The set (testdata/heldout_zh, see crnn_jax/evaluation/heldout_zh.py) is drawn in HanaMin, a family
outside the training pool. Scores follow the NFKC protocol (`crnn_jax.evaluation.protocol.NFKC`:
labels and predictions NFKC-normalized, white space removed, case compared): line accuracy and
character-level 1 - NED, overall and per kind (chinese, mixed, latin, punctuation), and
seconds per line.

Peers: Tesseract 5 with `-l chi_sim+eng` and `-l chi_sim` (`--psm 7`, one text line; Debian
`tesseract-ocr tesseract-ocr-chi-sim`), and with --rapidocr RapidOCR's recognizer alone (PyPI
`rapidocr onnxruntime`: a PP-OCR model that runs offline).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import peers  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import heldout_zh  # pylint: disable=wrong-import-position

ROWS = ("all",) + heldout_zh.KINDS
TESSERACT_LANGS = ("chi_sim+eng", "chi_sim")


def markdown(tables: dict, seconds: dict) -> str:
  """The table: line accuracy / 1 - NED (%) per row of ROWS, and seconds per line."""
  lines = ["| system | " + " | ".join(ROWS) + " | s/line |", "|---" * (len(ROWS) + 2) + "|"]
  for name, table in tables.items():
    cells = [f"{100 * table[row]['accuracy']:.1f} / {100 * table[row]['one_minus_ned']:.1f}"
             if row in table else "-" for row in ROWS]
    lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds[name]:.4f} |")
  return "\n".join(lines) + "\n"


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", default=str(REPO / "testdata" / "heldout_zh"))
  parser.add_argument("--checkpoint", default="", help="a training workdir instead of --weights")
  parser.add_argument("--weights", default="zh_en", help="shipped model name or directory")
  parser.add_argument("--onnx", nargs="*", default=[],
                      help="also these exported ONNX files (float32 or int8), on onnxruntime")
  parser.add_argument("--decoder", nargs="*", default=[None],
                      help="crnn-jax decoders to run (default: the model's default)")
  parser.add_argument("--no-crnn", action="store_true", help="only the peers")
  parser.add_argument("--no-tesseract", action="store_true")
  parser.add_argument("--rapidocr", action="store_true", help="also RapidOCR (PyPI rapidocr)")
  parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                      help="Tesseract processes at a time (seconds/line are per process)")
  parser.add_argument("--output", help="write the tables and predictions as JSON")
  parser.add_argument("--show-errors", type=int, default=0, help="print N errors per system")
  args = parser.parse_args()
  if args.rapidocr and importlib.util.find_spec("rapidocr") is None:
    parser.error("--rapidocr needs RapidOCR: pip install rapidocr onnxruntime")  # Before the runs.

  samples = heldout_zh.read_test_set(args.data)
  paths = [pathlib.Path(args.data) / s.file for s in samples]
  systems = {}
  if not args.no_crnn:
    for decoder in args.decoder:
      texts, _, seconds = peers.run_crnn(paths, args.checkpoint, args.weights, decoder=decoder)
      suffix = f" ({decoder})" if decoder else ""
      systems["crnn-jax " + (args.checkpoint or args.weights) + suffix] = (texts, seconds)
    for onnx in args.onnx:
      texts, _, seconds = peers.run_crnn(paths, "", "", onnx=onnx, decoder=args.decoder[0])
      systems["crnn-jax " + pathlib.Path(onnx).name] = (texts, seconds)
  if not args.no_tesseract:
    if shutil.which("tesseract") is None:
      print("tesseract not found (apt-get install tesseract-ocr tesseract-ocr-chi-sim); use "
            "--no-tesseract", file=sys.stderr)
      return 1
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                           check=False).stdout.split()
    if "chi_sim" not in langs:
      print("Tesseract has no chi_sim model (apt-get install tesseract-ocr-chi-sim)",
            file=sys.stderr)
      return 1
    version = peers.tesseract_version()
    for lang in TESSERACT_LANGS:
      texts, _, seconds = peers.run_tesseract(paths, args.threads, lang=lang)
      systems[f"{version} -l {lang} --psm 7"] = (texts, seconds)
  if args.rapidocr:
    texts, _, seconds = peers.run_rapidocr(paths)
    systems["RapidOCR (recognition only)"] = (texts, seconds)

  tables = {name: heldout_zh.accuracy_by_kind(samples, texts)
            for name, (texts, _) in systems.items()}
  print(f"{len(samples)} lines of {args.data}; NFKC protocol, line accuracy / 1 - NED (%)\n")
  print(markdown(tables, {name: s for name, (_, s) in systems.items()}))
  if args.show_errors:
    for name, (texts, _) in systems.items():
      wrong = [(s, t) for s, t, in zip(samples, texts)
               if heldout_zh.accuracy_by_kind([s], [t])["all"]["correct"] == 0]
      print(f"\n{name}: first {min(len(wrong), args.show_errors)} of {len(wrong)} errors")
      for sample, text in wrong[:args.show_errors]:
        print(f"  {sample.file}\t{sample.text!r} -> {text!r}")
  if args.output:
    payload = {name: {"table": tables[name], "seconds_per_line": systems[name][1],
                      "predictions": systems[name][0]} for name in systems}
    pathlib.Path(args.output).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
  return 0


if __name__ == "__main__":
  sys.exit(main())
