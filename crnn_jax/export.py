"""Exporting a trained CRNN: ONNX (through jax2onnx) and serialized StableHLO (jax.export).

  crnn-jax export --checkpoint WORKDIR --format onnx --output crnn.onnx
  crnn-jax export --checkpoint WORKDIR --format stablehlo --output crnn.stablehlo

Both artifacts take a padded batch and its true widths and return per-frame class scores:

  inputs:  images  float32 [B, 32, W, 1]  grayscale scaled to [-1, 1] (x / 127.5 - 1),
                                          right-padded with anything (it is masked)
           widths  int32   [B]            true width of each image (8 <= widths <= W)
  outputs: logits  float32 [B, T, K]      T = W // 4 + 1; class 0 is the CTC blank
           lengths int32   [B]            real frames per image, widths // 4 + 1

B and W are dynamic. Frames t >= lengths[b] are padding and must be ignored. Greedy decoding is
`argmax(logits, -1)` over the real frames, merging repeats and dropping blanks; class i >= 1 is
character `charset[i - 1]`.

ONNX. The converter is jax2onnx (PyPI `jax2onnx`, the maintained JAX -> ONNX converter; tested
with 0.17.1). As of 0.17.1 it cannot convert the flax module itself: it swaps `jnp.shape` and
`jnp.arange` for tracing helpers that break flax's `nn.RNN` (carry shapes become tracers) and the
model's column masks; `nn.RNN` draws its initial carry with `jax.random.split`, which has no
ONNX lowering; reverse scans ("Reverse scan is not supported"), strided slices of a symbolic
width, `lax.reduce_window` (emitted as a 6-D MaxPool), integer `//` on a symbolic batch
(`lax.rem` lowering fails) and integer `(x + c) / 2` (emitted as an int `Mean`, which ONNX
rejects) all fail or produce invalid graphs. So `inference_function` restates the inference
forward pass with what it converts correctly: BatchNorm folded into the convolutions,
zero-padded `nn.max_pool` (equivalent after ReLU), column masks from `broadcasted_iota`, width
arithmetic by shifts, and each LSTM direction as a forward `lax.scan` (the backward direction
runs on the time-reversed sequence with its state held at zero on padding frames, which is
exactly flax's reversal within each sequence's length). It computes the same function as
`CRNN.apply(..., train=False)` on the real frames; tests/test_export.py checks JAX, ONNX and
StableHLO logits against the flax model (relative 1e-4). The LSTMs become ONNX `Loop`s. The
charset and the input/output conventions are stored in the model's metadata_props.

StableHLO. `jax.export` of the flax model itself, with symbolic batch and width
(constraint W >= 8), serialized with `Exported.serialize()`. Loading needs only JAX:

  exported = jax.export.deserialize(bytearray(open("crnn.stablehlo", "rb").read()))
  logits, lengths = exported.call(images, widths)

The charset and conventions are written next to it as JSON (`crnn.stablehlo.json`).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable

import numpy as np

from crnn_jax import _xla_flags

_xla_flags.apply()

# pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
from jax import lax

from crnn_jax.models import crnn
from crnn_jax.ops import lstm
# pylint: enable=g-import-not-at-top

FORMATS = ("onnx", "stablehlo")
MIN_WIDTH = 8
BN_EPSILON = 1e-5  # crnn.ConvStack's BatchNorm epsilon.
_POOLS = {0: (2, 0), 1: (2, 0), 3: (1, 1), 5: (1, 1)}  # As crnn._POOLS: (width stride, pad).


def metadata(charset, height: int, fold_case: bool, *, resize: str = "keep_ratio",
             fixed_width: int = 0, max_width: int = 1024) -> dict[str, str]:
  """The conventions stored with an exported model (all values are strings).

  `crnn_jax.resize` says how images must be resized to `crnn_jax.input_height` rows, as the
  model was trained: 'fixed' stretches every image to `crnn_jax.fixed_width` columns;
  'keep_ratio' keeps the aspect ratio (at least `crnn_jax.min_width` and, as `crnn-jax predict`
  does, at most `crnn_jax.max_width` columns). Feeding a fixed-width model keep-ratio images
  gives wrong text without any error.
  """
  if resize not in ("fixed", "keep_ratio"):
    raise ValueError(f"resize must be 'fixed' or 'keep_ratio', got {resize!r}")
  return {
      "crnn_jax.charset": json.dumps(charset.chars, ensure_ascii=False),
      "crnn_jax.blank_index": "0",
      "crnn_jax.fold_case": json.dumps(bool(fold_case)),
      "crnn_jax.input_height": str(height),
      "crnn_jax.resize": resize,
      "crnn_jax.fixed_width": str(int(fixed_width) if resize == "fixed" else 0),
      "crnn_jax.max_width": str(int(max_width)),
      "crnn_jax.min_width": str(MIN_WIDTH),
      "crnn_jax.input": ("images float32 [B, H, W, 1], grayscale x / 127.5 - 1 in [-1, 1], "
                         "right-padded; widths int32 [B] true widths"),
      "crnn_jax.output": ("logits float32 [B, T, K] with T = W // 4 + 1 (class 0 = blank, class "
                          "i = charset[i - 1]); lengths int32 [B] = widths // 4 + 1 real frames"),
      "crnn_jax.version": _version(),
  }


def _version() -> str:
  import crnn_jax  # pylint: disable=g-import-not-at-top
  return crnn_jax.__version__


def fold_batch_norm(variables: dict[str, Any], batch_norm_after) -> list[tuple[np.ndarray,
                                                                              np.ndarray]]:
  """Convolution kernels and biases with inference-mode BatchNorm folded in.

  BatchNorm(conv(x)) = conv(x) * s + (bias - mean) * s + beta with s = gamma / sqrt(var + eps),
  computed in float64.

  Args:
    variables: {'params', 'batch_stats'} of a CRNN.
    batch_norm_after: indices of the convolutions followed by BatchNorm.

  Returns:
    Seven (kernel `[kh, kw, in, out]`, bias `[out]`) float32 pairs.
  """
  params, stats = variables["params"]["cnn"], variables.get("batch_stats", {}).get("cnn", {})
  out = []
  for i in range(7):
    kernel = np.asarray(params[f"conv{i}"]["kernel"], np.float64)
    bias = np.asarray(params[f"conv{i}"]["bias"], np.float64)
    if i in batch_norm_after:
      bn, st = params[f"bn{i}"], stats[f"bn{i}"]
      scale = np.asarray(bn["scale"], np.float64) / np.sqrt(
          np.asarray(st["var"], np.float64) + BN_EPSILON)
      kernel = kernel * scale
      bias = (bias - np.asarray(st["mean"], np.float64)) * scale + np.asarray(bn["bias"],
                                                                              np.float64)
    out.append((kernel.astype(np.float32), bias.astype(np.float32)))
  return out


def _column_mask(width, valid):
  """`[B, 1, width, 1]` mask of the first `valid[b]` columns (iota, not arange: see above)."""
  cols = lax.broadcasted_iota(jnp.int32, (1, width), 1)
  return (cols < valid[:, None])[:, None, :, None]


def _lstm_direction(x, lengths, cell, reverse: bool):
  """One direction of a flax OptimizedLSTMCell layer over `[B, T, D]`, padding-aware.

  Padding frames (t >= lengths) hold the state at zero, so the reversed pass starts fresh at each
  sequence's last real frame, like flax's `nn.RNN(..., reverse=True)` with `seq_lengths`.
  """
  w_in, w_h, b_h = lstm.gate_kernels(cell, jnp.float32)
  hidden = w_h.shape[0]
  projected = jnp.einsum("btd,dg->tbg", x, w_in) + b_h  # [T, B, 4H]
  steps = lax.broadcasted_iota(jnp.int32, (x.shape[1],), 0)
  if reverse:  # jax2onnx has no reverse scan: run forward over the reversed sequence.
    projected, steps = lax.rev(projected, (0,)), lax.rev(steps, (0,))

  def step(carry, inputs):
    c, h = carry
    z, t = inputs
    z = z + h @ w_h
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    real = (t < lengths)[:, None]
    c, h = jnp.where(real, c, 0.0), jnp.where(real, h, 0.0)
    return (c, h), h

  zeros = jnp.zeros_like(projected[0, :, :hidden])
  _, outputs = lax.scan(step, (zeros, zeros), (projected, steps))
  if reverse:
    outputs = lax.rev(outputs, (0,))
  return jnp.transpose(outputs, (1, 0, 2))


def inference_function(model: crnn.CRNN, variables: dict[str, Any]
                       ) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
  """The model's inference forward pass as a pure function of (images, widths), weights baked in.

  Written for jax2onnx (see the module docstring); float32 throughout.

  Args:
    model: the CRNN (its layout: batch_norm_layout, lstm_layers).
    variables: its {'params', 'batch_stats'}.

  Returns:
    f(images `[B, 32, W, 1]` float32, widths `[B]` int32) -> (logits `[B, T, K]`,
    lengths `[B]`), equal to `model.apply(variables, images, widths, train=False)` on the real
    frames.
  """
  import flax.linen as nn  # pylint: disable=g-import-not-at-top

  variables = jax.device_get(variables)
  convs = fold_batch_norm(variables, crnn.BATCH_NORM_LAYOUTS[model.batch_norm_layout])
  params = variables["params"]

  def forward(images, widths):
    x = images.astype(jnp.float32)
    widths = widths.astype(jnp.int32)
    valid = widths
    x = jnp.where(_column_mask(x.shape[2], valid), x, 0.0)
    for layer, (kernel, bias) in enumerate(convs):
      last = layer == 6
      x = lax.conv_general_dilated(x, kernel, (1, 1), "VALID" if last else ((1, 1), (1, 1)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
      x = jax.nn.relu(x)
      if layer in _POOLS:
        stride, pad = _POOLS[layer]
        x = jnp.where(_column_mask(x.shape[2], valid), x, 0.0)
        if pad:  # Zero padding equals the model's -inf padding: inputs are >= 0 after ReLU.
          x = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (0, 0)))
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, stride), padding="VALID")
        # valid = (valid + 2 pad - 2) // stride + 1 with stride 1 or 2, as a shift.
        valid = lax.shift_right_arithmetic(valid + (2 * pad - 2), jnp.int32(stride // 2)) + 1
      elif last:
        valid = valid - 1
      x = jnp.where(_column_mask(x.shape[2], valid), x, 0.0)
    x = x[:, 0]  # [B, T, C]
    lengths = lax.shift_right_arithmetic(widths, jnp.int32(2)) + 1  # widths // 4 + 1
    for layer in range(model.lstm_layers):
      rnn = params[f"rnn{layer}"]
      y = jnp.concatenate([_lstm_direction(x, lengths, rnn["forward_cell"], False),
                           _lstm_direction(x, lengths, rnn["backward_cell"], True)], axis=-1)
      proj = rnn["projection"]
      x = y @ jnp.asarray(proj["kernel"], jnp.float32) + jnp.asarray(proj["bias"], jnp.float32)
    return x, lengths

  return forward


def export_stablehlo(model: crnn.CRNN, variables: dict[str, Any], height: int = 32) -> bytes:
  """Serialized `jax.export` artifact of the flax model with symbolic batch and width.

  Args:
    model: the CRNN.
    variables: its {'params', 'batch_stats'} (baked in as constants).
    height: the input height.

  Returns:
    Bytes for `jax.export.deserialize`; its `call(images, widths)` returns (logits, lengths).
  """
  variables = jax.device_get(variables)

  def forward(images, widths):
    return model.apply(variables, images, widths, train=False)

  batch, width = jax.export.symbolic_shape("B, W", constraints=[f"W >= {MIN_WIDTH}"])
  exported = jax.export.export(jax.jit(forward))(
      jax.ShapeDtypeStruct((batch, height, width, 1), jnp.float32),
      jax.ShapeDtypeStruct((batch,), jnp.int32))
  return exported.serialize()


def _subgraphs(graph) -> list:
  """The graphs held by `graph`'s nodes' attributes (Scan, Loop and If bodies)."""
  found = []
  for node in graph.node:
    for attribute in node.attribute:
      if attribute.HasField("g"):
        found.append(attribute.g)
      found.extend(attribute.graphs)
  return found


def _names_used(graph) -> set[str]:
  """Values read by `graph`'s nodes, by those of its subgraphs (which may read outer values),
  or returned as its outputs."""
  used = {name for node in graph.node for name in node.input}
  used.update(output.name for output in graph.output)
  for subgraph in _subgraphs(graph):
    used |= _names_used(subgraph)
  return used


def remove_unused_initializers(graph) -> int:
  """Deletes constants no node reads, in `graph` and its subgraphs; returns how many.

  jax2onnx leaves two unused constants in each Scan body of the BiLSTM, and onnxruntime prints a
  "Removing initializer ... It is not used by any node" warning for each when it loads the model.
  """
  used = _names_used(graph)
  kept = [tensor for tensor in graph.initializer if tensor.name in used]
  removed = len(graph.initializer) - len(kept)
  if removed:
    del graph.initializer[:]
    graph.initializer.extend(kept)
  return removed + sum(remove_unused_initializers(g) for g in _subgraphs(graph))


def export_onnx(model: crnn.CRNN, variables: dict[str, Any], charset, *, height: int = 32,
                fold_case: bool = False, opset: int = 21, resize: str = "keep_ratio",
                fixed_width: int = 0):
  """An ONNX ModelProto of the model, with dynamic batch and width.

  Args:
    model: the CRNN.
    variables: its {'params', 'batch_stats'}.
    charset: its Charset (stored in the metadata).
    height: the input height.
    fold_case: stored in the metadata.
    opset: the ONNX opset.
    resize, fixed_width: how inputs are resized (stored in the metadata, see `metadata`).

  Returns:
    The checked `onnx.ModelProto` (inputs images, widths; outputs logits, lengths).

  Raises:
    ImportError: jax2onnx or onnx is not installed (`pip install crnn-jax[export]`).
  """
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    from jax2onnx import to_onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("ONNX export needs jax2onnx and onnx: pip install 'crnn-jax[export]' "
                      f"({e})") from None
  forward = inference_function(model, variables)
  proto = to_onnx(forward, inputs=[("B", height, "W", 1), jax.ShapeDtypeStruct(("B",), jnp.int32)],
                  model_name="crnn", opset=opset, input_names=["images", "widths"],
                  output_names=["logits", "lengths"])
  # jax2onnx annotates intermediate values with symbolic expressions of W that onnxruntime
  # cannot always reconcile; drop them (it infers shapes itself) and name the frame axis T.
  del proto.graph.value_info[:]
  for output in proto.graph.output:
    if output.name == "logits":
      dims = output.type.tensor_type.shape.dim
      dims[1].ClearField("dim_value")
      dims[1].dim_param = "T"
  remove_unused_initializers(proto.graph)
  del proto.metadata_props[:]
  for key, value in metadata(charset, height, fold_case, resize=resize,
                             fixed_width=fixed_width).items():
    proto.metadata_props.add(key=key, value=value)
  proto.doc_string = "CRNN text recognizer exported by crnn-jax (see crnn_jax/export.py)"
  onnx.checker.check_model(proto)
  return proto


def export_checkpoint(workdir, fmt: str, output, step: int | None = None,
                      opset: int = 21) -> pathlib.Path:
  """Exports a training workdir's checkpoint to `output`.

  Args:
    workdir: the training workdir (config.json, checkpoints/).
    fmt: 'onnx' or 'stablehlo'.
    output: the file to write (StableHLO also writes `output + '.json'` with the metadata).
    step: the checkpoint step (default: latest).
    opset: ONNX opset.

  Returns:
    The written path.
  """
  from crnn_jax import checkpointing, run_files  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  config = run_files.load_config(workdir)
  _, variables = checkpointing.restore_variables(workdir, step)
  return export_variables(config, variables, fmt, output, opset)


def export_weights(name_or_dir, fmt: str, output, opset: int = 21) -> pathlib.Path:
  """Exports a shipped model (`pretrained.available()`) or a weights directory to `output`.

  Arguments and result as `export_checkpoint`; the weights are exported in float32.
  """
  from crnn_jax import pretrained  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  config, variables = pretrained.load(name_or_dir)
  return export_variables(config, variables, fmt, output, opset)


def export_variables(config, variables, fmt: str, output, opset: int = 21) -> pathlib.Path:
  """Exports a model given by its training config and variables (see `export_checkpoint`)."""
  from crnn_jax.data.charset import Charset  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  height = int(config.data.height)
  output = pathlib.Path(output)
  if output.parent:
    output.parent.mkdir(parents=True, exist_ok=True)
  resize = dict(resize=config.data.get("resize", "keep_ratio"),
                fixed_width=int(config.data.get("fixed_width", 0)))
  if fmt == "stablehlo":
    output.write_bytes(export_stablehlo(model, variables, height))
    meta = metadata(charset, height, bool(config.text.fold_case), **resize)
    meta["crnn_jax.format"] = "jax.export serialized StableHLO; load with jax.export.deserialize"
    pathlib.Path(str(output) + ".json").write_text(json.dumps(meta, indent=2,
                                                              ensure_ascii=False) + "\n")
  else:
    proto = export_onnx(model, variables, charset, height=height,
                        fold_case=bool(config.text.fold_case), opset=opset, **resize)
    output.write_bytes(proto.SerializeToString())
  return output

