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

The irregular set (`testdata/heldout_irregular`, `augment=IRREGULAR`) draws the same kinds of
text at the renderer's 'scene' level (colour, effects, blur, JPEG; saved as the model's
grayscale), every image bent or slanted: it cycles through GEOMETRIES, arcs of 0.3 to 0.7 font
sizes ('curved'), strong corner jitter, shear and tilts of 4 to 12 degrees ('perspective'),
tilts of 8 to 28 degrees ('rotated') and arcs under perspective ('curved_perspective'); meta.tsv
gets a fifth column, the geometry. Its fonts must lie outside the 'signage' pool (the one
`scene_en` trained on since stage 8) and draw every character; its backgrounds are flat,
gradient and noise panels only, or photographs from `backgrounds_dir` (none of the training
pool's); texts have 3 characters or more. It was written by

  crnn-jax data heldout-set --augment scene-irregular --seed 3232 \
      --output testdata/heldout_irregular \
      --fonts-dir /usr/share/fonts/opentype/ipaexfont-gothic \
      --fonts-dir /usr/share/fonts/opentype/ipaexfont-mincho \
      --fonts-dir /usr/share/fonts/truetype/sawarabi-gothic \
      --fonts-dir /usr/share/fonts/truetype/sawarabi-mincho \
      --fonts-dir /usr/share/fonts/truetype/motoya-l-maruberi \
      --fonts-dir /usr/share/fonts/truetype/klee

with the Debian packages fonts-ipaexfont-gothic, fonts-ipaexfont-mincho, fonts-sawarabi-gothic,
fonts-sawarabi-mincho, fonts-motoya-l-maruberi and fonts-klee (the Latin letters of Japanese
faces: IPAex Gothic and Mincho, Sawarabi Gothic and Mincho, Motoya L Maru, Klee One Regular and
SemiBold; none is in any training pool of the English models).
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
from crnn_jax.data import preprocess
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
META_HEADER = ["file", "text", "kind", "font"]  # And "geometry" in an irregular set.

# The irregular set: the 'scene' level with every word bent or slanted, one geometry after
# another (SceneParams fields; the rest as crnn_jax.synth.params.DEFAULT_SCENE).
IRREGULAR = "scene-irregular"
AUGMENTS = ("none", "light", "strong", IRREGULAR)
GEOMETRIES = {
    # Arcs of 0.3 to 0.7 font sizes at the word's ends, half of them under mild perspective.
    "curved": dict(curve_prob=1.0, curve_min=0.3, curve_range=0.7, perspective_prob=0.5),
    # A trapezoid: each corner moved by up to 0.25 box heights, shear up to 0.5 (half of
    # them), tilts of 4 to 12 degrees (at a jitter of 0.3 and more, one warp in a few hundred
    # sends the word out of the image).
    "perspective": dict(curve_prob=0.0, perspective_prob=1.0, corner_jitter=0.25,
                        shear_range=0.5, rotation_deg=4.0, rotation_min_deg=4.0),
    # Tilted by 8 degrees plus a half-normal of sd 5 (at most 28 degrees).
    "rotated": dict(curve_prob=0.0, perspective_prob=1.0, rotation_deg=10.0,
                    rotation_min_deg=8.0, corner_jitter=0.08),
    "curved_perspective": dict(curve_prob=1.0, curve_min=0.25, curve_range=0.6,
                               perspective_prob=1.0, corner_jitter=0.2, rotation_deg=8.0),
}
# The same for every geometry: fewer tiny images (the geometry is the question, not the
# resolution), no photographs unless a directory of held-out ones is given.
IRREGULAR_COMMON = dict(low_resolution_prob=0.1)
IRREGULAR_PANELS = dict(photo_prob=0.0, flat_prob=0.45, gradient_prob=0.3)  # The rest: noise.
IRREGULAR_COUNTS = {"word_lower": 80, "word_upper": 70, "word_capitalized": 80, "digits": 60,
                    "random": 60}
IRREGULAR_MIN_LENGTH = 3  # An arc or a tilt of one or two letters is hardly irregular.
IRREGULAR_POOL = "signage"  # scene_en's training pool (stages 8 on); it holds the others.


@dataclasses.dataclass(frozen=True)
class Sample:
  """One image of a test set: its file (relative to the set's directory), label, kind, font."""
  file: str
  text: str
  kind: str
  font: str
  geometry: str = ""  # Irregular sets: the key of GEOMETRIES it was drawn with.


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


def training_families(pool: str = "wide") -> set[str]:
  """The typeface families of a built-in training pool and the smaller ones it includes
  ('wide': also 'extended' and 'standard'; 'signage': also 'scene' and 'wide'), without any
  extra fonts_dir.

  Raises:
    ModuleNotFoundError: the pool's PyPI font packages are not installed (a test set checked
      against fewer families could share one with a model trained on that pool).
    FileNotFoundError: the 'signage' pool's Debian font packages are not installed.
  """
  return {fonts_lib.typeface_family(path) for path in fonts_lib.discover_fonts(pool=pool)}


def irregular_scene_params(geometry: str, photos: bool = False) -> dict:
  """The SceneParams overrides of an irregular set's geometry (a key of GEOMETRIES); with
  `photos`, photographs stay at the scene level's share of the backgrounds."""
  if geometry not in GEOMETRIES:
    raise ValueError(f"geometry must be one of {tuple(GEOMETRIES)}, got {geometry!r}")
  return {**IRREGULAR_COMMON, **({} if photos else IRREGULAR_PANELS), **GEOMETRIES[geometry]}


def _irregular_renderers(font_size: int, backgrounds_dir: str) -> dict:
  """A scene-level renderer per geometry; backgrounds from `backgrounds_dir` only."""
  from crnn_jax.synth import params as params_lib  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth import renderer as renderer_lib  # pylint: disable=import-outside-toplevel
  return {geometry: renderer_lib.Renderer(params_lib.RenderParams(
      augment="scene", font_size=font_size, backgrounds_dir=backgrounds_dir,
      builtin_backgrounds=False,
      scene_params=irregular_scene_params(geometry, photos=bool(backgrounds_dir))))
          for geometry in GEOMETRIES}


def write_test_set(out_dir: str | pathlib.Path, font_paths: Sequence[str | pathlib.Path], *,
                   seed: int = 20261124, counts: dict[str, int] | None = None,
                   min_length: int | None = None, max_length: int = 12,
                   chars: str = ALPHANUMERIC_62, augment: str = "light", font_size: int = 40,
                   backgrounds_dir: str = "", progress: bool = False) -> list[Sample]:
  """Renders a test set and writes it as a `folder` dataset plus `meta.tsv`.

  Args:
    out_dir: the directory to create (it must not hold a gt.txt already).
    font_paths: the fonts to draw with (each image picks one at random); each must cover
      `chars` and belong to a family outside the training pool.
    seed: the seed of all random choices.
    counts: images per kind (default DEFAULT_COUNTS; IRREGULAR_COUNTS for IRREGULAR).
    min_length: the shortest text (default 1; IRREGULAR_MIN_LENGTH for IRREGULAR).
    max_length: the longest text (words longer than this are not drawn).
    chars: the characters of random strings.
    augment: the renderer's augmentation level ('light': clean print with mild noise, blur,
      gray levels and polarity), or IRREGULAR: the scene level, every image bent or slanted
      (see the module docstring), fonts checked against the 'signage' pool.
    font_size: the nominal font size in pixels.
    backgrounds_dir: IRREGULAR: a directory of held-out background photographs (default:
      flat, gradient and noise panels only; the training pool's photographs never).
    progress: show a progress bar on a terminal (see `crnn_jax.progress`).

  Returns:
    The samples written, in file order.

  Raises:
    ValueError: no fonts, a font in the training pool, a font missing characters.
    FileExistsError: `out_dir` already holds a test set.
  """
  if augment not in AUGMENTS:
    raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
  irregular = augment == IRREGULAR
  if backgrounds_dir and not irregular:
    raise ValueError(f"backgrounds_dir applies to augment={IRREGULAR!r} only")
  if counts is None:
    counts = IRREGULAR_COUNTS if irregular else DEFAULT_COUNTS
  counts = dict(counts)
  if min_length is None:
    min_length = IRREGULAR_MIN_LENGTH if irregular else 1
  unknown = set(counts) - set(KINDS)
  if unknown:
    raise ValueError(f"unknown kinds {sorted(unknown)}; kinds are {KINDS}")
  font_paths = sorted(str(pathlib.Path(p).resolve()) for p in font_paths)
  if not font_paths:
    raise ValueError("no fonts given for the test set")
  pool_families = training_families(IRREGULAR_POOL if irregular else "wide")
  for path in font_paths:
    family = fonts_lib.typeface_family(path)
    if family in pool_families:
      raise ValueError(f"font {path!r} (family {family!r}) is in the training pool; a held-out "
                       "test set needs fonts that training never sees")
    missing = [c for c in chars if ord(c) not in fonts_lib.font_codepoints(path)]
    if missing:
      raise ValueError(f"font {path!r} has no glyph for {''.join(missing)!r}")
    face = grayscale.load_font(path, font_size)
    blank = [c for c in chars if not c.isspace() and face.getmask(c).getbbox() is None]
    if blank:  # Mapped to empty glyphs (e.g. setofont-ex.ttf's Latin letters).
      raise ValueError(f"font {path!r} draws nothing for {''.join(blank)!r}")
  out = pathlib.Path(out_dir)
  if (out / sources.GT_FILE).exists():
    raise FileExistsError(f"{out / sources.GT_FILE} exists; remove the directory to rewrite it")
  word_pool = [w for w in words_lib.english_words() if min_length <= len(w) <= max_length]
  renderers = _irregular_renderers(font_size, backgrounds_dir) if irregular else {}
  geometries = list(renderers)

  samples = []
  rng = np.random.default_rng(seed)
  counter = progress_lib.bar(total=sum(counts.values()), desc=out.name, quiet=not progress)
  for kind in KINDS:
    (out / kind).mkdir(parents=True, exist_ok=True)
    for i in range(counts.get(kind, 0)):
      text = make_text(kind, rng, min_length=min_length, max_length=max_length, chars=chars,
                       word_pool=word_pool)
      font = font_paths[rng.integers(len(font_paths))]
      file = f"{kind}/{i:05d}.png"
      # One sequential generator for the whole set, as the repository's set was drawn.
      if irregular:
        geometry = geometries[i % len(geometries)]
        image = preprocess.to_grayscale(renderers[geometry](
            text, font, SingleStream(rng), record=f"{out / file}"))
      else:
        geometry = ""
        image = grayscale.render_text(text, font, SingleStream(rng), font_size=font_size,
                                      augment=augment)
      Image.fromarray(image).save(out / file, optimize=True)
      samples.append(Sample(file=file, text=text, kind=kind, font=pathlib.Path(font).name,
                            geometry=geometry))
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
  with_geometry = any(s.geometry for s in samples)
  with open(out / META_FILE, "w", encoding="utf-8", newline="\n") as f:
    writer = csv.writer(f, delimiter="\t", lineterminator="\n")
    writer.writerow(META_HEADER + ["geometry"] * with_geometry)
    writer.writerows([s.file, s.text, s.kind, s.font] + [s.geometry] * with_geometry
                     for s in samples)


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
  if not rows or rows[0] not in (META_HEADER, META_HEADER + ["geometry"]):
    raise ValueError(f"{meta}: the first line must be the header file, text, kind, font "
                     "(and geometry)")
  columns = len(rows[0])
  for line, row in enumerate(rows[1:], start=2):
    if (len(row) != columns or row[2] not in kinds or not row[1]
        or (columns == 5 and row[4] not in GEOMETRIES)):
      raise ValueError(f"{meta}:{line}: expected file, non-empty text, kind in {kinds}, font"
                       f"{', geometry in ' + str(tuple(GEOMETRIES)) if columns == 5 else ''}; "
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
    'all', each group, each kind and (irregular sets) each geometry present.
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
    names = ("all", groups[sample.kind], sample.kind) + (
        (sample.geometry,) if sample.geometry else ())
    for name in dict.fromkeys(names):
      entry = table.setdefault(name, {"correct": 0, "total": 0, "sum_ned": 0.0})
      entry["total"] += 1
      entry["correct"] += int(predicted == label)
      entry["sum_ned"] += ned
  for entry in table.values():
    entry["accuracy"] = entry["correct"] / entry["total"]
    entry["one_minus_ned"] = 1.0 - entry.pop("sum_ned") / entry["total"]
  return table
