"""What runs the model for a Recognizer: JAX (XLA) or onnxruntime, behind one interface.

A `Backend` takes a padded batch of preprocessed images `[B, H, W, 1]` (float32 in [-1, 1]) and
their true widths `[B]` and returns

* `log_probs(images, widths)`: per-frame log-probabilities `[B, T, K]` (log-softmax of the
  logits) and real frames `[B]`, for the host-side decoders (beam, lm, lexicon);
* `best_paths(images, widths)`: the greedy reading, class ids `[B, T]` and path confidences
  `[B]` (`greedy.best_reading`), on the device where it has one.

`start` dispatches either one and returns a function that waits for it, so that the Recognizer
decodes one batch while the model runs the next. `batch_shape` says how a backend pads a batch:
XLA compiles a program per shape, so `JaxBackend` rounds widths up to a multiple of
`width_step` and rows to a power of two; onnxruntime compiles nothing and runs the exact shape.

* `JaxBackend(model, variables)`: the flax module, jitted.
* `OnnxBackend(onnx_model)`: an `onnx_backend.OnnxModel` session, of an exported `.onnx` file
  or of a flax model converted on the fly (`OnnxBackend.from_model`, kept in the compilation
  cache directory).

`make_backend` builds either from a model and the Recognizer's keyword arguments.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from crnn_jax.decoding import greedy

BACKENDS = ("jax", "onnxruntime")

# fetch() -> the outputs of a started batch, as numpy arrays.
Fetch = Callable[[], tuple[np.ndarray, np.ndarray]]


def enable_compilation_cache(cache_dir: str | pathlib.Path | None = None) -> str | None:
  """Turns on JAX's persistent compilation cache, so programs compile once per machine.

  Each width bucket compiles its own program (about 2 s for the paper-size CRNN on a 2-core
  CPU); with the cache a later process loads it from disk instead. A cache directory the user
  already configured (`jax_compilation_cache_dir`, or the `JAX_COMPILATION_CACHE_DIR`
  environment variable) is kept.

  Args:
    cache_dir: the directory; default `$CRNN_JAX_CACHE_DIR`, else `$XDG_CACHE_HOME/crnn_jax/jax`
      (`~/.cache/crnn_jax/jax`). `CRNN_JAX_CACHE_DIR=off` disables the default.

  Returns:
    The cache directory in use, or None when caching is off.
  """
  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  if cache_dir is None:
    cache_dir = os.environ.get("CRNN_JAX_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "crnn_jax", "jax")
  if str(cache_dir).lower() in ("", "0", "off", "none"):
    return None
  jax.config.update("jax_compilation_cache_dir", str(cache_dir))
  if jax.config.jax_persistent_cache_min_compile_time_secs == 1.0:  # JAX's default.
    # A small model's bucket compiles in ~0.3 s; a CLI run compiling several is worth caching.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  return str(cache_dir)


class Backend:
  """Runs a CRNN on padded batches (the interface; see the module docstring).

  Attributes:
    name: one of BACKENDS.
    model: the flax module it runs or was converted from (None for an `.onnx` file alone).
    variables: the module's params and batch_stats (None with `model`).
    width_step: batch widths are rounded up to a multiple of this (1: exact widths).
    compiles: whether each batch shape compiles a program (what a service warms up).
  """

  name: str = ""
  width_step: int = 1
  compiles: bool = False
  model: Any = None
  variables: Any = None

  def batch_shape(self, rows: int, widest: int) -> tuple[int, int]:
    """The (rows, width) a batch of `rows` images up to `widest` columns is padded to."""
    return rows, -(-widest // self.width_step) * self.width_step

  def start(self, images: np.ndarray, widths: np.ndarray, *, greedy_decoding: bool) -> Fetch:
    """Starts the model on images `[B, H, W, 1]` with true widths `[B]`; the function returned
    waits for `best_paths`'s outputs when greedy_decoding, else `log_probs`'s."""
    raise NotImplementedError

  def log_probs(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-probabilities `[B, T, K]`, lengths `[B]`) of images `[B, H, W, 1]`, widths `[B]`."""
    return self.start(images, widths, greedy_decoding=False)()

  def best_paths(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy readings (ids `[B, T]`, confidence `[B]`, see `greedy.best_reading`) of images
    `[B, H, W, 1]` with true widths `[B]`."""
    return self.start(images, widths, greedy_decoding=True)()

  def rectify(self, arrays: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The rectifier's view of preprocessed arrays `[H, W]` (`visualize.rectify_arrays`): per
    array (rectified image, fiducial points); None without a rectifier or a flax model."""
    from crnn_jax import visualize  # pylint: disable=g-import-not-at-top
    return visualize.rectify_arrays(self.model, self.variables, arrays)


class JaxBackend(Backend):
  """The flax model run by XLA: the greedy reading on device, log-probabilities fetched."""

  name = "jax"
  compiles = True

  def __init__(self, model, variables: dict[str, Any], *, width_step: int = 32):
    """Wraps a model.

    Args:
      model: the flax CRNN.
      variables: {'params', 'batch_stats'} (put on the default device).
      width_step: batch widths are rounded up to a multiple of this, to bound the number of
        programs compiled.
    """
    self.model = model
    self.variables = jax.device_put(variables)
    self.width_step = int(width_step)
    self._best_paths = jax.jit(self._best_paths_impl)
    self._log_probs = jax.jit(self._log_probs_impl)

  def _best_paths_impl(self, variables, images, widths):
    logits, lengths = self.model.apply(variables, images, widths, train=False)
    return greedy.best_reading(logits, lengths)

  def _log_probs_impl(self, variables, images, widths):
    logits, lengths = self.model.apply(variables, images, widths, train=False)
    return jax.nn.log_softmax(logits, axis=-1), lengths

  def batch_shape(self, rows: int, widest: int) -> tuple[int, int]:
    """Rows padded to a power of two and widths rounded up to `width_step`: few programs."""
    return 1 << (rows - 1).bit_length(), super().batch_shape(rows, widest)[1]

  def start(self, images, widths, *, greedy_decoding: bool) -> Fetch:
    function = self._best_paths if greedy_decoding else self._log_probs
    # Dispatched now, run asynchronously: fetching waits for it.
    outputs = function(self.variables, jnp.asarray(images), jnp.asarray(widths, jnp.int32))
    return lambda: tuple(np.asarray(x) for x in jax.device_get(outputs))


class OnnxBackend(Backend):
  """The model exported to ONNX, run by onnxruntime's CPU kernels (synchronously).

  Attributes:
    session: the `onnx_backend.OnnxModel`.
  """

  name = "onnxruntime"

  def __init__(self, session, *, model=None, variables: dict[str, Any] | None = None):
    """Wraps an onnxruntime session.

    Args:
      session: an `onnx_backend.OnnxModel`.
      model, variables: the flax model it was converted from, if any (for `rectify`).
    """
    self.session = session
    self.model = model
    self.variables = variables

  @classmethod
  def from_model(cls, model, variables: dict[str, Any], *, height: int = 32,
                 cache_dir: str | pathlib.Path | None = None, threads: int = 0
                 ) -> "OnnxBackend":
    """The flax model converted to ONNX (`onnx_backend.model_bytes`, kept in `cache_dir`)."""
    from crnn_jax import onnx_backend  # pylint: disable=g-import-not-at-top
    data = onnx_backend.model_bytes(model, variables, height=height, cache_dir=cache_dir)
    return cls(onnx_backend.OnnxModel(data, threads=threads), model=model, variables=variables)

  def start(self, images, widths, *, greedy_decoding: bool) -> Fetch:
    logits, lengths = self.session.logits(images, widths)
    outputs = (greedy.best_reading(logits, lengths) if greedy_decoding
               else (greedy.log_softmax(logits), lengths))
    return lambda: outputs


def make_backend(name: str, model, variables: dict[str, Any] | None, *, height: int = 32,
                 width_step: int = 32, onnx_model: Any = None, threads: int = 0,
                 cache_dir: str | pathlib.Path | None = None) -> Backend:
  """The backend `name` of a model.

  Args:
    name: 'jax' (XLA) or 'onnxruntime' (the model exported to ONNX and run by onnxruntime's
      CPU kernels; `crnn_jax.onnx_backend`). Both give the same predictions.
    model, variables: the flax CRNN and its variables (None with an `onnx_model` alone).
    height: the model's input height.
    width_step: 'jax': batch widths are rounded up to a multiple of this.
    onnx_model: 'onnxruntime': a `.onnx` file of this model (e.g. int8 from `crnn-jax export
      --quantize int8`), its bytes or an `onnx_backend.OnnxModel`; default: converted from
      `model` and `variables` and kept in `cache_dir`.
    threads: 'onnxruntime': its intra-op threads (0: one per core).
    cache_dir: 'onnxruntime': where converted models are kept (None: converted every time).

  Raises:
    ValueError: an unknown backend, or an ONNX model that cannot be loaded.
  """
  if name not in BACKENDS:
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
  if name == "jax":
    return JaxBackend(model, variables, width_step=width_step)
  if onnx_model is None:
    return OnnxBackend.from_model(model, variables, height=height, cache_dir=cache_dir,
                                  threads=threads)
  from crnn_jax import onnx_backend  # pylint: disable=g-import-not-at-top
  if not isinstance(onnx_model, onnx_backend.OnnxModel):
    onnx_model = onnx_backend.OnnxModel(onnx_model, threads=threads)
  return OnnxBackend(onnx_model, model=model, variables=variables)
