"""Golden records of the renderer: the digests of records drawn at every augmentation level.

A record is a pure function of (seed, index) on one installation, so a change of these
digests means that the code changed what is drawn: configs would no longer reproduce their
runs. Refactors must leave them as they are; a deliberate change of the renderer regenerates
them (`python tests/synth/test_golden_renderer.py`) and says why in its commit.

The digests hold for the library versions and font files they were made with (the
`environment` entry); elsewhere the test is skipped, naming what differs.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
import json
import pathlib
import sys

import numpy as np
import pytest

GOLDEN = pathlib.Path(__file__).with_name("golden_renderer.json")
CHARS_62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
LEVELS = {  # level: RenderParams fields.
    "none": dict(augment="none"),
    "light": dict(augment="light"),
    "strong": dict(augment="strong", digit_fraction=0.15),
    "scene": dict(augment="scene", vocabulary="wordfreq", length_balance=0.2,
                  punctuation_fraction=0.2, price_fraction=0.5, digit_fraction=0.2,
                  strong_fraction=0.2, builtin_backgrounds=False, font_pool="scene"),
}
NUM_RECORDS = 12


def _source(level: str):
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth.params import RenderParams  # pylint: disable=import-outside-toplevel
  from crnn_jax.synth.source_en import SyntheticTextSource  # pylint: disable=import-outside-toplevel
  return SyntheticTextSource(charset=Charset(CHARS_62), seed=7, num_records=NUM_RECORDS,
                             params=RenderParams(**LEVELS[level]))


def _environment(sources) -> dict[str, str]:
  import cv2  # pylint: disable=import-outside-toplevel
  import PIL  # pylint: disable=import-outside-toplevel
  from PIL import features  # pylint: disable=import-outside-toplevel
  fonts = hashlib.sha256()
  for path in sorted({p for source in sources for p in source.fonts}):
    fonts.update(pathlib.Path(path).name.encode())
    fonts.update(pathlib.Path(path).read_bytes())
  return {"numpy": np.__version__, "pillow": PIL.__version__,
          "freetype": str(features.version("freetype2")), "opencv": cv2.__version__,
          "wordfreq": metadata.version("wordfreq"), "fonts": fonts.hexdigest()}


def _digests(source) -> list[str]:
  out = []
  for i in range(len(source)):
    record = source[i]
    image = np.ascontiguousarray(np.asarray(record["image"], np.uint8))
    digest = hashlib.sha256(record["text"].encode() + str(image.shape).encode() + image.tobytes())
    out.append(digest.hexdigest()[:16])
  return out


def compute() -> dict:
  sources = {level: _source(level) for level in LEVELS}
  return {"environment": _environment(sources.values()),
          "records": {level: _digests(source) for level, source in sources.items()}}


def test_records_are_the_golden_ones():
  pytest.importorskip("cv2")
  pytest.importorskip("wordfreq")
  golden = json.loads(GOLDEN.read_text())
  sources = {level: _source(level) for level in LEVELS}
  environment = _environment(sources.values())
  differs = {k: (v, environment.get(k)) for k, v in golden["environment"].items()
             if environment.get(k) != v}
  if differs:
    pytest.skip(f"golden records were made with other libraries or fonts: {differs}")
  for level, source in sources.items():
    assert _digests(source) == golden["records"][level], (
        f"the {level!r} level draws other records than the golden ones; if that is meant, "
        "regenerate them with `python tests/synth/test_golden_renderer.py`")


if __name__ == "__main__":
  GOLDEN.write_text(json.dumps(compute(), indent=1) + "\n")
  print(f"wrote {GOLDEN}", file=sys.stderr)
