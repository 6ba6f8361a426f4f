"""Greedy (best-path) CTC decoding.

The arg max over classes runs on device (jit-friendly, fixed shapes); collapsing repeats and
removing blanks is a cheap host-side step on the `[B, T]` class ids.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from crnn_jax.text.charset import BLANK_ID


def log_softmax(logits: np.ndarray) -> np.ndarray:
  """Numerically stable log-softmax over the last axis in NumPy, float32 `[..., K]`."""
  logits = np.asarray(logits, np.float32)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def best_path(logits: jnp.ndarray, lengths: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Per-frame arg max and the probability of the best path.

  Args:
    logits: `[B, T, K]` class scores: a JAX array (traced, on device), or a NumPy array
      (computed in NumPy, for outputs of the onnxruntime backend, whose shapes vary too much
      to compile a program for each).
    lengths: `[B]` real frames per sample.

  Returns:
    ids: `[B, T]` int32 arg-max class per frame, BLANK_ID on padding frames.
    confidence: `[B]` float32 probability of the best path, the product over real frames of
      the maximum softmax probability.
  """
  xp = np if isinstance(logits, np.ndarray) else jnp
  logits = logits.astype(xp.float32)
  log_probs = log_softmax(logits) if xp is np else jax.nn.log_softmax(logits, axis=-1)
  real = xp.arange(logits.shape[1])[None, :] < xp.asarray(lengths)[:, None]
  ids = xp.where(real, xp.argmax(log_probs, axis=-1), BLANK_ID).astype(xp.int32)
  best = xp.where(real, xp.max(log_probs, axis=-1), 0.0)
  return ids, xp.exp(best.sum(axis=-1)).astype(xp.float32)


def best_reading(logits: jnp.ndarray, lengths: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """`best_path` with the confidence of a reading: 0 when every frame is blank (the collapsed
  text is empty; see `reading_confidence`). What the Recognizer and evaluation report."""
  ids, confidence = best_path(logits, lengths)
  xp = np if isinstance(ids, np.ndarray) else jnp
  return ids, xp.where(xp.any(ids != BLANK_ID, axis=-1), confidence, xp.float32(0.0))


def reading_confidence(num_chars, path_probability):
  """The confidence reported for a reading: its path probability, or 0 when it is empty.

  A crop sent to a recognizer holds text, so reading nothing is a failure however sure the
  model is that every frame is blank (it is, on crops it cannot read: high-confidence empty
  outputs were most of the empty outputs on real photographs). PaddleOCR's recognizer scores
  an empty reading 0 too. `best_reading` applies it on device; the host-side decoders call this.
  Works on scalars and on `[B]` arrays.
  """
  return np.where(np.asarray(num_chars) > 0, path_probability, 0.0)


def collapse_path(path: Sequence[int]) -> list[int]:
  """CTC collapse of one frame path `[T]`: merge repeats, drop blanks (see `collapse`)."""
  out, prev = [], None
  for k in np.asarray(path).tolist():
    if k != prev and k != BLANK_ID:
      out.append(int(k))
    prev = k
  return out


def collapse(ids: np.ndarray) -> list[list[int]]:
  """CTC collapse of `[B, T]` frame ids: merge repeats, then drop blanks."""
  ids = np.asarray(ids)
  keep = np.ones(ids.shape, bool)
  keep[:, 1:] = ids[:, 1:] != ids[:, :-1]
  keep &= ids != BLANK_ID
  return [row[k].tolist() for row, k in zip(ids, keep)]
