"""Warm starts: a model's variables filled from trained weights of another alphabet or width.

Three modes, `config.init_weights_mode` (train_lib.load_initial_weights):

  exact    every array of the run must have the same path and shape in the weights, and the
           two alphabets must be equal (fine-tuning the same model);
  partial  copy what fits, leave the rest at the run's fresh initialization: arrays of the same
           path and shape are copied; the class scores (the last BiLSTM's projection, `[D, K]`
           kernel and `[K]` bias) of another alphabet get, class by class, the trained rows of the
           characters both alphabets hold (and of the CTC blank, class 0); everything else is
           left fresh (an English model fine-tuned to Chinese keeps its digits and letters);
  subset   as partial, and an array smaller than the weights' on every axis takes their leading
           slice: a narrower model (fewer convolution channels or LSTM units) starts from the
           first channels of a wider one. The BiLSTM's projection reads `[forward H, backward
           H]` side by side, so its input rows are sliced per direction.

`transfer` returns the merged variables and a `TransferReport` that says, array by array,
what was copied, sliced or left fresh, and how many classes were mapped.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import numpy as np

MODES = ("exact", "partial", "subset")
BLANK = 0  # The CTC blank's class index in every charset (crnn_jax.text.charset).


@dataclasses.dataclass
class TransferReport:
  """What `transfer` did.

  Attributes:
    copied: paths of the arrays copied whole.
    sliced: 'path: run shape <- weights shape' for arrays copied as a leading slice.
    class_mapped: 'path: N of K classes' for class-score arrays mapped character by character.
    fresh: 'path: run shape, weights shape or absent' for arrays left at their initialization.
    unused: paths of weights' arrays that the run has not.
  """
  copied: list[str] = dataclasses.field(default_factory=list)
  sliced: list[str] = dataclasses.field(default_factory=list)
  class_mapped: list[str] = dataclasses.field(default_factory=list)
  fresh: list[str] = dataclasses.field(default_factory=list)
  unused: list[str] = dataclasses.field(default_factory=list)

  def summary(self) -> str:
    """One paragraph for the training log."""
    parts = [f"{len(self.copied)} arrays copied"]
    if self.sliced:
      parts.append(f"{len(self.sliced)} sliced")
    if self.class_mapped:
      parts.append("class scores mapped by character (" + "; ".join(self.class_mapped) + ")")
    parts.append(f"{len(self.fresh)} left fresh" +
                 (" (" + "; ".join(self.fresh) + ")" if self.fresh else ""))
    if self.unused:
      parts.append(f"{len(self.unused)} arrays of the weights unused (" +
                   "; ".join(self.unused[:5]) + (", ..." if len(self.unused) > 5 else "") + ")")
    return ", ".join(parts)


def _flat(tree) -> dict[str, Any]:
  return {jax.tree_util.keystr(path): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def class_index_map(run_chars: Sequence[str], weights_chars: Sequence[str]
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(run classes, weights classes) of the blank and of each character both alphabets hold."""
  theirs = {c: i + 1 for i, c in enumerate(weights_chars)}
  pairs = [(BLANK, BLANK)] + [(i + 1, theirs[c]) for i, c in enumerate(run_chars) if c in theirs]
  run_idx, weights_idx = zip(*pairs)
  return np.array(run_idx), np.array(weights_idx)


def _class_score_paths(tree) -> set[str]:
  """The paths of the class scores: the projection of the CRNN's last BiLSTM (`rnn{N}`)."""
  params = tree.get("params", {}) if hasattr(tree, "get") else {}
  layers = sorted((k for k in params if str(k).startswith("rnn") and str(k)[3:].isdigit()),
                  key=lambda k: int(str(k)[3:]))
  if not layers:
    return set()
  last = layers[-1]
  return {f"['params']['{last}']['projection']['kernel']",
          f"['params']['{last}']['projection']['bias']"}


def _is_projection_kernel(path: str) -> bool:
  return path.endswith("['projection']['kernel']")


def _leading_slice(path: str, ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
  """`theirs` cut to `ours`'s shape; a BiLSTM projection's input rows per direction."""
  if _is_projection_kernel(path) and ours.shape[0] % 2 == 0 and theirs.shape[0] % 2 == 0:
    half, their_half = ours.shape[0] // 2, theirs.shape[0] // 2
    rows = np.concatenate([theirs[:half], theirs[their_half:their_half + half]])
    return rows[:, :ours.shape[1]]
  return theirs[tuple(slice(0, n) for n in ours.shape)]


def transfer(ours, theirs, *, mode: str, run_chars: Sequence[str] = (),
             weights_chars: Sequence[str] = ()) -> tuple[Any, TransferReport]:
  """`ours` (a variables tree of the run) with the arrays of `theirs` that fit, by `mode`.

  Args:
    ours: the run's freshly initialized variables (any array leaves).
    theirs: trained variables (numpy arrays), of the same tree structure where they fit.
    mode: 'partial' or 'subset' (see the module docstring; 'exact' is checked by the caller).
    run_chars, weights_chars: the two alphabets (class i + 1 is chars[i]); the class axis of
      the class scores is mapped through them.

  Returns:
    (variables, report): a tree shaped as `ours` with numpy leaves of `ours`'s dtypes.

  Raises:
    ValueError: an unknown mode.
  """
  if mode not in ("partial", "subset"):
    raise ValueError(f"transfer mode must be 'partial' or 'subset', got {mode!r}")
  their_flat = _flat(theirs)
  score_paths = _class_score_paths(ours)
  run_classes, weight_classes = class_index_map(run_chars, weights_chars)
  num_run_classes, num_weight_classes = len(run_chars) + 1, len(weights_chars) + 1
  report = TransferReport()

  def fill(path, leaf):
    path = jax.tree_util.keystr(path)
    mine = np.asarray(leaf)
    other = their_flat.get(path)
    if other is None:
      report.fresh.append(f"{path}: run {mine.shape}, weights absent")
      return mine
    other = np.asarray(other)
    is_scores = path in score_paths
    if other.shape == mine.shape and (not is_scores or run_chars == weights_chars):
      report.copied.append(path)
      return other.astype(mine.dtype)
    is_class_axis = (is_scores and mine.ndim == other.ndim and mine.shape[-1] == num_run_classes
                     and other.shape[-1] == num_weight_classes and len(run_chars) > 0)
    if is_class_axis and mine.ndim in (1, 2):
      rows = other
      if mine.ndim == 2 and rows.shape[0] != mine.shape[0]:
        if mode != "subset" or rows.shape[0] < mine.shape[0]:
          report.fresh.append(f"{path}: run {mine.shape}, weights {other.shape}")
          return mine
        rows = _leading_slice(path, np.zeros((mine.shape[0], rows.shape[1])), rows)
      merged = mine.copy()
      merged[..., run_classes] = rows[..., weight_classes].astype(mine.dtype)
      report.class_mapped.append(f"{path}: {len(run_classes)} of {num_run_classes} classes")
      return merged
    if (mode == "subset" and mine.ndim == other.ndim
        and all(a <= b for a, b in zip(mine.shape, other.shape))):
      report.sliced.append(f"{path}: {mine.shape} <- {other.shape}")
      return _leading_slice(path, mine, other).astype(mine.dtype)
    report.fresh.append(f"{path}: run {mine.shape}, weights {other.shape}")
    return mine

  merged = jax.tree_util.tree_map_with_path(fill, ours)
  our_paths = set(_flat(ours))
  report.unused = sorted(set(their_flat) - our_paths)
  return merged, report
