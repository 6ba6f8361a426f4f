"""The decoder options of `crnn-jax eval`, `predict` and `serve`, and the Decoders they ask for.

This module only maps argparse to `decoding.decoder.build_decoder`, the one decoder builder:
`decoder_settings` reads the options, `decoder_from_args` and `decoders_from_args` build.
"""

from __future__ import annotations

import argparse
from typing import Any

from crnn_jax.text.charset import Charset
from crnn_jax.decoding.decoder import (DECODERS, DEFAULT_BEAM_WIDTH, DEFAULT_DELTA,
                                       DEFAULT_LENGTH_BONUS, DEFAULT_LM_BEAM_WIDTH,
                                       DEFAULT_LM_WEIGHT, ZH_EN_LM_WEIGHT, Decoder, build_decoder,
                                       default_name)


def add_arguments(parser: argparse.ArgumentParser, *, multiple: bool = True,
                  image_lexicons: bool = True) -> None:
  """Adds `--decoder`, `--beam-width`, `--lm-weight`, `--length-bonus`, `--lexicon`,
  `--image-lexicons` (unless `image_lexicons` is False), `--delta`."""
  if multiple:
    parser.add_argument("--decoder", action="append", default=None,
                        help="greedy, beam, lm or lexicon; repeat or separate with commas to "
                        "compare several (default: greedy, and lm for English models)")
  else:
    parser.add_argument("--decoder", default=None, choices=DECODERS,
                        help="greedy (best path), beam (prefix beam search), lm (beam search "
                        "rescored with a character language model: English, or mixed Chinese lines) or "
                        "lexicon (default: lm for the English and zh_en models, else greedy)")
  parser.add_argument("--beam-width", type=int, default=None,
                      help=f"prefixes kept by the beam and lm decoders (default "
                      f"{DEFAULT_BEAM_WIDTH} and {DEFAULT_LM_BEAM_WIDTH})")
  parser.add_argument("--lm-weight", type=float, default=None,
                      help=f"lm decoder: weight of the language model's log score (default "
                      f"{DEFAULT_LM_WEIGHT}; {ZH_EN_LM_WEIGHT} for zh_en's alphabet)")
  parser.add_argument("--length-bonus", type=float, default=DEFAULT_LENGTH_BONUS,
                      help="lm decoder: score added per character of a reading")
  parser.add_argument("--lexicon", help="lexicon file for the lexicon decoder (one word a line)")
  if image_lexicons:
    parser.add_argument("--image-lexicons",
                        help="per-image lexicons for the lexicon decoder: KEY<TAB>word word ... "
                        "(KEY: record key, or position in evaluation order)")
  parser.add_argument("--delta", type=int, default=DEFAULT_DELTA,
                      help="lexicon decoder: candidates within this edit distance of the "
                      "greedy output (lexicons above 200 words)")


def decoder_names(args, charset: Charset | None = None) -> list[str]:
  """The decoder names of parsed `--decoder` options.

  Without `--decoder`: ['greedy'] and, given the model's charset, its default decoder
  (`decoder.default_name`: 'lm' for English models), so that `eval` scores what `predict`
  reads.
  """
  value = getattr(args, "decoder", None)
  if not value:
    value = ["greedy"] + ([default_name(charset)] if charset is not None else [])
  if isinstance(value, str):
    value = [value]
  names = [n.strip() for v in value for n in v.split(",") if n.strip()]
  for name in names:
    if name not in DECODERS:
      raise ValueError(f"--decoder must be one of {', '.join(DECODERS)}, got {name!r}")
  return list(dict.fromkeys(names)) or ["greedy"]


def decoders_from_args(args, charset: Charset) -> list[Decoder]:
  """The Decoders of parsed command-line options (see `add_arguments`)."""
  names = decoder_names(args, charset)
  if ("lexicon" in names and not getattr(args, "lexicon", None)
      and not getattr(args, "image_lexicons", None)):
    raise ValueError("--decoder lexicon needs --lexicon FILE and/or --image-lexicons FILE")
  return [decoder_from_args(args, charset, name) for name in names]


def decoder_settings(args) -> dict[str, Any]:
  """`build_decoder`'s settings of parsed command-line options (see `add_arguments`)."""
  return dict(beam_width=args.beam_width, lexicon=getattr(args, "lexicon", None),
              delta=args.delta, lm_weight=args.lm_weight, length_bonus=args.length_bonus)


def decoder_from_args(args, charset: Charset, name: str | None = None) -> Decoder:
  """The Decoder `name` (default: a single `--decoder`, else the charset's default) configured
  by parsed command-line options (see `add_arguments`); a lexicon decoder gets `--lexicon` when
  given (else it needs per-image lexicons)."""
  if name is None and isinstance(getattr(args, "decoder", None), str):
    name = args.decoder
  return build_decoder(charset, name, **decoder_settings(args))
