"""The CRNN as a graph of native ONNX operators: Conv, MaxPool, LSTM, MatMul.

`crnn-jax export --format onnx` writes this graph. Each layer is the ONNX operator that
onnxruntime (and other runtimes) implement with their own optimized kernels: convolutions with
BatchNorm folded in (`fold_batch_norm`), `MaxPool` with the model's width padding, and
each BiLSTM as one bidirectional `LSTM` node whose `sequence_lens` input makes the backward
direction start at each sequence's last real frame, as the flax model does. (Restating the
LSTM as a loop of matrix products, as a generic JAX -> ONNX conversion does, runs several
times slower in onnxruntime.)

Variable width is exact as in the flax model: the true widths come in as an input, and after
every layer the columns beyond each sample's valid width are multiplied by zero, so a sample's
logits on its real frames do not depend on the padding of its batch.

Layout inside the graph: NCHW for the convolutions (the ONNX convention), time-major
`[T, B, D]` for the LSTMs; the inputs and outputs are those of `crnn_jax.export`:

  images float32 [B, H, W, 1], widths int32 [B]  ->  logits float32 [B, T, K], lengths int32 [B]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crnn_jax.models import crnn
from crnn_jax.ops import lstm

BN_EPSILON = 1e-5  # crnn.ConvStack's BatchNorm epsilon.
# ONNX's LSTM gate order (input, output, forget, cell) as indices into flax's (i, f, g, o).
_ONNX_GATE_ORDER = tuple(lstm.GATES.index(g) for g in ("i", "o", "f", "g"))


class _GraphBuilder:
  """Accumulates nodes and constants with unique names."""

  def __init__(self):
    import onnx  # pylint: disable=g-import-not-at-top
    self.helper = onnx.helper
    self.numpy_helper = onnx.numpy_helper
    self.nodes = []
    self.initializers = []
    self._count = 0

  def name(self, prefix: str) -> str:
    self._count += 1
    return f"{prefix}_{self._count}"

  def const(self, value, prefix: str = "const", dtype=None) -> str:
    name = self.name(prefix)
    array = np.asarray(value, dtype=dtype)
    self.initializers.append(self.numpy_helper.from_array(array, name))
    return name

  def op(self, op_type: str, inputs, prefix: str | None = None, outputs: int = 1, **attrs):
    names = [self.name(prefix or op_type.lower()) for _ in range(outputs)]
    self.nodes.append(self.helper.make_node(op_type, list(inputs), names, name=names[0],
                                            **attrs))
    return names[0] if outputs == 1 else names


def _column_mask(g: _GraphBuilder, x: str, valid: str) -> str:
  """float32 `[B, 1, 1, W]` mask of the first `valid[b]` columns of NCHW `x`."""
  width = g.op("Gather", [g.op("Shape", [x]), g.const(3, dtype=np.int64)], axis=0)
  columns = g.op("Range", [g.const(0, dtype=np.int64), width, g.const(1, dtype=np.int64)])
  valid_col = g.op("Unsqueeze", [g.op("Cast", [valid], to=7), g.const([1], dtype=np.int64)])
  inside = g.op("Less", [g.op("Unsqueeze", [columns, g.const([0], dtype=np.int64)]), valid_col])
  return g.op("Unsqueeze", [g.op("Cast", [inside], to=1), g.const([1, 2], dtype=np.int64)])


def _masked(g: _GraphBuilder, x: str, valid: str) -> str:
  return g.op("Mul", [x, _column_mask(g, x, valid)])


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


def _lstm_weights(cells: tuple[dict, dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
  """ONNX LSTM W `[2, 4H, D]`, R `[2, 4H, H]` and B `[2, 8H]` of (forward, backward) cells."""
  ws, rs, bs = [], [], []
  for cell in cells:
    w_in, w_h, b_h = (np.asarray(a, np.float32) for a in lstm.gate_kernels(cell, np.float32))
    hidden = w_h.shape[0]
    def reorder(matrix):  # [X, 4H] in flax order -> [4H, X] in ONNX order.
      blocks = np.split(matrix, 4, axis=-1)
      return np.concatenate([blocks[k] for k in _ONNX_GATE_ORDER], axis=-1).T
    ws.append(reorder(w_in))
    rs.append(reorder(w_h))
    bias = reorder(b_h[None])[:, 0]
    bs.append(np.concatenate([bias, np.zeros_like(bias)]))  # Input bias (none), hidden bias.
  return np.stack(ws), np.stack(rs), np.stack(bs), hidden


def build_graph(model: crnn.CRNN, variables: dict[str, Any], *, height: int = 32):
  """The model's inference pass as an ONNX GraphProto (no metadata; see `export.export_onnx`).

  Args:
    model: the CRNN (its layout: batch_norm_layout, lstm_layers).
    variables: its {'params', 'batch_stats'} (baked in as float32 constants).
    height: the input height.

  Returns:
    A GraphProto with inputs images `[B, height, W, 1]` float32 and widths `[B]` int32, and
    outputs logits `[B, T, K]` float32 and lengths `[B]` int32, equal to
    `model.apply(variables, images, widths, train=False)` on the real frames.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from onnx import TensorProto  # pylint: disable=g-import-not-at-top

  variables = jax.device_get(variables)
  convs = fold_batch_norm(variables, crnn.BATCH_NORM_LAYOUTS[model.batch_norm_layout])
  params = variables["params"]
  g = _GraphBuilder()
  x = g.op("Transpose", ["images"], perm=[0, 3, 1, 2])  # NHWC -> NCHW.
  valid = "widths"
  two = g.const(2, dtype=np.int32)
  x = _masked(g, x, valid)
  for layer, (kernel, bias) in enumerate(convs):
    last = layer == 6
    x = g.op("Conv", [x, g.const(np.transpose(kernel, (3, 2, 0, 1)), f"conv{layer}_kernel"),
                      g.const(bias, f"conv{layer}_bias")], prefix=f"conv{layer}",
             kernel_shape=list(kernel.shape[:2]), pads=[0, 0, 0, 0] if last else [1, 1, 1, 1])
    x = g.op("Relu", [x])
    if layer in crnn._POOLS:  # pylint: disable=protected-access
      stride, pad = crnn._POOLS[layer]  # pylint: disable=protected-access
      x = _masked(g, x, valid)
      x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, stride], pads=[0, pad, 0, pad])
      # (valid + 2 pad - 2) // stride + 1, on non-negative integers.
      shifted = g.op("Add", [valid, g.const(2 * pad - 2, dtype=np.int32)])
      if stride == 2:
        shifted = g.op("Div", [shifted, two])
      valid = g.op("Add", [shifted, g.const(1, dtype=np.int32)])
    elif last:
      valid = g.op("Sub", [valid, g.const(1, dtype=np.int32)])
    x = _masked(g, x, valid)
  x = g.op("Squeeze", [x, g.const([2], dtype=np.int64)])  # [B, C, T] (the height is 1).
  x = g.op("Transpose", [x], perm=[2, 0, 1])  # [T, B, C]
  lengths = g.op("Add", [g.op("Div", [g.op("Cast", ["widths"], to=6),
                                      g.const(4, dtype=np.int32)]),
                         g.const(1, dtype=np.int32)], prefix="lengths")
  for layer in range(model.lstm_layers):
    rnn = params[f"rnn{layer}"]
    w, r, b, hidden = _lstm_weights((rnn["forward_cell"], rnn["backward_cell"]))
    y = g.op("LSTM", [x, g.const(w, f"lstm{layer}_W"), g.const(r, f"lstm{layer}_R"),
                      g.const(b, f"lstm{layer}_B"), lengths], prefix=f"lstm{layer}",
             hidden_size=hidden, direction="bidirectional")  # Y [T, 2, B, H]
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # [T, B, 2, H]
    y = g.op("Reshape", [y, g.const([0, 0, 2 * hidden], dtype=np.int64)])
    proj = rnn["projection"]
    x = g.op("Add", [g.op("MatMul", [y, g.const(np.asarray(proj["kernel"], np.float32),
                                                f"proj{layer}_kernel")]),
                     g.const(np.asarray(proj["bias"], np.float32), f"proj{layer}_bias")],
             prefix=f"proj{layer}")
  g.nodes.append(g.helper.make_node("Transpose", [x], ["logits"], name="logits", perm=[1, 0, 2]))
  g.nodes.append(g.helper.make_node("Identity", [lengths], ["lengths"], name="lengths"))
  num_classes = int(np.asarray(params[f"rnn{model.lstm_layers - 1}"]["projection"]["bias"]).size)
  make = g.helper.make_tensor_value_info
  return g.helper.make_graph(
      g.nodes, "crnn",
      [make("images", TensorProto.FLOAT, ["B", height, "W", 1]),
       make("widths", TensorProto.INT32, ["B"])],
      [make("logits", TensorProto.FLOAT, ["B", "T", num_classes]),
       make("lengths", TensorProto.INT32, ["B"])],
      g.initializers)


OPSET = 21


def build_model(model: crnn.CRNN, variables: dict[str, Any], *, height: int = 32,
                opset: int = OPSET):
  """`build_graph` as an ONNX ModelProto of `opset` (no metadata; see `export.export_onnx`)."""
  import onnx  # pylint: disable=g-import-not-at-top
  from crnn_jax import __version__  # pylint: disable=g-import-not-at-top
  proto = onnx.helper.make_model(build_graph(model, variables, height=height),
                                 opset_imports=[onnx.helper.make_opsetid("", opset)],
                                 producer_name="crnn-jax", producer_version=__version__)
  proto.ir_version = min(proto.ir_version, 10)  # What onnxruntime 1.24 and later load.
  return proto
