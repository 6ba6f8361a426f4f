"""Greedy (best-path) CTC decoding.

The arg max over classes runs on device (jit-friendly, fixed shapes); collapsing repeats and
removing blanks is a cheap host-side step on the `[B, T]` class ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from crnn_jax.data.charset import BLANK_ID, Charset


def best_path(logits: jnp.ndarray, lengths: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Per-frame arg max and the probability of the best path.

  Args:
    logits: `[B, T, K]` class scores.
    lengths: `[B]` real frames per sample.

  Returns:
    ids: `[B, T]` int32 arg-max class per frame, BLANK_ID on padding frames.
    confidence: `[B]` float32 probability of the best path, the product over real frames of
      the maximum softmax probability.
  """
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  real = jnp.arange(logits.shape[1])[None, :] < lengths[:, None]
  ids = jnp.where(real, jnp.argmax(log_probs, axis=-1), BLANK_ID).astype(jnp.int32)
  best = jnp.where(real, jnp.max(log_probs, axis=-1), 0.0)
  return ids, jnp.exp(best.sum(axis=-1))


def collapse(ids: np.ndarray) -> list[list[int]]:
  """CTC collapse of `[B, T]` frame ids: merge repeats, then drop blanks."""
  ids = np.asarray(ids)
  keep = np.ones(ids.shape, bool)
  keep[:, 1:] = ids[:, 1:] != ids[:, :-1]
  keep &= ids != BLANK_ID
  return [row[k].tolist() for row, k in zip(ids, keep)]


def greedy_decode(logits, lengths, charset: Charset) -> tuple[list[str], np.ndarray]:
  """Decodes a batch of class scores to strings.

  Args:
    logits: `[B, T, K]` class scores.
    lengths: `[B]` real frames.
    charset: maps class ids to characters.

  Returns:
    texts: B decoded strings.
    confidence: `[B]` best-path probabilities.
  """
  ids, confidence = _best_path_jit(logits, lengths)
  return [charset.decode(seq) for seq in collapse(np.asarray(ids))], np.asarray(confidence)


_best_path_jit = jax.jit(best_path)
