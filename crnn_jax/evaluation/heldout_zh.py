"""The held-out test set of mixed Chinese/English/digit lines, in faces training never sees.

Written like the English set (`heldout_en`: a `folder` dataset with `gt.txt`, plus `meta.tsv` with
the kind and the face of each image), with these kinds of line:

  chinese       hanzi and Chinese punctuation only (jieba words and level-1 characters);
  mixed         hanzi together with Latin letters or digits ('iPhone手机', '2024年第3季度');
  latin         English words, numbers and codes only (ASCII);
  punctuation   lines with at least two marks, at least one of them a Chinese one
                (，。、；：？！“”‘’（）《》【】…—·).

Each kind's lines come from `text_zh.sample_line` with a mix that favours it, kept when they
have the kind's property. The faces are the held-out family (`cjk_fonts.held_out_fonts()`:
HanaMin, Debian `fonts-hanazono`), never the training pool's. The repository's set was written by

  crnn-jax data heldout-zh --output testdata/heldout_zh

Scores use the NFKC protocol (`protocol.NFKC`: NFKC, white space removed, case compared).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image

from crnn_jax import progress as progress_lib
from crnn_jax.evaluation import heldout_en
from crnn_jax.evaluation import protocol
from crnn_jax.synth import cjk_fonts
from crnn_jax.synth import grayscale
from crnn_jax.synth import text_zh
from crnn_jax.synth.renderer import SingleStream
from crnn_jax.text import zh_charset

KINDS = ("chinese", "mixed", "latin", "punctuation")
GROUPS = {kind: kind for kind in KINDS}
DEFAULT_COUNTS = {"chinese": 120, "mixed": 120, "latin": 80, "punctuation": 80}
DEFAULT_SEED = 20261202
_NO_SEGMENTS = {kind: 0.0 for kind in text_zh.SEGMENT_KINDS}
MIXES = {
    "chinese": dataclasses.replace(text_zh.DEFAULT_MIX, **(_NO_SEGMENTS | {
        "chinese": 0.85, "hanzi": 0.15}), brackets=0.0, punctuation=0.1),
    "mixed": text_zh.DEFAULT_MIX,
    "latin": dataclasses.replace(text_zh.DEFAULT_MIX, **(_NO_SEGMENTS | {
        "english": 0.6, "number": 0.25, "code": 0.15}), brackets=0.05, punctuation=0.15),
    "punctuation": dataclasses.replace(text_zh.DEFAULT_MIX, punctuation=0.7, brackets=0.3),
}
_HAN = frozenset(zh_charset.LEVEL1_CHARS)
_CHINESE_MARKS = frozenset(zh_charset.CHINESE_PUNCTUATION)
_MARKS = _CHINESE_MARKS | frozenset(c for c in zh_charset.ASCII_PRINTABLE if not c.isalnum())
MAX_TRIES = 1000


def line_kind_ok(kind: str, text: str) -> bool:
  """Whether a line has the property of `kind` (see the module docstring)."""
  han = any(c in _HAN for c in text)
  latin = any(c.isascii() and c.isalnum() for c in text)
  if kind == "chinese":
    return han and all(c in _HAN or c in _CHINESE_MARKS for c in text)
  if kind == "mixed":
    return han and latin
  if kind == "latin":
    return text.isascii() and latin
  if kind == "punctuation":
    return (sum(c in _MARKS for c in text) >= 2 and any(c in _CHINESE_MARKS for c in text))
  raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def sample_kind(kind: str, rng: np.random.Generator, *, min_length: int = 1,
                max_length: int = 25) -> str:
  """A line of `kind` (lines without the kind's property are drawn again).

  Raises:
    ValueError: an unknown kind, or no line of the kind in MAX_TRIES draws.
  """
  if kind not in MIXES:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  for _ in range(MAX_TRIES):
    text = text_zh.sample_line(rng, MIXES[kind], min_length=min_length, max_length=max_length)
    if line_kind_ok(kind, text):
      return text
  raise ValueError(f"no {kind!r} line in {MAX_TRIES} draws of lengths {min_length}-{max_length}")


def write_test_set(out_dir: str | pathlib.Path,
                   faces: Sequence[cjk_fonts.FontFace] | None = None, *,
                   seed: int = DEFAULT_SEED, counts: dict[str, int] | None = None,
                   min_length: int = 2, max_length: int = 25, augment: str = "light",
                   font_size: int = 40, progress: bool = False) -> list[heldout_en.Sample]:
  """Renders the held-out set and writes it as a `folder` dataset plus `meta.tsv`.

  Args:
    out_dir: the directory to create (it must not hold a gt.txt already).
    faces: the faces to draw with (default: `cjk_fonts.held_out_fonts()`); none may be in the
      training pool or a reserved family.
    seed: the seed of all random choices.
    counts: images per kind (default DEFAULT_COUNTS).
    min_length, max_length: line lengths in characters.
    augment: the renderer's level ('light': clean print, mild noise, blur, gray levels).
    font_size: the nominal font size in pixels.
    progress: show a progress bar on a terminal.

  Returns:
    The samples written, in file order (`Sample.font` is 'FILE#INDEX').

  Raises:
    ValueError: no faces, a face of the training pool or of a reserved family, unknown kinds.
    FileExistsError: `out_dir` already holds a test set.
  """
  counts = dict(DEFAULT_COUNTS if counts is None else counts)
  unknown = sorted(set(counts) - set(KINDS))
  if unknown:
    raise ValueError(f"unknown kinds {unknown}; kinds are {KINDS}")
  faces = [cjk_fonts.FontFace(*f) for f in (cjk_fonts.held_out_fonts() if faces is None
                                            else faces)]
  if not faces:
    raise ValueError("no held-out face: apt-get install fonts-hanazono (HanaMin)")
  training = set(cjk_fonts.discover_cjk_fonts(regions=cjk_fonts.REGIONS))
  for face in faces:
    if face in training or cjk_fonts.is_reserved_face(face):
      raise ValueError(f"face {face} ({cjk_fonts.face_family(face)}) is in the training pool or "
                       "a reserved family; a held-out set needs faces training never sees")
  out = pathlib.Path(out_dir)
  if (out / heldout_en.META_FILE).exists():
    raise FileExistsError(f"{out / heldout_en.META_FILE} exists; remove the directory to "
                          "rewrite it")
  rng = np.random.default_rng(seed)
  samples = []
  counter = progress_lib.bar(total=sum(counts.values()), desc=out.name, quiet=not progress)
  for kind in KINDS:
    (out / kind).mkdir(parents=True, exist_ok=True)
    for i in range(counts.get(kind, 0)):
      while True:
        text = sample_kind(kind, rng, min_length=min_length, max_length=max_length)
        covering = [f for f in faces if cjk_fonts.font_covers(f, text)]
        if covering:
          break
      face = covering[int(rng.integers(len(covering)))]
      image = grayscale.render_text(text, face.path, SingleStream(rng), font_size=font_size,
                                    augment=augment, font_index=face.index)
      file = f"{kind}/{i:05d}.png"
      Image.fromarray(image).save(out / file, optimize=True)
      samples.append(heldout_en.Sample(file=file, text=text, kind=kind,
                                    font=f"{pathlib.Path(face.path).name}#{face.index}"))
      counter.update()
  counter.close()
  heldout_en.write_labels(out, samples, by_kind=True)  # eval --data prints a row per kind.
  return samples


def read_test_set(directory: str | pathlib.Path) -> list[heldout_en.Sample]:
  """The samples of a set written by `write_test_set`."""
  return heldout_en.read_test_set(directory, kinds=KINDS)


def accuracy_by_kind(samples: Sequence[heldout_en.Sample],
                     predictions: Sequence[str]) -> dict[str, dict]:
  """Line accuracy and 1 - NED under the NFKC protocol, overall and per kind."""
  return heldout_en.accuracy_by_group(samples, predictions, GROUPS, protocol.NFKC)
