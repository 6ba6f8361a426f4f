"""Held-out test sets rendered with fonts outside the training pool, written once to disk.

A test set is a `folder` dataset (see `sources`): PNG files in one sub-directory per kind of
text and a `gt.txt` of `kind/NNNNN.png<TAB>label` lines, so `crnn-jax eval --data DIR` reads it
like any other dataset; `meta.tsv` adds the kind and the font of every image.

Kinds of text:
  word_lower, word_upper, word_capitalized   dictionary words in one case form;
  digits                                     strings of 0-9;
  random                                     random strings over the charset.

The repository's English set (`testdata/heldout_en`) was written by

  crnn-jax data heldout-set --output testdata/heldout_en \
      --fonts-dir /usr/share/fonts/truetype/liberation \
      --fonts-dir /usr/share/fonts/truetype/freefont

with the Debian packages `fonts-liberation` and `fonts-freefont-ttf` (Liberation Sans, Serif
and Mono; FreeSans, FreeSerif, FreeMono: none of them is in the training pool, and the writer
refuses a font whose family is).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pathlib
import string
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from crnn_jax import progress as progress_lib
from crnn_jax.data import sources
from crnn_jax.evaluation import metrics
from crnn_jax.evaluation.protocol import Protocol
from crnn_jax.synth import fonts as fonts_lib
from crnn_jax.synth import grayscale
from crnn_jax.synth import words as words_lib
from crnn_jax.synth.renderer import SingleStream
from crnn_jax.text.charset import ALPHANUMERIC_62

KINDS = ("word_lower", "word_upper", "word_capitalized", "digits", "random")
# Which group of the evaluation table each kind belongs to.
GROUPS = {"word_lower": "words", "word_upper": "words", "word_capitalized": "words",
          "digits": "digits", "random": "random"}
DEFAULT_COUNTS = {"word_lower": 100, "word_upper": 100, "word_capitalized": 100,
                  "digits": 150, "random": 150}
META_FILE = "meta.tsv"


@dataclasses.dataclass(frozen=True)
class Sample:
  """One image of a test set: its file (relative to the set's directory), label, kind, font."""
  file: str
  text: str
  kind: str
  font: str


def make_text(kind: str, rng: np.random.Generator, *, min_length: int, max_length: int,
              chars: str, word_pool: Sequence[str]) -> str:
  """One text of the given kind.

  Args:
    kind: one of KINDS.
    rng: the random generator.
    min_length: the shortest text.
    max_length: the longest text.
    chars: the characters of 'random' strings.
    word_pool: lower-case dictionary words with lengths in [min_length, max_length].

  Returns:
    The text.
  """
  if kind.startswith("word_"):
    word = word_pool[rng.integers(len(word_pool))]
    return {"word_lower": word, "word_upper": word.upper(),
            "word_capitalized": word[:1].upper() + word[1:]}[kind]
  length = int(rng.integers(min_length, max_length + 1))
  alphabet = string.digits if kind == "digits" else chars
  if kind not in ("digits", "random"):
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=length))


def training_families() -> set[str]:
  """The typeface families of the built-in training pools (the 'wide' one includes the
  'extended' and 'standard' ones; without any extra fonts_dir).

  Raises:
    ModuleNotFoundError: the 'wide' pool's font packages are not installed (a test set checked
      against fewer families could share one with a model trained on that pool).
  """
  return {fonts_lib.typeface_family(path) for path in fonts_lib.discover_fonts(pool="wide")}


def write_test_set(out_dir: str | pathlib.Path, font_paths: Sequence[str | pathlib.Path], *,
                   seed: int = 20261124, counts: dict[str, int] | None = None,
                   min_length: int = 1, max_length: int = 12, chars: str = ALPHANUMERIC_62,
                   augment: str = "light", font_size: int = 40,
                   progress: bool = False) -> list[Sample]:
  """Renders a test set and writes it as a `folder` dataset plus `meta.tsv`.

  Args:
    out_dir: the directory to create (it must not hold a gt.txt already).
    font_paths: the fonts to draw with (each image picks one at random); each must cover
      `chars` and belong to a family outside the training pool.
    seed: the seed of all random choices.
    counts: images per kind (default DEFAULT_COUNTS).
    min_length: the shortest text.
    max_length: the longest text (words longer than this are not drawn).
    chars: the characters of random strings.
    augment: the renderer's augmentation level ('light': clean print with mild noise, blur,
      gray levels and polarity).
    font_size: the nominal font size in pixels.
    progress: show a progress bar on a terminal (see `crnn_jax.progress`).

  Returns:
    The samples written, in file order.

  Raises:
    ValueError: no fonts, a font in the training pool, a font missing characters.
    FileExistsError: `out_dir` already holds a test set.
  """
  counts = dict(DEFAULT_COUNTS if counts is None else counts)
  unknown = set(counts) - set(KINDS)
  if unknown:
    raise ValueError(f"unknown kinds {sorted(unknown)}; kinds are {KINDS}")
  font_paths = sorted(str(pathlib.Path(p).resolve()) for p in font_paths)
  if not font_paths:
    raise ValueError("no fonts given for the test set")
  pool_families = training_families()
  for path in font_paths:
    family = fonts_lib.typeface_family(path)
    if family in pool_families:
      raise ValueError(f"font {path!r} (family {family!r}) is in the training pool; a held-out "
                       "test set needs fonts that training never sees")
    missing = [c for c in chars if ord(c) not in fonts_lib.font_codepoints(path)]
    if missing:
      raise ValueError(f"font {path!r} has no glyph for {''.join(missing)!r}")
  out = pathlib.Path(out_dir)
  if (out / sources.GT_FILE).exists():
    raise FileExistsError(f"{out / sources.GT_FILE} exists; remove the directory to rewrite it")
  word_pool = [w for w in words_lib.english_words() if min_length <= len(w) <= max_length]

  samples = []
  rng = np.random.default_rng(seed)
  counter = progress_lib.bar(total=sum(counts.values()), desc=out.name, quiet=not progress)
  for kind in KINDS:
    (out / kind).mkdir(parents=True, exist_ok=True)
    for i in range(counts.get(kind, 0)):
      text = make_text(kind, rng, min_length=min_length, max_length=max_length, chars=chars,
                       word_pool=word_pool)
      font = font_paths[rng.integers(len(font_paths))]
      # One sequential generator for the whole set, as the repository's set was drawn.
      image = grayscale.render_text(text, font, SingleStream(rng), font_size=font_size,
                                    augment=augment)
      file = f"{kind}/{i:05d}.png"
      Image.fromarray(image).save(out / file, optimize=True)
      samples.append(Sample(file=file, text=text, kind=kind, font=pathlib.Path(font).name))
      counter.update()
  counter.close()
  write_labels(out, samples)
  return samples


