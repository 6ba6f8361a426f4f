"""Calibrated confidence: fit the maps of a shipped model, and measure reliability.

  python benchmarks/calibration.py --fit --weights scene_en        # writes calibration.json
  python benchmarks/calibration.py --weights scene_en               # testdata/heldout_en and
                                                                    # ../shared/realval
  python benchmarks/calibration.py --weights synth_en --data DIR [DIR ...] --output R.json

--fit renders --images synthetic images with the model's own renderer settings (config.json's
`data.synthetic`) at `calibration.FIT_SEED`, a seed no training, evaluation or test split
uses, reads them with each --decoder and fits a `calibration.ConfidenceMap` per decoder to
whether the reading is right (case-sensitive, exact), then writes `calibration.json` beside the
weights (or --output). It also prints the two-fold ECE (fitted on one half, measured on the
other) of both methods on those images; `--method auto` (the default) picks, per decoder, the
one with the lower figure. Real crops are neither fitted nor chosen on.

Without --fit it measures: for every gt.txt folder of --data (default testdata/heldout_en and
../shared/realval, when present), per decoder, the expected calibration error (ECE, 10 equal
bins) of the raw and of the calibrated confidence, with accuracy by confidence bin, under the
case-sensitive protocol (the maps' target) and the standard 36-character one. The model runs
once per image; the decoders share its log-probabilities.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))

from benchmarks import real_crops  # pylint: disable=wrong-import-position
from crnn_jax import calibration  # pylint: disable=wrong-import-position
from crnn_jax.data import records  # pylint: disable=wrong-import-position
from crnn_jax.data import sources  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import protocol as protocol_lib  # pylint: disable=wrong-import-position

DEFAULT_DATA = (REPO / "testdata" / "heldout_en", REPO.parent / "shared" / "realval")
PROTOCOLS = {"case-sensitive": protocol_lib.CASE_SENSITIVE, "standard": protocol_lib.STANDARD}


def correct_under(protocol, labels, texts) -> tuple[np.ndarray, np.ndarray]:
  """(kept, correct): which labels count under `protocol`, and which kept readings are right."""
  kept, correct = [], []
  for label, text in zip(labels, texts):
    try:
      target = protocol.label(label)
    except records.BadRecord:
      kept.append(False)
      continue
    kept.append(True)
    correct.append(protocol.prediction(text) == target)
  return np.array(kept, bool), np.array(correct, bool)


def read_all(recognizer, arrays, decoders, batch_size: int = 64):
  """{decoder name: (texts, raw confidences)} of preprocessed arrays; the model runs once."""
  log_probs = recognizer.frame_log_probs(arrays, batch_size)
  out = {}
  for decoder in decoders:
    texts, raw = [], []
    for start in range(0, len(log_probs), batch_size):
      chunk = log_probs[start:start + batch_size]
      longest = max(len(x) for x in chunk)
      padded = np.zeros((len(chunk), longest, chunk[0].shape[1]), np.float32)
      for row, x in enumerate(chunk):
        padded[row, :len(x)] = x
      for d in decoder.decode(padded, np.array([len(x) for x in chunk])):
        texts.append(d.text)
        raw.append(d.confidence)
    out[decoder.name] = (texts, np.array(raw, np.float64))
  return out


def render_fit_images(config, recognizer, count: int, seed: int):
  """(arrays preprocessed as the recognizer does, labels) of `count` synthetic images."""
  from crnn_jax.synth import sources as synthetic_sources  # pylint: disable=import-outside-toplevel
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  source = synthetic_sources.source_from_config(config.data, Charset.from_config(config.text),
                                                seed=seed, num_records=count)
  arrays, labels = [], []
  for i in range(count):
    record = source[i]
    arrays.append(recognizer.prepare(record["image"])[0])
    labels.append(record["text"])
  return arrays, labels


def two_fold_ece(raw, correct, method: str) -> float:
  """ECE of `method` fitted on one half (even or odd index) and measured on the other."""
  errors = []
  for part in (0, 1):
    fit_rows = np.arange(len(raw)) % 2 == part
    fitted = calibration.fit(raw[fit_rows], correct[fit_rows], method)
    errors.append(calibration.expected_calibration_error(fitted(raw[~fit_rows]),
                                                         correct[~fit_rows]))
  return float(np.mean(errors))


def fit_protocol(charset) -> protocol_lib.Protocol:
  """What 'right' means for the maps: case-sensitive exact for English (alphanumeric) models;
  for others (zh_en) the NFKC protocol of their held-out set, every character compared (the
  case-sensitive protocol would strip a Chinese line to its Latin letters)."""
  if all(c.isascii() for c in charset.chars):
    return protocol_lib.CASE_SENSITIVE
  return protocol_lib.NFKC


def fit_command(args, config, recognizer, decoders, weights_dir) -> int:
  if args.from_readings:
    saved = np.load(args.from_readings)
    labels = [str(t) for t in saved["labels"]]
    readings = {d.name: ([str(t) for t in saved[f"{d.name}_texts"]], saved[f"{d.name}_raw"])
                for d in decoders}
    print(f"{len(labels)} readings from {args.from_readings}", file=sys.stderr)
  else:
    start = time.time()
    arrays, labels = render_fit_images(config, recognizer, args.images, args.seed)
    print(f"rendered {len(arrays)} images in {time.time() - start:.0f} s", file=sys.stderr)
    readings = read_all(recognizer, arrays, decoders)
  if args.save_readings:
    np.savez(args.save_readings, labels=np.array(labels), **{
        f"{name}_{kind}": np.asarray(value) for name, (texts, raw) in readings.items()
        for kind, value in (("texts", texts), ("raw", raw))})
  maps, settings, figures = {}, {}, {}
  target = fit_protocol(recognizer.charset)
  print(f"target: right under the {target.name} protocol", file=sys.stderr)
  print("| decoder | images | accuracy | ECE raw | 2-fold ECE platt | 2-fold ECE isotonic |")
  print("|---|---:|---:|---:|---:|---:|")
  for decoder in decoders:
    texts, raw = readings[decoder.name]
    kept, correct = correct_under(target, labels, texts)
    raw = raw[kept]
    folds = {m: two_fold_ece(raw, correct, m) for m in calibration.METHODS}
    method = min(folds, key=folds.get) if args.method == "auto" else args.method
    fitted = calibration.fit(raw, correct, method)
    maps[decoder.name] = fitted
    settings[decoder.name] = calibration.decoder_settings(decoder)
    figures[decoder.name] = dict(
        images=int(kept.sum()), accuracy=round(float(correct.mean()), 4),
        two_fold_ece={m: round(v, 4) for m, v in folds.items()},
        ece_raw=round(calibration.expected_calibration_error(raw, correct), 4),
        ece_calibrated=round(calibration.expected_calibration_error(fitted(raw), correct), 4))
    print(f"| {decoder.label} | {kept.sum()} | {correct.mean():.4f} | "
          f"{figures[decoder.name]['ece_raw']:.4f} | {folds['platt']:.4f} | "
          f"{folds['isotonic']:.4f} |")
  from crnn_jax.decoding import char_lm  # pylint: disable=import-outside-toplevel
  info = dict(
      target=(f"P(reading == label): exact match under the {target.name} protocol"
              if target is not protocol_lib.CASE_SENSITIVE
              else "P(reading == label): case-sensitive exact match"),
      fitted_on=(f"{len(labels)} synthetic images of the model's own renderer settings "
                 f"(config.json data.synthetic), seed {args.seed}"),
      command=f"python benchmarks/calibration.py --fit --weights {args.weights} "
              f"--images {args.images} --method {args.method}",
      language_model=(char_lm.ENGLISH_WORDLIST_SHA256 if target is protocol_lib.CASE_SENSITIVE
                      else char_lm.CHINESE_LM_SOURCE),
      fit_figures=figures)
  output = pathlib.Path(args.output or weights_dir / calibration.CALIBRATION_FILE)
  calibration.Calibration(maps, settings, info).save(output)
  print(f"wrote {output}", file=sys.stderr)
  return 0


def measure_command(args, recognizer, decoders, fitted) -> int:
  folders = []
  for path in args.data:
    path = pathlib.Path(path)
    if not path.exists() and path in DEFAULT_DATA:
      print(f"{path} not found: skipped", file=sys.stderr)
      continue
    found = sources.find_gt_folders(path)
    if not found:
      print(f"no gt.txt folder at or below {path}", file=sys.stderr)
      return 2
    folders.extend(found)
  protocols = (PROTOCOLS if fit_protocol(recognizer.charset) is protocol_lib.CASE_SENSITIVE
               else {"nfkc": protocol_lib.NFKC})
  results = {}
  for folder in folders:
    items = real_crops.read_folder(folder)
    arrays = [recognizer.prepare(p)[0] for p, _ in items]
    labels = [label for _, label in items]
    readings = read_all(recognizer, arrays, decoders)
    for decoder in decoders:
      texts, raw = readings[decoder.name]
      mapped = fitted.map_for(decoder) if fitted else None
      calibrated = mapped(raw) if mapped else raw
      for name, protocol in protocols.items():
        kept, correct = correct_under(protocol, labels, texts)
        row = dict(count=int(kept.sum()), accuracy=float(correct.mean()))
        for kind, conf in (("raw", raw[kept]), ("calibrated", calibrated[kept])):
          row[f"ece_{kind}"] = calibration.expected_calibration_error(conf, correct)
          row[f"mean_{kind}"] = float(conf.mean())
          row[f"bins_{kind}"] = calibration.reliability(conf, correct)
        results.setdefault(folder.name, {}).setdefault(decoder.label, {})[name] = row
  print("| data | decoder | protocol | readings | accuracy | mean conf. raw | ECE raw | "
        "mean conf. calibrated | ECE calibrated |")
  print("|---|---|---|---:|---:|---:|---:|---:|---:|")
  for data, by_decoder in results.items():
    for label, by_protocol in by_decoder.items():
      for name, row in by_protocol.items():
        print(f"| {data} | {label} | {name} | {row['count']} | {row['accuracy']:.4f} | "
              f"{row['mean_raw']:.3f} | {row['ece_raw']:.4f} | {row['mean_calibrated']:.3f} | "
              f"{row['ece_calibrated']:.4f} |")
  if args.bins:
    for data, by_decoder in results.items():
      for label, by_protocol in by_decoder.items():
        name, row = next(iter(by_protocol.items()))  # The maps' target protocol.
        for kind in ("raw", "calibrated"):
          print(f"\n{data}, {label}, {name}, {kind} confidence:\n")
          print(calibration.markdown_reliability(row[f"bins_{kind}"]), end="")
  if args.output:
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--weights", default="scene_en",
                      help="shipped model name or weights directory (default: %(default)s)")
  parser.add_argument("--decoder", default="greedy,lm",
                      help="decoders, comma-separated (default: %(default)s)")
  parser.add_argument("--fit", action="store_true",
                      help="fit the maps on synthetic images and write calibration.json")
  parser.add_argument("--images", type=int, default=3000, help="--fit: synthetic images")
  parser.add_argument("--seed", type=int, default=calibration.FIT_SEED,
                      help="--fit: the renderer's seed (default: %(default)s)")
  parser.add_argument("--method", default="auto", choices=("auto",) + calibration.METHODS,
                      help="--fit: the map fitted; auto: per decoder, the lower two-fold ECE "
                      "on the synthetic images (default: %(default)s)")
  parser.add_argument("--save-readings", metavar="NPZ",
                      help="--fit: also save the labels, readings and raw confidences")
  parser.add_argument("--from-readings", metavar="NPZ",
                      help="--fit: fit on readings saved by --save-readings (with the same "
                      "--images and --seed) instead of rendering and reading again")
  parser.add_argument("--data", nargs="+", default=[str(p) for p in DEFAULT_DATA],
                      help="gt.txt folders or directories above them (default: %(default)s)")
  parser.add_argument("--bins", action="store_true",
                      help="also print accuracy by confidence bin")
  parser.add_argument("--output", help="--fit: the calibration file to write (default: beside "
                      "the weights); else: the results as JSON")
  args = parser.parse_args(argv)

  from crnn_jax import inference, pretrained  # pylint: disable=import-outside-toplevel
  from crnn_jax.decoding import decoder as decoder_lib  # pylint: disable=import-outside-toplevel
  weights_dir = pretrained.resolve(args.weights)
  config = pretrained.load_config(weights_dir)
  recognizer = inference.Recognizer.from_pretrained(weights_dir, decoder="greedy")
  decoders = [decoder_lib.Decoder(recognizer.charset, name.strip())
              for name in args.decoder.split(",") if name.strip()]
  if args.fit:
    return fit_command(args, config, recognizer, decoders, weights_dir)
  return measure_command(args, recognizer, decoders, calibration.load_for(weights_dir))


if __name__ == "__main__":
  sys.exit(main())
