"""Calibrated confidence: a reading's confidence as the probability that it is right.

The decoders' raw confidences are probabilities of CTC paths or labellings
(`crnn_jax.decoding.decoder`): the greedy best path's probability, or p(text | image) summed
over the alignments of the text the beam and lm decoders pick. They rank readings well, but
they are not the probability that a reading is right: a clean, correct word can get 0.03 when
the network spreads its frames over several alignments, and the lm decoder often picks a
reading of low p(text | image) that the language model makes likely. A `ConfidenceMap` turns
a raw confidence c into an estimate of P(reading == label), fitted per model and decoder:

  Platt scaling on log c (the default):   p = sigmoid(a log c + b),  a > 0,
  isotonic regression on log c:           the pool-adjacent-violators fit, its blocks
                                          (smoothed away from 0 and 1) joined by
                                          straight lines.

Both are monotone (a higher raw confidence never maps to a lower calibrated one), so ranking
and thresholding by confidence keep their order; an empty reading (raw confidence 0) stays 0.
Platt scaling is a temperature on the reading's log-probability (p / (1 - p) = e^b c^a): two
parameters, fitted by logistic regression. It cannot follow the lm decoder, whose accuracy
rises with c in two steps (the language model rescues many readings of low p(l | y)); the
isotonic map can, and `benchmarks/calibration.py --fit` picks per decoder the method with the
lower two-fold error on the synthetic fit images.

The maps of a shipped model are fitted on synthetic images only (the model's own renderer at
a seed no training or evaluation split uses, `benchmarks/calibration.py --fit`), never on the
real validation crops, and stored as `calibration.json` beside its weights (`CALIBRATION_FILE`;
the weights file is unchanged). `inference.Recognizer` applies the map of its decoder when the
decoder's settings match the fitted ones (`Calibration.map_for`); other settings, and models
without the file, report the raw confidence. `Prediction.raw_confidence` always holds it.

Reliability is measured by `reliability` (accuracy and mean confidence per confidence bin)
and `expected_calibration_error` (ECE: the count-weighted mean of |accuracy - confidence| over
equal-width bins of [0, 1]).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 1
METHODS = ("platt", "isotonic")
DEFAULT_BINS = 10
# log(raw confidence) is clipped here: path probabilities far below it are all "unsure".
LOG_FLOOR = math.log(1e-12)
# The seed of the synthetic images the shipped maps are fitted on (no training, evaluation,
# test or int8-calibration seed of any shipped config; crnn_jax.quantize uses 9_000_001).
FIT_SEED = 9_000_002


def _log_confidence(raw) -> np.ndarray:
  raw = np.asarray(raw, np.float64)
  with np.errstate(divide="ignore"):
    return np.maximum(np.log(np.clip(raw, 0.0, 1.0)), LOG_FLOOR)


@dataclasses.dataclass(frozen=True)
class ConfidenceMap:
  """A monotone map from a decoder's raw confidence to P(reading is right).

  Attributes:
    method: 'platt' or 'isotonic'.
    params: 'platt': {'a', 'b'}; 'isotonic': {'x': knots in log raw confidence (increasing),
      'y': calibrated probabilities at the knots (non-decreasing)}.
  """

  method: str
  params: Mapping[str, Any]

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"calibration method must be one of {METHODS}, got {self.method!r}")
    if self.method == "platt":
      if not float(self.params.get("a", 0.0)) > 0:
        raise ValueError(f"a Platt map needs a > 0 (monotone), got a={self.params.get('a')}")
    else:
      x, y = np.asarray(self.params.get("x", ())), np.asarray(self.params.get("y", ()))
      if len(x) == 0 or x.shape != y.shape:
        raise ValueError(f"an isotonic map needs knots x and y of one length, got {len(x)} "
                         f"and {len(y)}")
      if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0) or y.min() < 0 or y.max() > 1:
        raise ValueError("an isotonic map needs increasing x and non-decreasing y in [0, 1]")

  def __call__(self, raw) -> np.ndarray:
    """Calibrated confidences of raw ones (array or scalar); 0 stays 0."""
    raw = np.asarray(raw, np.float64)
    x = _log_confidence(raw)
    if self.method == "platt":
      out = 1.0 / (1.0 + np.exp(-(float(self.params["a"]) * x + float(self.params["b"]))))
    else:
      out = np.interp(x, np.asarray(self.params["x"], np.float64),
                      np.asarray(self.params["y"], np.float64))
    return np.where(raw > 0, out, 0.0)

  def to_dict(self) -> dict[str, Any]:
    params = {k: (list(map(float, v)) if isinstance(v, (list, tuple, np.ndarray)) else float(v))
              for k, v in self.params.items()}
    return {"method": self.method, **params}

  @classmethod
  def from_dict(cls, entry: Mapping[str, Any]) -> "ConfidenceMap":
    method = entry.get("method")
    keys = ("a", "b") if method == "platt" else ("x", "y")
    missing = [k for k in keys if k not in entry]
    if missing:
      raise ValueError(f"a {method!r} confidence map needs {', '.join(missing)}")
    return cls(method, {k: entry[k] for k in keys})


def fit_platt(raw, correct, *, l2: float = 1e-4, iterations: int = 100) -> ConfidenceMap:
  """Platt scaling on log raw confidence: logistic regression of `correct` on log c.

  Args:
    raw: raw confidences in [0, 1] (readings with raw confidence 0 are left out: they map to 0).
    correct: whether each reading was right.
    l2: a small ridge on (a, b), so that separable data still gives a finite fit.
    iterations: Newton steps at most.

  Raises:
    ValueError: too few readings, or no right or no wrong one among them, or a fit that is
      not increasing.
  """
  x, y = _fit_inputs(raw, correct)
  features = np.stack([x, np.ones_like(x)], axis=1)
  w = np.zeros(2)
  for _ in range(iterations):
    p = 1.0 / (1.0 + np.exp(-(features @ w)))
    gradient = features.T @ (p - y) / len(y) + l2 * w
    hessian = (features.T * (p * (1 - p))) @ features / len(y) + l2 * np.eye(2)
    step = np.linalg.solve(hessian, gradient)
    w -= step
    if np.abs(step).max() < 1e-10:
      break
  if not w[0] > 0:
    raise ValueError(f"the Platt fit is not increasing (a = {w[0]:.4g}): the raw confidence "
                     "does not rank right readings above wrong ones on this data")
  return ConfidenceMap("platt", {"a": float(w[0]), "b": float(w[1])})


def _pool_adjacent_violators(values, weights, xs) -> list[list[float]]:
  """Weighted isotonic regression of `values` (in the order given): blocks
  [sum of weight * value, sum of weight, sum of weight * x], their means non-decreasing."""
  blocks: list[list[float]] = []
  for value, weight, x in zip(values, weights, xs):
    blocks.append([value * weight, weight, x * weight])
    while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
      last = blocks.pop()
      blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
  return blocks


def fit_isotonic(raw, correct) -> ConfidenceMap:
  """Isotonic regression (pool adjacent violators) of `correct` on log raw confidence.

  The fitted blocks become knots at their mean log confidence, joined by straight lines. Each
  block's rate is smoothed as (right + 1) / (readings + 2), so that no reading is ever given
  0 or 1 (a block of 30 right readings says 0.97, not certainty), and pooled again where the
  smoothing broke the order.

  Raises:
    ValueError: as `fit_platt`.
  """
  x, y = _fit_inputs(raw, correct)
  order = np.argsort(x, kind="stable")
  x, y = x[order], y[order]
  # Equal x values form one block first, so that block means of x increase strictly.
  unique, start = np.unique(x, return_index=True)
  counts = np.diff(np.append(start, len(x))).astype(np.float64)
  means = np.add.reduceat(y, start) / counts
  blocks = _pool_adjacent_violators(means, counts, unique)
  rights = np.array([b[0] for b in blocks])
  sizes = np.array([b[1] for b in blocks])
  centres = np.array([b[2] / b[1] for b in blocks])
  smoothed = _pool_adjacent_violators((rights + 1) / (sizes + 2), sizes, centres)
  knots_x = [b[2] / b[1] for b in smoothed]
  knots_y = [b[0] / b[1] for b in smoothed]
  return ConfidenceMap("isotonic", {"x": knots_x, "y": knots_y})


def fit(raw, correct, method: str = "platt") -> ConfidenceMap:
  """`fit_platt` or `fit_isotonic`."""
  if method not in METHODS:
    raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
  return fit_platt(raw, correct) if method == "platt" else fit_isotonic(raw, correct)


def _fit_inputs(raw, correct) -> tuple[np.ndarray, np.ndarray]:
  raw = np.asarray(raw, np.float64).reshape(-1)
  correct = np.asarray(correct, np.float64).reshape(-1)
  if raw.shape != correct.shape:
    raise ValueError(f"{len(raw)} confidences for {len(correct)} outcomes")
  keep = raw > 0
  x, y = _log_confidence(raw[keep]), correct[keep]
  if len(y) < 10 or y.min() == y.max():
    raise ValueError(f"a confidence map needs at least 10 readings with both right and wrong "
                     f"ones; got {len(y)} ({int(y.sum())} right)")
  return x, y


def reliability(confidence, correct, bins: int = DEFAULT_BINS) -> list[dict[str, float]]:
  """Accuracy by confidence bin: equal-width bins of [0, 1] (the last one closed).

  Returns:
    One row per bin: {'low', 'high', 'count', 'confidence' (mean), 'accuracy'}; empty bins
    have count 0 and NaN means.
  """
  confidence = np.clip(np.asarray(confidence, np.float64).reshape(-1), 0.0, 1.0)
  correct = np.asarray(correct, np.float64).reshape(-1)
  if confidence.shape != correct.shape:
    raise ValueError(f"{len(confidence)} confidences for {len(correct)} outcomes")
  index = np.minimum((confidence * bins).astype(int), bins - 1)
  rows = []
  for b in range(bins):
    inside = index == b
    count = int(inside.sum())
    rows.append(dict(low=b / bins, high=(b + 1) / bins, count=count,
                     confidence=float(confidence[inside].mean()) if count else math.nan,
                     accuracy=float(correct[inside].mean()) if count else math.nan))
  return rows


def expected_calibration_error(confidence, correct, bins: int = DEFAULT_BINS) -> float:
  """ECE: sum over bins of (bin count / total) |accuracy - mean confidence|."""
  rows = reliability(confidence, correct, bins)
  total = sum(r["count"] for r in rows)
  if not total:
    raise ValueError("no readings to measure calibration on")
  return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"])
                   for r in rows if r["count"]) / total)


def decoder_settings(decoder) -> dict[str, Any]:
  """The settings of a `decoding.decoder.Decoder` that its raw confidences depend on."""
  settings: dict[str, Any] = {}
  if decoder.name in ("beam", "lm"):
    settings["beam_width"] = int(decoder.beam_width)
  if decoder.name == "lm":
    settings["lm_weight"] = float(decoder.lm_weight)
    settings["length_bonus"] = float(decoder.length_bonus)
  return settings


@dataclasses.dataclass(frozen=True)
class Calibration:
  """The confidence maps of one model, per decoder (the contents of `CALIBRATION_FILE`).

  Attributes:
    maps: decoder name -> its ConfidenceMap.
    settings: decoder name -> the decoder settings it was fitted with (`decoder_settings`).
    info: what it was fitted on, and the figures measured (written as is).
  """

  maps: Mapping[str, ConfidenceMap]
  settings: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
  info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def map_for(self, decoder) -> ConfidenceMap | None:
    """The map of a `Decoder`, or None when none was fitted for it or for its settings."""
    if decoder.name not in self.maps:
      return None
    fitted = self.settings.get(decoder.name, {})
    current = decoder_settings(decoder)
    for key, value in fitted.items():
      if key in current and not math.isclose(float(current[key]), float(value)):
        return None
    return self.maps[decoder.name]

  def to_dict(self) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, **self.info,
            "decoders": {name: {**m.to_dict(), "settings": dict(self.settings.get(name, {}))}
                         for name, m in self.maps.items()}}

  def save(self, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
    return path

  @classmethod
  def from_dict(cls, data: Mapping[str, Any], name: str = "calibration") -> "Calibration":
    """The Calibration of `to_dict`'s output; ValueError (naming `name`) if it is not one."""
    if not isinstance(data, Mapping):
      raise ValueError(f"{name}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT_VERSION:
      raise ValueError(f"{name}: unknown calibration format {data.get('format')!r} "
                       f"(expected {FORMAT_VERSION})")
    maps, settings = {}, {}
    for decoder, entry in dict(data.get("decoders", {})).items():
      try:
        maps[decoder] = ConfidenceMap.from_dict(entry)
      except ValueError as e:
        raise ValueError(f"{name}: decoder {decoder!r}: {e}") from None
      settings[decoder] = dict(entry.get("settings", {}))
    info = {k: v for k, v in data.items() if k not in ("format", "decoders")}
    return cls(maps, settings, info)

  @classmethod
  def load(cls, path: str | pathlib.Path) -> "Calibration":
    """Reads a calibration file.

    Raises:
      ValueError: naming the file, when it is not valid JSON or not a calibration.
    """
    path = pathlib.Path(path)
    try:
      data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
      raise ValueError(f"{path} is not valid JSON: {e}") from None
    return cls.from_dict(data, str(path))


def load_for(directory: str | pathlib.Path) -> Calibration | None:
  """The `CALIBRATION_FILE` of a weights directory, or None when it has none."""
  path = pathlib.Path(directory) / CALIBRATION_FILE
  return Calibration.load(path) if path.is_file() else None


def markdown_reliability(rows: Sequence[Mapping[str, float]], label: str = "") -> str:
  """A reliability table (one row per non-empty bin) as Markdown."""
  lines = [f"| confidence{(' (' + label + ')') if label else ''} | readings | mean confidence "
           "| accuracy |", "|---|---:|---:|---:|"]
  for r in rows:
    if r["count"]:
      lines.append(f"| {r['low']:.1f}-{r['high']:.1f} | {r['count']} | {r['confidence']:.3f} | "
                   f"{r['accuracy']:.3f} |")
  return "\n".join(lines) + "\n"
