"""Running an exported CRNN in onnxruntime: the Recognizer's `backend='onnxruntime'`.

`OnnxModel` wraps an onnxruntime CPU session of a model written by `crnn-jax export --format
onnx` (float32, or int8 with `--quantize int8`) and returns what the JAX path returns:
logits `[B, T, K]` and lengths `[B]` for a padded batch of images `[B, 32, W, 1]` and their true
widths `[B]`. Recognizer builds the model on the fly from its weights (`crnn_jax.onnx_graph`)
and keeps it in its compilation cache directory (`inference.enable_compilation_cache`), so a
later process loads the file instead of rebuilding it; or it reads a given `.onnx` file, whose metadata then
supplies the charset and the resizing (`Recognizer.from_onnx`).

onnxruntime is optional: `pip install 'crnn-jax[export]'`.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Any

import numpy as np

from crnn_jax.data import preprocess

REQUIRED_INPUTS = ("images", "widths")
REQUIRED_OUTPUTS = ("logits", "lengths")


def _import_onnxruntime():
  try:
    import onnxruntime  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("backend='onnxruntime' needs onnxruntime and onnx: "
                      f"pip install 'crnn-jax[export]' ({e})") from None
  return onnxruntime


class OnnxModel:
  """An onnxruntime session of an exported CRNN.

  Attributes:
    path: the model file ('' for a model given as bytes).
    metadata: its `crnn_jax.*` metadata (see `crnn_jax.export.metadata`).
    threads: onnxruntime's intra-op threads (0: its default, one per core).
  """

  def __init__(self, model: str | pathlib.Path | bytes, *, threads: int = 0):
    """Opens a model.

    Args:
      model: a `.onnx` file or its serialized bytes.
      threads: intra-op threads (0: onnxruntime's default).

    Raises:
      ValueError: naming the file, when it cannot be loaded or is not a crnn-jax model
        (inputs images and widths, outputs logits and lengths).
    """
    ort = _import_onnxruntime()
    self.path = "" if isinstance(model, bytes) else str(model)
    self.threads = int(threads)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # Errors only: onnxruntime's warnings are not ours.
    if threads:
      options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    name = self.path or "the ONNX model"
    try:
      self.session = ort.InferenceSession(model if isinstance(model, bytes) else self.path,
                                          options, providers=["CPUExecutionProvider"])
    except Exception as e:  # pylint: disable=broad-except  # onnxruntime raises its own types.
      raise ValueError(f"{name}: cannot load in onnxruntime ({type(e).__name__}: {e})") from None
    inputs = [i.name for i in self.session.get_inputs()]
    outputs = [o.name for o in self.session.get_outputs()]
    if tuple(inputs) != REQUIRED_INPUTS or tuple(outputs) != REQUIRED_OUTPUTS:
      raise ValueError(f"{name}: not a crnn-jax export (inputs {inputs}, outputs {outputs}; "
                       f"expected {list(REQUIRED_INPUTS)} -> {list(REQUIRED_OUTPUTS)})")
    self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

  def logits(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits float32 `[B, T, K]`, lengths int32 `[B]`) of images `[B, H, W, 1]` float32."""
    logits, lengths = self.session.run(None, {
        "images": np.ascontiguousarray(images, np.float32),
        "widths": np.ascontiguousarray(widths, np.int32)})
    return logits, lengths


def recognizer_settings(metadata: dict[str, str]) -> dict[str, Any]:
  """Charset characters, fold_case, height, fixed_width and max_width from an export's metadata.

  Raises:
    ValueError: a key is missing (the file was not written by `crnn-jax export`).
  """
  try:
    resize = metadata["crnn_jax.resize"]
    return dict(chars=json.loads(metadata["crnn_jax.charset"]),
                fold_case=json.loads(metadata["crnn_jax.fold_case"]),
                height=int(metadata["crnn_jax.input_height"]),
                fixed_width=int(metadata["crnn_jax.fixed_width"]) if resize == "fixed" else None,
                max_width=int(metadata.get("crnn_jax.max_width", preprocess.DEFAULT_MAX_WIDTH)))
  except KeyError as e:
    raise ValueError(f"no {e.args[0]} in the model's metadata: export it with "
                     "`crnn-jax export --format onnx`") from None


def _weights_key(model, variables: dict[str, Any], height: int) -> str:
  """A digest of the model's layout, weights and the crnn-jax version (the cache file name)."""
  import jax  # pylint: disable=g-import-not-at-top
  import crnn_jax  # pylint: disable=g-import-not-at-top

  digest = hashlib.sha256()
  digest.update(repr((crnn_jax.__version__, height, model.conv_channels,
                      model.batch_norm_layout, model.lstm_hidden, model.lstm_layers,
                      model.num_classes)).encode())
  leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(variables))
  for path, leaf in leaves:
    array = np.ascontiguousarray(np.asarray(leaf, np.float32))
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(array.tobytes())
  return digest.hexdigest()[:24]


def model_bytes(model, variables: dict[str, Any], *, height: int = 32,
                cache_dir: str | pathlib.Path | None = None) -> bytes:
  """The float32 ONNX model of (model, variables), from `cache_dir` when it is there.

  The model is built by `onnx_graph.build_model` (without metadata: the Recognizer knows its
  charset and resizing) and written to `cache_dir` (the Recognizer's compilation cache
  directory) for the next process; None: built every time.
  """
  path = (pathlib.Path(cache_dir) / f"crnn_{_weights_key(model, variables, height)}.onnx"
          if cache_dir else None)
  if path is not None and path.is_file():
    return path.read_bytes()
  from crnn_jax import onnx_graph  # pylint: disable=g-import-not-at-top
  data = onnx_graph.build_model(model, variables, height=height).SerializeToString()
  if path is not None:
    try:
      path.parent.mkdir(parents=True, exist_ok=True)
      partial = path.with_suffix(f".{os.getpid()}.tmp")
      partial.write_bytes(data)
      partial.replace(path)  # Atomic: another process never reads half a file.
    except OSError:
      pass  # A read-only cache only costs the rebuild next time.
  return data
