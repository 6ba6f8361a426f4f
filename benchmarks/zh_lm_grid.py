"""The zh_en lm decoder's weights against line accuracy on synthetic print lines (tuning set).

  python benchmarks/zh_lm_grid.py --weights zh_en --lines 300

The tuning lines are rendered by the model's own data engine at the print ('strong') level with
the validation seed (`data.eval_seed`, never trained on) in the training pool's faces; the
held-out set (testdata/heldout_zh, another family) is left for reporting, so the weights are not
tuned on the figures they are reported with. Line accuracy follows the NFKC protocol. Prints a
table of (lm_weight, length_bonus) cells with greedy as the reference row.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import crnn_jax  # pylint: disable=wrong-import-position
from crnn_jax.synth import source_zh as zh_synthetic  # pylint: disable=wrong-import-position
from crnn_jax.decoding import decoder as decoder_lib  # pylint: disable=wrong-import-position
from crnn_jax.evaluation import protocol  # pylint: disable=wrong-import-position


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--weights", default="zh_en")
  parser.add_argument("--lines", type=int, default=300)
  parser.add_argument("--lm-weights", type=float, nargs="+", default=[0.3, 0.5, 1.0])
  parser.add_argument("--length-bonuses", type=float, nargs="+", default=[0.5, 1.5, 3.0])
  args = parser.parse_args()
  recognizer = crnn_jax.Recognizer.from_pretrained(args.weights, decoder="greedy")
  config = crnn_jax.pretrained.load_config(args.weights)
  config.data.synthetic.augment = "strong"
  config.data.synthetic.strong_fraction = 1.0
  source = zh_synthetic.ZhSyntheticSource.from_config(
      config.data, recognizer.charset, seed=config.data.eval_seed, num_records=args.lines)
  records = [source[i] for i in range(args.lines)]
  arrays = [recognizer.preprocess(r["image"]) for r in records]
  frames = recognizer.frame_log_probs(arrays)
  labels = [r["text"] for r in records]

  def accuracy(decoder) -> float:
    texts = [decoder.decode(f[None], np.array([len(f)]))[0].text for f in frames]
    right = [protocol.NFKC.prediction(t) == protocol.NFKC.label(l)
             for t, l in zip(texts, labels)]
    return 100 * float(np.mean(right))

  print(f"{args.lines} print lines (seed {config.data.eval_seed}); line accuracy (%)")
  print(f"greedy: {accuracy(decoder_lib.Decoder(recognizer.charset, 'greedy')):.2f}")
  print("| lm_weight | " + " | ".join(f"bonus {b}" for b in args.length_bonuses) + " |")
  print("|---" * (len(args.length_bonuses) + 1) + "|")
  for weight in args.lm_weights:
    cells = [accuracy(decoder_lib.Decoder(recognizer.charset, "lm", lm_weight=weight,
                                          length_bonus=bonus))
             for bonus in args.length_bonuses]
    print(f"| {weight} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
