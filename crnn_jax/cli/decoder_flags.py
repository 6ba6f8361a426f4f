"""The decoder options of `crnn-jax eval` and `crnn-jax predict`, and the Decoders they ask for."""

from __future__ import annotations

import argparse

from crnn_jax.data.charset import Charset
from crnn_jax.decoding.decoder import DECODERS, DEFAULT_BEAM_WIDTH, DEFAULT_DELTA, Decoder


def add_arguments(parser: argparse.ArgumentParser, *, multiple: bool = True) -> None:
  """Adds `--decoder`, `--beam-width`, `--lexicon`, `--image-lexicons`, `--delta`."""
  if multiple:
    parser.add_argument("--decoder", action="append", default=None,
                        help="greedy, beam or lexicon; repeat or separate with commas to "
                        "compare several (default: greedy)")
  else:
    parser.add_argument("--decoder", default="greedy", choices=DECODERS,
                        help="greedy (best path), beam (prefix beam search) or lexicon")
  parser.add_argument("--beam-width", type=int, default=DEFAULT_BEAM_WIDTH,
                      help="prefixes kept by the beam decoder")
  parser.add_argument("--lexicon", help="lexicon file for the lexicon decoder (one word a line)")
  parser.add_argument("--image-lexicons",
                      help="per-image lexicons for the lexicon decoder: KEY<TAB>word word ... "
                      "(KEY: record key, or position in evaluation order)")
  parser.add_argument("--delta", type=int, default=DEFAULT_DELTA,
                      help="lexicon decoder: candidates within this edit distance of the "
                      "greedy output (lexicons above 200 words)")


def decoder_names(args) -> list[str]:
  """The decoder names of parsed `--decoder` options (default ['greedy'])."""
  value = getattr(args, "decoder", None) or ["greedy"]
  if isinstance(value, str):
    value = [value]
  names = [n.strip() for v in value for n in v.split(",") if n.strip()]
  for name in names:
    if name not in DECODERS:
      raise ValueError(f"--decoder must be one of {', '.join(DECODERS)}, got {name!r}")
  return list(dict.fromkeys(names)) or ["greedy"]


def decoders_from_args(args, charset: Charset) -> list[Decoder]:
  """The Decoders of parsed command-line options (see `add_arguments`)."""
  names = decoder_names(args)
  if ("lexicon" in names and not getattr(args, "lexicon", None)
      and not getattr(args, "image_lexicons", None)):
    raise ValueError("--decoder lexicon needs --lexicon FILE and/or --image-lexicons FILE")
  return [Decoder(charset, name, beam_width=args.beam_width,
                  lexicon=getattr(args, "lexicon", None) if name == "lexicon" else None,
                  delta=args.delta) for name in names]
