"""Word accuracy on folders of real word crops: crnn-jax against Tesseract and RapidOCR.

  python benchmarks/real_crops.py                                   # ../shared/realval
  python benchmarks/real_crops.py --data DIR [DIR ...] --weights synth_en
  python benchmarks/real_crops.py --checkpoint runs/scene_en/stage1 --no-tesseract
  python benchmarks/real_crops.py --rapidocr --output results.json --show-errors 20
  python benchmarks/real_crops.py --decoder greedy,lm --no-tesseract  # the decoders side by side

Each DIR is a folder with a `gt.txt` (`file<TAB>label`), or a directory above several. Labels
and predictions are compared under the standard protocol of deep-text-recognition-benchmark
and PARSeq (crnn_jax/evaluation/protocol.py): lower-cased and stripped of every character outside
[0-9a-z] on both sides; the case-sensitive column strips outside [0-9a-zA-Z] and compares case.
The table says how many labels stripping altered.

Peers, all offline: Tesseract (Debian `tesseract-ocr`, English model) reads each crop as one
text line (`--psm 7`; its confidence is the mean of its word confidences); RapidOCR (PyPI
`rapidocr` and `onnxruntime`, a PP-OCR recognizer, `--rapidocr`) runs recognition only. So that
confidence can be judged, the table gives the accuracy of the predictions at or above each
confidence threshold and the share of crops they cover, and how often the output is empty.
A second table gives accuracy by the crops' aspect ratio (width / height), which shows what
resizing every crop to a fixed 100x32 costs on wide words.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import peers  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import protocol as protocol_lib  # pylint: disable=wrong-import-position
from crnn_jax.data import records  # pylint: disable=wrong-import-position
from crnn_jax.data import sources  # pylint: disable=wrong-import-position

DEFAULT_DATA = REPO.parent / "shared" / "realval"
THRESHOLDS = (0.5, 0.7, 0.9)
# Bands of width / height. The paper's fixed 32x100 input is 3.125:1 and scene_en's 32x128 is 4:1:
# a fixed-width model squeezes wider crops (and stretches narrower ones).
ASPECT_BANDS = (0.0, 2.0, 3.125, 4.5, 6.0, float("inf"))


def read_folder(path: pathlib.Path) -> list[tuple[pathlib.Path, str]]:
  """(image path, raw label) of every well-formed line of a gt.txt folder."""
  source = sources.FolderSource(path)
  items = []
  for i in range(len(source)):
    record = source[i]
    if record.get("missing"):
      print(f"{record['key']}: skipped ({record['missing']}: {record.get('detail', '')})",
            file=sys.stderr)
      continue
    rel = record["key"].split(":", 2)[2]
    items.append((source.root / rel, records.decode_label(record["label"])))
  return items


def score(labels, texts, confidences, protocol: protocol_lib.Protocol,
          thresholds=THRESHOLDS) -> dict:
  """Accuracy under `protocol`, with the labels it altered or skipped, and by confidence.

  Args:
    labels: raw labels.
    texts: predictions, one per label.
    confidences: one per label, in [0, 1].
    protocol: how labels and predictions are compared.
    thresholds: confidence thresholds of the coverage/accuracy rows.

  Returns:
    {'count', 'correct', 'accuracy', 'altered', 'skipped', 'empty', 'empty_confident',
     'by_threshold': {t: {'coverage', 'accuracy'}}}; 'empty' counts empty outputs (after the
    protocol) and 'empty_confident' those with confidence above 0.5.
  """
  counted, correct, conf, altered, skipped = [], [], [], 0, 0
  empty = empty_confident = 0
  for label, text, confidence in zip(labels, texts, confidences):
    try:
      target, changed = protocol.label_and_altered(label)
    except records.BadRecord:
      skipped += 1
      continue
    prediction = protocol.prediction(text)
    altered += changed
    counted.append(target)
    correct.append(prediction == target)
    conf.append(float(confidence))
    if not prediction:
      empty += 1
      empty_confident += confidence > 0.5
  correct_array, conf_array = np.array(correct, bool), np.array(conf, np.float64)
  by_threshold = {}
  for t in thresholds:
    kept = conf_array >= t
    by_threshold[str(t)] = dict(
        coverage=float(kept.mean()) if len(kept) else 0.0,
        accuracy=float(correct_array[kept].mean()) if kept.any() else 0.0)
  n = len(counted)
  return dict(count=n, correct=int(correct_array.sum()),
              accuracy=float(correct_array.mean()) if n else 0.0, altered=altered,
              skipped=skipped, empty=empty, empty_confident=empty_confident,
              by_threshold=by_threshold)


def _band_name(low: float, high: float) -> str:
  return f"{low:g}+" if high == float("inf") else f"{low:g}-{high:g}"


def aspect_band(ratio: float, bands=ASPECT_BANDS) -> str:
  """The band name ('2-3.125', '6+', ...) of a width / height ratio."""
  for low, high in zip(bands, bands[1:]):
    if low <= ratio < high:
      return _band_name(low, high)
  raise ValueError(f"aspect ratio {ratio} outside the bands")


def by_aspect(labels, texts, ratios, protocol: protocol_lib.Protocol) -> dict:
  """{band: {'count', 'accuracy'}} over the labels `protocol` counts, bands in order."""
  table = {_band_name(low, high): dict(count=0, correct=0)
           for low, high in zip(ASPECT_BANDS, ASPECT_BANDS[1:])}
  for label, text, ratio in zip(labels, texts, ratios):
    try:
      target = protocol.label(label)
    except records.BadRecord:
      continue
    entry = table[aspect_band(ratio)]
    entry["count"] += 1
    entry["correct"] += protocol.prediction(text) == target
  return {band: dict(count=e["count"], accuracy=e["correct"] / e["count"] if e["count"] else 0.0)
          for band, e in table.items()}


def aspect_markdown(results: dict) -> str:
  """Accuracy (%) and crops per aspect band, one row per system and dataset."""
  first = next(iter(results.values()))["datasets"]
  bands = list(next(iter(first.values()))["by_aspect"])
  head = ["system", "dataset"] + [f"w/h {band}" for band in bands]
  lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  for system, entry in results.items():
    for dataset, row in entry["datasets"].items():
      cells = [system, dataset] + [f"{100 * c['accuracy']:.1f} ({c['count']})"
                                   for c in row["by_aspect"].values()]
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def markdown(results: dict, thresholds=THRESHOLDS) -> str:
  head = ["system", "dataset", "counted", "altered", "accuracy (%)", "case-sensitive (%)",
          "empty (conf > 0.5)"]
  head += [f"conf >= {t}: acc % / cover %" for t in thresholds] + ["s/image"]
  lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
  for system, entry in results.items():
    for dataset, row in entry["datasets"].items():
      std, cs = row["standard"], row["case_sensitive"]
      cells = [system, dataset, str(std["count"]), str(std["altered"]),
               f"{100 * std['accuracy']:.1f}", f"{100 * cs['accuracy']:.1f}",
               f"{std['empty']} ({std['empty_confident']})"]
      cells += [f"{100 * std['by_threshold'][str(t)]['accuracy']:.1f} / "
                f"{100 * std['by_threshold'][str(t)]['coverage']:.0f}" for t in thresholds]
      cells.append(f"{entry['seconds_per_image']:.4f}")
      lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)],
                      help="gt.txt folders or directories above them (default: %(default)s)")
  parser.add_argument("--checkpoint", default="", help="a training workdir instead of --weights")
  parser.add_argument("--weights", default="", help="shipped model name or weights directory "
                      "(default: the shipped default model)")
  parser.add_argument("--onnx", default="", help="an exported .onnx file (float32 or int8, "
                      "run in onnxruntime) instead of --weights")
  parser.add_argument("--backend", default="jax", choices=("jax", "onnxruntime"),
                      help="how --weights or --checkpoint run")
  parser.add_argument("--decoder", default="",
                      help="crnn-jax decoders, comma-separated, e.g. greedy,lm (default: the "
                      "model's own, lm for English models)")
  parser.add_argument("--no-crnn", action="store_true", help="only the peers")
  parser.add_argument("--no-tesseract", action="store_true")
  parser.add_argument("--rapidocr", action="store_true", help="also RapidOCR (PyPI rapidocr)")
  parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                      help="Tesseract processes at a time (seconds/image are per process)")
  parser.add_argument("--output", help="write results and predictions as JSON")
  parser.add_argument("--show-errors", type=int, default=0, help="print N errors per system")
  args = parser.parse_args(argv)

  folders = []
  for path in args.data:
    found = sources.find_gt_folders(pathlib.Path(path))
    if not found:
      print(f"no gt.txt folder at or below {path}", file=sys.stderr)
      return 2
    folders.extend(found)
  data = {folder.name: read_folder(folder) for folder in folders}
  paths = [p for items in data.values() for p, _ in items]
  labels = [label for items in data.values() for _, label in items]
  from PIL import Image  # pylint: disable=import-outside-toplevel
  ratios = []
  for path in paths:
    with Image.open(path) as image:  # Reads the header only.
      ratios.append(image.width / max(image.height, 1))
  print(f"{len(paths)} crops in {len(data)} folder(s): "
        + ", ".join(f"{k} ({len(v)})" for k, v in data.items()), file=sys.stderr)

  runs = {}
  if not args.no_crnn:
    from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
    weights = args.weights or pretrained.DEFAULT_MODEL
    name = args.onnx or args.checkpoint or weights
    if not args.onnx and args.backend != "jax":
      name += f" ({args.backend})"
    decoders = [d.strip() for d in args.decoder.split(",") if d.strip()] or [None]
    for decoder in decoders:
      label = f"crnn-jax {name}" + (f" ({decoder})" if decoder else "")
      runs[label] = peers.run_crnn(paths, args.checkpoint, weights, args.onnx, args.backend,
                                   decoder)
  if not args.no_tesseract:
    if shutil.which("tesseract") is None:
      print("tesseract not found (apt-get install tesseract-ocr); use --no-tesseract",
            file=sys.stderr)
      return 1
    version = peers.tesseract_version()
    runs[f"{version} --psm 7"] = peers.run_tesseract(paths, args.threads)
  if args.rapidocr:
    runs["RapidOCR (recognition only)"] = peers.run_rapidocr(paths)

  results = {}
  for system, (texts, confidences, seconds) in runs.items():
    entry = dict(seconds_per_image=seconds, datasets={}, predictions={})
    start = 0
    for name, items in data.items():
      part = slice(start, start + len(items))
      start += len(items)
      entry["datasets"][name] = dict(
          standard=score(labels[part], texts[part], confidences[part], protocol_lib.STANDARD),
          case_sensitive=score(labels[part], texts[part], confidences[part],
                               protocol_lib.CASE_SENSITIVE),
          by_aspect=by_aspect(labels[part], texts[part], ratios[part], protocol_lib.STANDARD))
      entry["predictions"][name] = [
          dict(file=str(p.name), label=l, text=t, confidence=c)
          for (p, l), t, c in zip(items, texts[part], confidences[part])]
    results[system] = entry
  print(markdown(results))
  print("Accuracy (%) by aspect ratio, standard protocol (crops in brackets):\n")
  print(aspect_markdown(results))
  if args.show_errors:
    for system, entry in results.items():
      print(f"\n{system}: first {args.show_errors} errors per dataset (standard protocol)")
      for name, preds in entry["predictions"].items():
        shown = 0
        for p in preds:
          try:
            target = protocol_lib.STANDARD.label(p["label"])
          except records.BadRecord:
            continue
          if protocol_lib.STANDARD.prediction(p["text"]) != target and shown < args.show_errors:
            print(f"  {name}/{p['file']}\t{p['label']!r} -> {p['text']!r}\t"
                  f"({p['confidence']:.2f})")
            shown += 1
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
