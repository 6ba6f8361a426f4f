"""Helpers for the deployment tests: a tiny CRNN workdir with random (untrained) weights.

The workdir is what training writes (config.json and an orbax checkpoint), so Recognizer,
export and the CLI load it exactly like a real one; no training is needed.
"""

from __future__ import annotations

import pathlib

import jax
import numpy as np

from configs import default
from crnn_jax import checkpointing, run_files, train_lib
from crnn_jax.text.charset import Charset
from crnn_jax.models import crnn

TINY_CHANNELS = (4, 4, 8, 8, 8, 8, 8)
TINY_HIDDEN = 8


def tiny_config(charset: str = "0123456789abcdefghijklmnopqrstuvwxyz",
                resize: str = "keep_ratio"):
  """The tiny CRNN's config; `resize='fixed'` stretches images to 32 x 100."""
  config = default.get_config()
  config.text.charset = charset
  config.model.conv_channels = TINY_CHANNELS
  config.model.lstm_hidden = TINY_HIDDEN
  config.num_train_steps = 10
  config.optimizer.warmup_steps = 1
  # Keep-ratio resizing by default: the Recognizer then batches mixed widths (models trained
  # with 'fixed' are read at their fixed width, see test_pretrained).
  config.data.resize = resize
  config.data.fixed_width = 100
  return config


def tps_config(**kwargs):
  """`tiny_config(**kwargs)` with a small TPS rectifier in front (model.rectifier 'tps')."""
  config = tiny_config(**kwargs)
  config.model.rectifier = "tps"
  config.model.rectifier_channels = (4, 8, 8, 8)
  config.model.rectifier_hidden = 16
  return config


def moderate_rectifier(model, variables, seed: int, displacement: float = 0.15):
  """`variables` whose rectifier moves its fiducial points by about `displacement`.

  Random weights (`_randomize`) would move them far outside the image. The points' offsets
  from the last layer's bias are linear in its kernel: a random kernel is scaled so that the
  largest offset on random images is `displacement` (normalized units, 2 = the image's size),
  and the bias is the canonical points plus a tenth of that, so that the rectifier is far
  from the identity yet keeps the text in view.
  """
  from crnn_jax.models import rectifier  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  variables = jax.tree.map(np.asarray, variables)
  fiducials = variables["params"]["rectifier"]["fiducials"]
  canon = rectifier.canonical_points(model.rectifier_points).reshape(-1)
  fiducials["bias"] = canon.astype(np.float32)
  fiducials["kernel"] = rng.normal(0, 1, fiducials["kernel"].shape).astype(np.float32)
  images = rng.uniform(-1, 1, (4, 32, 96, 1)).astype(np.float32)
  widths = np.array([96, 70, 41, 8], np.int32)
  _, points = jax.jit(model.rectify)(variables, images, widths)
  offset = np.abs(np.asarray(points).reshape(4, -1) - canon).max()
  fiducials["kernel"] = (fiducials["kernel"] * (displacement / offset)).astype(np.float32)
  fiducials["bias"] = (canon + rng.uniform(-0.1, 0.1, canon.shape) * displacement).astype(
      np.float32)
  return variables


def _randomize(variables, seed: int):
  """Larger random weights and non-trivial BatchNorm statistics (so nothing is the identity)."""
  rng = np.random.default_rng(seed)

  def perturb(path, x):
    x = np.asarray(x)
    name = jax.tree_util.keystr(path)
    if "var" in name:
      return rng.uniform(0.5, 2.0, x.shape).astype(x.dtype)
    if "mean" in name:
      return rng.normal(0, 0.3, x.shape).astype(x.dtype)
    return (x * 2.0 + rng.normal(0, 0.2, x.shape)).astype(x.dtype)

  return jax.tree_util.tree_map_with_path(perturb, variables)


def make_workdir(workdir: pathlib.Path, seed: int = 0, config=None) -> pathlib.Path:
  """Writes config.json and a step-0 checkpoint of a tiny random CRNN into `workdir`."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  config = config or tiny_config()
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  state = train_lib.create_train_state(config, model, jax.random.key(seed))
  variables = _randomize({"params": state.params, "batch_stats": state.batch_stats}, seed)
  if model.rectifier != "none":
    variables = moderate_rectifier(model, variables, seed)
  state = state.replace(params=variables["params"], batch_stats=variables["batch_stats"])
  run_files.save_config(config, workdir)
  with checkpointing.make_manager(workdir) as manager:
    checkpointing.save(manager, state, force=True)
    manager.wait_until_finished()
  return workdir


def model_logits(workdir, images: np.ndarray, widths: np.ndarray):
  """Reference logits `[B, T, K]` and lengths of the workdir's model, straight from flax."""
  loaded = run_files.load_model(workdir)
  logits, lengths = loaded.module.apply(loaded.variables, images, widths, train=False)
  return np.asarray(logits), np.asarray(lengths)


def text_images(seed: int, widths, height: int = 32) -> list[np.ndarray]:
  """Random uint8 grayscale images with some dark strokes."""
  rng = np.random.default_rng(seed)
  out = []
  for w in widths:
    image = rng.integers(150, 255, (height, w)).astype(np.uint8)
    for x in range(2, w - 3, 7):
      image[6:26, x:x + 2] = rng.integers(0, 60)
    out.append(image)
  return out