def write_labels(out: pathlib.Path, samples: Sequence[Sample], by_kind: bool = False) -> None:
  """Writes a test set's gt.txt and meta.tsv for the samples (their images already written).

  With `by_kind` each kind's folder gets a gt.txt of its own (paths relative to it) and the
  set none at its top, so that `crnn-jax eval --data SET` reads one dataset per kind and prints
  a row for each, and their total.
  """
  if by_kind:
    for kind in dict.fromkeys(s.kind for s in samples):
      with open(out / kind / sources.GT_FILE, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{pathlib.PurePosixPath(s.file).relative_to(kind)}\t{s.text}\n"
                     for s in samples if s.kind == kind)
  else:
    with open(out / sources.GT_FILE, "w", encoding="utf-8", newline="\n") as f:
      f.writelines(f"{s.file}\t{s.text}\n" for s in samples)
  with open(out / META_FILE, "w", encoding="utf-8", newline="\n") as f:
    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
    writer.writerow(["file", "text", "kind", "font"])
    writer.writerows([s.file, s.text, s.kind, s.font] for s in samples)


def read_test_set(directory: str | pathlib.Path, kinds: Sequence[str] = KINDS) -> list[Sample]:
  """The samples of a test set written by `write_test_set` (from its meta.tsv).

  Args:
    directory: the test set.
    kinds: the kinds its lines may have (`heldout_zh.KINDS` for the Chinese set).

  Raises:
    FileNotFoundError: no meta.tsv, or a listed image is missing.
    ValueError: a malformed line (the line number is given).
  """
  directory = pathlib.Path(directory)
  meta = directory / META_FILE
  if not meta.is_file():
    raise FileNotFoundError(f"{meta} not found: not a test set written by write_test_set")
  samples = []
  with open(meta, encoding="utf-8", newline="") as f:
    rows = list(csv.reader(io.StringIO(f.read()), delimiter="\t"))
  if not rows or rows[0] != ["file", "text", "kind", "font"]:
    raise ValueError(f"{meta}: the first line must be the header file, text, kind, font")
  for line, row in enumerate(rows[1:], start=2):
    if len(row) != 4 or row[2] not in kinds or not row[1]:
      raise ValueError(f"{meta}:{line}: expected file, non-empty text, kind in {kinds}, font; "
                       f"got {row!r}")
    if not (directory / row[0]).is_file():
      raise FileNotFoundError(f"{meta}:{line}: image {directory / row[0]} is missing")
    samples.append(Sample(*row))
  return samples


def accuracy_by_group(samples: Sequence[Sample], predictions: Sequence[str],
                      groups: Mapping[str, str] | None = None,
                      compare: Protocol | None = None) -> dict[str, dict]:
  """Word (line) accuracy and 1 - NED, overall, per group and per kind.

  Args:
    samples: the test set.
    predictions: one predicted string per sample.
    groups: the group of each kind (default GROUPS; `heldout_zh.GROUPS`).
    compare: how labels and predictions are normalized before comparing (default: unchanged,
      case-sensitive; `protocol.NFKC` for Chinese lines).

  Returns:
    {name: {'correct': int, 'total': int, 'accuracy': float, 'one_minus_ned': float}} for
    'all', each group and each kind present.
  """
  if len(samples) != len(predictions):
    raise ValueError(f"{len(samples)} samples but {len(predictions)} predictions")
  groups = GROUPS if groups is None else groups
  table: dict[str, dict] = {}
  for sample, predicted in zip(samples, predictions):
    label = sample.text
    if compare is not None:
      label, predicted = compare.label(label), compare.prediction(predicted)
    ned = metrics.normalized_edit_distance(predicted, label)
    for name in dict.fromkeys(("all", groups[sample.kind], sample.kind)):
      entry = table.setdefault(name, {"correct": 0, "total": 0, "sum_ned": 0.0})
      entry["total"] += 1
      entry["correct"] += int(predicted == label)
      entry["sum_ned"] += ned
  for entry in table.values():
    entry["accuracy"] = entry["correct"] / entry["total"]
    entry["one_minus_ned"] = 1.0 - entry.pop("sum_ned") / entry["total"]
  return table
