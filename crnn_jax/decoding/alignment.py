"""Frame alignments: where each character of a reading sits on the model's output frames.

`best_alignment` finds the most probable frame path of a given labelling (Viterbi over the CTC
lattice), so that any decoder's output (greedy, beam, lexicon) can be placed on the frames;
`char_spans` gives the first and last frame of each character and `frame_path` the per-frame
string `a-----v--a-i-l-a-bb-l-ee--`. `crnn.frame_columns` maps frames to input columns.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from crnn_jax.text.charset import BLANK_ID, Charset

BLANK_CHAR = "-"  # How blank frames are shown in `frame_path`.


def best_alignment(log_probs: np.ndarray, labels: Sequence[int]) -> np.ndarray | None:
  """The most probable frame path (Viterbi) that collapses to `labels`.

  Args:
    log_probs: `[T, K]` log-probabilities of one sample's real frames.
    labels: class ids (no blanks).

  Returns:
    `[T]` int64 class per frame whose collapse is `labels`, or None when `labels` needs more
    frames than there are (len(labels) + adjacent repeats > T).
  """
  log_probs = np.asarray(log_probs, np.float64)
  frames = log_probs.shape[0]
  labels = [int(k) for k in labels]
  ext = [BLANK_ID]
  for k in labels:
    ext += [k, BLANK_ID]
  states = len(ext)
  ext = np.array(ext)
  if frames == 0:
    return np.zeros(0, np.int64) if not labels else None
  # A state may be entered from itself, the previous state, or (for a label different from
  # the one two states back) skipping the blank between them.
  skip = np.zeros(states, bool)
  skip[2:] = (ext[2:] != BLANK_ID) & (ext[2:] != ext[:-2])
  score = np.full(states, -np.inf)
  score[0] = log_probs[0, ext[0]]
  if states > 1:
    score[1] = log_probs[0, ext[1]]
  back = np.zeros((frames, states), np.int64)
  idx = np.arange(states)
  for t in range(1, frames):
    cand = np.full((3, states), -np.inf)  # From state s, s - 1, s - 2.
    cand[0] = score
    cand[1, 1:] = score[:-1]
    cand[2, 2:] = np.where(skip[2:], score[:-2], -np.inf)
    choice = cand.argmax(0)
    score = cand[choice, idx] + log_probs[t, ext]
    back[t] = idx - choice
  ends = [states - 1] + ([states - 2] if states > 1 else [])
  end = max(ends, key=lambda s: score[s])
  if not np.isfinite(score[end]):
    return None
  path = np.zeros(frames, np.int64)
  s = end
  for t in range(frames - 1, -1, -1):
    path[t] = ext[s]
    s = back[t, s]
  return path


def char_spans(path: Sequence[int]) -> list[tuple[int, int, int]]:
  """The characters of a frame path with their first and last frame.

  Args:
    path: `[T]` class per frame.

  Returns:
    (class id, first frame, last frame) for each emitted character, in order: a run of equal
    non-blank frames is one character (as in the CTC collapse).
  """
  spans: list[list[int]] = []
  prev = BLANK_ID
  for t, k in enumerate(np.asarray(path).tolist()):
    if k != BLANK_ID:
      if k == prev:
        spans[-1][2] = t
      else:
        spans.append([int(k), t, t])
    prev = k
  return [tuple(s) for s in spans]


def frame_path(path: Sequence[int], charset: Charset, blank: str = BLANK_CHAR) -> str:
  """The per-frame string of a path, e.g. `a-----v--a-i-l-a-bb-l-ee--` (blank shown as `-`)."""
  return "".join(blank if k == BLANK_ID else charset.chars[k - 1]
                 for k in np.asarray(path).tolist())
