"""CTC loss with the bookkeeping training needs: infeasible labels masked out and counted.

`optax.ctc_loss` returns about 1e5 (not infinity) for a label that cannot be aligned to the
frames (its length plus the number of repeated neighbours exceeds T). Averaging such values in
would wreck training, so they are excluded from the mean and reported as a count.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def required_frames(labels: jnp.ndarray, label_lengths: jnp.ndarray) -> jnp.ndarray:
  """Minimum number of frames a CTC alignment of each label needs.

  Args:
    labels: `[B, L]` int class ids, padded with 0 beyond `label_lengths`.
    label_lengths: `[B]` label lengths.

  Returns:
    `[B]` length + number of positions where a character repeats its left neighbour.
  """
  positions = jnp.arange(labels.shape[1])[None, :]
  real = positions < label_lengths[:, None]
  repeats = (labels[:, 1:] == labels[:, :-1]) & real[:, 1:]
  return label_lengths + repeats.sum(axis=1)


def ctc_loss(
    logits: jnp.ndarray,
    frame_lengths: jnp.ndarray,
    labels: jnp.ndarray,
    label_lengths: jnp.ndarray,
    sample_mask: jnp.ndarray | None = None,
) -> dict[str, jnp.ndarray]:
  """Mean CTC loss over the feasible samples of a batch.

  Args:
    logits: `[B, T, K]` unnormalized scores (blank = 0), float32.
    frame_lengths: `[B]` real frames per sample.
    labels: `[B, L]` class ids, padded beyond `label_lengths`.
    label_lengths: `[B]` label lengths (a sample with length 0 counts as infeasible).
    sample_mask: optional `[B]` bool, False for padding samples of a partial batch.

  Returns:
    A dict of scalars and per-sample values:
      loss: mean negative log-likelihood over feasible samples (0 when there are none).
      per_sample: `[B]` negative log-likelihoods (0 where not counted).
      feasible: `[B]` bool, samples included in the loss.
      num_feasible, num_infeasible: counts (infeasible excludes padding samples).
  """
  batch, frames = logits.shape[:2]
  if sample_mask is None:
    sample_mask = jnp.ones((batch,), bool)
  logit_paddings = (jnp.arange(frames)[None, :] >= frame_lengths[:, None]).astype(jnp.float32)
  label_paddings = (jnp.arange(labels.shape[1])[None, :] >= label_lengths[:, None]).astype(
      jnp.float32)
  per_sample = optax.ctc_loss(
      logits.astype(jnp.float32), logit_paddings, labels, label_paddings, blank_id=0)
  feasible = (sample_mask & (label_lengths > 0)
              & (required_frames(labels, label_lengths) <= frame_lengths))
  per_sample = jnp.where(feasible, per_sample, 0.0)
  num_feasible = feasible.sum()
  loss = per_sample.sum() / jnp.maximum(num_feasible, 1)
  return dict(
      loss=loss,
      per_sample=per_sample,
      feasible=feasible,
      num_feasible=num_feasible,
      num_infeasible=(sample_mask & ~feasible).sum(),
  )
