"""How the lm decoder's weights move word accuracy on folders of real crops.

  python benchmarks/lm_decoder.py                       # scene_en on ../shared/realval
  python benchmarks/lm_decoder.py --data DIR [DIR ...] --weights synth_en
  python benchmarks/lm_decoder.py --lm-weights 0 0.5 --length-bonuses 1.5 --beam-widths 8 32
  python benchmarks/lm_decoder.py --speed 1024 --data ../shared/realval/iiit5k_train_2000

With --speed N the script instead times the whole `Recognizer.recognize_preprocessed` on the
first N crops (preprocessed once; every width compiled first; best of --repeats passes) for
scene_en with lm and greedy decoding and synth_en (the default model before scene_en) with
greedy decoding, in milliseconds per image.

The model runs once per folder (the Recognizer's preprocessing and batching); then every
(beam width, lm_weight, length_bonus) of the grid decodes the stored log-probabilities with
`Decoder('lm')` (`crnn_jax/decoding/decoder.py`, language model `char_lm.english()`), and the
table gives word accuracy under the standard protocol (lower-cased, stripped to [0-9a-z]) per
folder, with greedy decoding and the plain beam search as references, and the decoding time
per image. lm_weight 0 with length_bonus 0 is the beam search's best labelling. The shipped
defaults (decoder.DEFAULT_LM_WEIGHT, DEFAULT_LENGTH_BONUS, DEFAULT_LM_BEAM_WIDTH) were chosen
from this grid; the neighbouring cells show how much the result depends on them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import real_crops  # pylint: disable=wrong-import-position
from crnn_jax.data import sources  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import protocol as protocol_lib  # pylint: disable=wrong-import-position


def folder_log_probs(recognizer, paths, batch_size: int = 64) -> list[np.ndarray]:
  """[T, K] log-probabilities of each image, read and batched as the Recognizer reads them."""
  from crnn_jax import inference  # pylint: disable=import-outside-toplevel
  arrays = [recognizer.prepare(inference.load_image(p))[0] for p in paths]
  return recognizer.frame_log_probs(arrays, batch_size)


def accuracy(labels, texts) -> float:
  """Word accuracy (%) under the standard protocol (`real_crops.score`); labels it skips are
  not counted."""
  return 100.0 * real_crops.score(labels, texts, [0.0] * len(texts),
                                  protocol_lib.STANDARD)["accuracy"]


def decode_all(decoder, log_probs) -> tuple[list[str], float]:
  """Texts of one decoder over all images, and its seconds per image."""
  start = time.perf_counter()
  texts = [decoder.decode(lp[None], np.array([len(lp)]))[0].text for lp in log_probs]
  return texts, (time.perf_counter() - start) / max(len(log_probs), 1)


def recognizer_speed(paths, repeats: int) -> list[tuple[str, str, float]]:
  """(weights, decoder, best ms per image) of recognize_preprocessed on `paths`."""
  import crnn_jax  # pylint: disable=import-outside-toplevel
  from crnn_jax import inference  # pylint: disable=import-outside-toplevel
  rows = []
  for weights, decoder in (("scene_en", "lm"), ("scene_en", "greedy"), ("synth_en", "greedy")):
    recognizer = crnn_jax.Recognizer.from_pretrained(weights, decoder=decoder)
    arrays = [recognizer.prepare(inference.load_image(p))[0] for p in paths]
    recognizer.recognize_preprocessed(arrays)  # Compiles every width bucket.
    best = float("inf")
    for _ in range(repeats):
      start = time.perf_counter()
      recognizer.recognize_preprocessed(arrays)
      best = min(best, (time.perf_counter() - start) / len(arrays))
    rows.append((weights, decoder, 1000 * best))
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", nargs="+", default=[str(real_crops.DEFAULT_DATA)])
  parser.add_argument("--weights", default="", help="shipped model name or weights directory")
  parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.35, 0.5, 0.65])
  parser.add_argument("--length-bonuses", type=float, nargs="+", default=[1.0, 1.5, 2.0])
  parser.add_argument("--beam-widths", type=int, nargs="+", default=[16, 32])
  parser.add_argument("--speed", type=int, default=0,
                      help="time the Recognizer on this many crops instead (see above)")
  parser.add_argument("--repeats", type=int, default=5, help="timed passes for --speed")
  args = parser.parse_args(argv)

  import crnn_jax  # pylint: disable=import-outside-toplevel
  from crnn_jax import pretrained  # pylint: disable=import-outside-toplevel
  from crnn_jax.decoding import decoder as decoder_lib  # pylint: disable=import-outside-toplevel
  weights = args.weights or pretrained.DEFAULT_MODEL
  folders = [f for path in args.data for f in sources.find_gt_folders(pathlib.Path(path))]
  if not folders:
    print(f"no gt.txt folder at or below {args.data}", file=sys.stderr)
    return 2
  if args.speed:
    paths = [p for folder in folders for p, _ in real_crops.read_folder(folder)][:args.speed]
    print(f"| model | decoder | ms per image ({len(paths)} crops, best of {args.repeats}) |")
    print("|---|---|---:|")
    for weights_name, decoder, ms in recognizer_speed(paths, args.repeats):
      print(f"| {weights_name} | {decoder} | {ms:.2f} |")
    return 0
  recognizer = crnn_jax.Recognizer.from_pretrained(weights, decoder="greedy")
  data = {}
  for folder in folders:
    items = real_crops.read_folder(folder)
    data[folder.name] = ([label for _, label in items],
                         folder_log_probs(recognizer, [p for p, _ in items]))
  charset = recognizer.charset
  cases = [("greedy", decoder_lib.Decoder(charset, "greedy"))]
  cases += [(f"beam{w}", decoder_lib.Decoder(charset, "beam", beam_width=w))
            for w in args.beam_widths]
  cases += [(f"lm{w} weight {lw:g} bonus {lb:g}",
             decoder_lib.Decoder(charset, "lm", beam_width=w, lm_weight=lw, length_bonus=lb))
            for w in args.beam_widths for lw in args.lm_weights for lb in args.length_bonuses]
  names = list(data)
  print(f"weights {weights}; " + ", ".join(f"{n} ({len(data[n][0])})" for n in names))
  print("\n| decoder | " + " | ".join(names) + " | ms/image |")
  print("|---|" + "---:|" * (len(names) + 1))
  for label, decoder in cases:
    row, seconds = [], []
    for name in names:
      labels, log_probs = data[name]
      texts, per_image = decode_all(decoder, log_probs)
      row.append(accuracy(labels, texts))
      seconds.append(per_image * len(labels))
    total = sum(len(data[n][0]) for n in names)
    print(f"| {label} | " + " | ".join(f"{a:.2f}" for a in row)
          + f" | {1000 * sum(seconds) / total:.2f} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
