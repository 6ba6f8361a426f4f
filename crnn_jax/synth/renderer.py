"""The renderer: one text line at the level its `RenderParams` ask, from its record's streams.

Levels: 'none', 'light' and 'strong' are grayscale print (`grayscale.render_text`); 'scene'
draws colour photographs of signs (`scene.render_scene`), and a share `strong_fraction` of its
records at 'strong' instead.

Randomness. Each stage of a level (layout, geometry, background, noise, ...) draws from its
own generator, `Streams(seed, index)(stage)`, seeded with
`SeedSequence([seed, index, stream_id(stage)])`. A new effect, or a change of one stage's
draws, therefore leaves every other stage of every record as it was: no stage needs to guard
its draws to keep the others' records. The record's text and font come from
`record_rng(seed, index)` (`SeedSequence([seed, index])`), apart from all of them. A test set
drawn from one sequential generator passes `SingleStream(rng)`: every stage then reads that
generator in turn.
"""

from __future__ import annotations

import operator
from typing import Protocol

from absl import logging
import numpy as np

from crnn_jax.synth import grayscale
from crnn_jax.synth.params import RenderParams

RENDER_ATTEMPTS = 3  # Draws of a record's effects before its rendering error stops the run.


def stream_id(stage: str) -> int:
  """A stage's entry of its SeedSequence: the bytes of its name as one integer (never 0, as a
  trailing 0 would leave the sequence unchanged)."""
  return int.from_bytes(stage.encode(), "big")


class StageStreams(Protocol):
  """What a level draws from: `streams(stage)` is that stage's generator."""

  def __call__(self, stage: str) -> np.random.Generator:
    ...

  def retry(self, attempt: int) -> "StageStreams":
    ...


class Streams:
  """The per-stage generators of record `index` of seed `seed` (see the module docstring)."""

  def __init__(self, seed: int, index: int, attempt: int = 0):
    self.entropy = (int(seed), int(index))
    self.attempt = int(attempt)

  def __call__(self, stage: str) -> np.random.Generator:
    """A new generator of `stage` (the same draws each call)."""
    tail = (self.attempt,) if self.attempt else ()
    return np.random.default_rng(
        np.random.SeedSequence([*self.entropy, stream_id(stage), *tail]))

  def retry(self, attempt: int) -> "Streams":
    """The streams of a new draw of the effects, after a failure (attempt 1, 2, ...)."""
    return Streams(*self.entropy, attempt=attempt)


class SingleStream:
  """Every stage draws from one generator in turn (a set drawn from one sequential seed)."""

  def __init__(self, rng: np.random.Generator | None):
    self.rng = rng

  def __call__(self, stage: str) -> np.random.Generator:
    del stage
    return self.rng

  def retry(self, attempt: int) -> "SingleStream":
    del attempt
    return SingleStream(np.random.default_rng(int(self.rng.integers(2**63))))


def record_rng(seed: int, num_records: int, index: int) -> np.random.Generator:
  """The generator of record `index`'s text and font (negative indices count from the end),
  seeded with SeedSequence([seed, index]).

  Raises:
    IndexError: the index is out of range.
  """
  return np.random.default_rng(np.random.SeedSequence([seed, record_index(num_records, index)]))


def record_index(num_records: int, index: int) -> int:
  """`index` in [0, num_records) (negative indices count from the end).

  Raises:
    IndexError: the index is out of range.
  """
  index = operator.index(index)
  if index < 0:
    index += num_records
  if not 0 <= index < num_records:
    raise IndexError(f"record index {index} out of range [0, {num_records})")
  return index


def check_records(seed: int, num_records: int) -> None:
  """Raises ValueError unless the seed and the record count are non-negative."""
  if seed < 0:
    raise ValueError(f"seed must be non-negative, got {seed}")
  if num_records < 0:
    raise ValueError(f"num_records must be non-negative, got {num_records}")


class Renderer:
  """Draws lines at the level of `params` (loads the scene level's module and backgrounds once).

  Raises:
    ModuleNotFoundError: augment='scene' without the 'scene' extra (OpenCV, ...).
  """

  def __init__(self, params: RenderParams):
    self.params = params
    self.backgrounds: tuple[str, ...] = ()
    self._scene = None
    if params.augment == "scene":
      try:
        from crnn_jax.synth import scene  # pylint: disable=import-outside-toplevel
      except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"augment='scene' needs {e.name}: pip install 'crnn-jax[scene]'") from e
      from crnn_jax.synth import backgrounds  # pylint: disable=import-outside-toplevel
      self._scene = scene
      self.backgrounds = tuple(backgrounds.discover_backgrounds(
          [params.backgrounds_dir] if params.backgrounds_dir else [],
          params.builtin_backgrounds))

  def __call__(self, text: str, font_path: str, streams: StageStreams, *, font_index: int = 0,
               record: str = "") -> np.ndarray:
    """Draws `text` in the font; uint8 `[H, W]` grayscale, or `[H, W, 3]` RGB at 'scene'.

    An exception while drawing (a renderer bug on a rare combination of effects) must not stop
    a long run: it is logged, naming `record`, and the effects are drawn again from
    `streams.retry(attempt)`, so the record stays deterministic; after RENDER_ATTEMPTS failures
    the RuntimeError names the record, the text and the font.
    """
    where = f"{record}: " if record else ""
    for attempt in range(1, RENDER_ATTEMPTS + 1):
      try:
        return self._render_once(text, font_path, streams, font_index)
      except Exception as e:  # pylint: disable=broad-except
        if attempt == RENDER_ATTEMPTS:
          raise RuntimeError(f"{where}rendering {text!r} in {font_path} failed {attempt} times; "
                             f"last error: {e!r}") from e
        logging.warning("%srendering %r in %s raised %r; its effects are drawn again", where,
                        text, font_path, e)
        streams = streams.retry(attempt)
    raise AssertionError("unreachable")

  def _render_once(self, text: str, font_path: str, streams: StageStreams,
                   font_index: int) -> np.ndarray:
    p = self.params
    level = p.augment
    if level == "scene" and streams("level").random() < p.strong_fraction:
      level = "strong"
    if level == "scene":
      return self._scene.render_scene(text, font_path, streams, font_size=p.font_size,
                                      backgrounds=self.backgrounds, params=p.scene_params,
                                      font_index=font_index)
    return grayscale.render_text(text, font_path, streams, font_size=p.font_size,
                                 augment=level, font_index=font_index,
                                 glyph=p.glyph if p.glyph.enabled else None)

