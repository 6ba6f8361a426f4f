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

A TPS rectifier (`rectifier='tps'`, crnn_jax/models/rectifier.py) comes first, written as
the flax module computes it: its localization convolutions (BatchNorm folded, masked), the
column-bin pooling as a MatMul with per-sample bin weights, the Dense layers, the TPS grid
(the solver and the canonical points as constants, the kernel as Mul and Log) and the bilinear
sampling as four GatherElements on the flattened image, with indices clamped to each sample's
real region. Its node names start with 'rectifier_' (int8 export keeps them in float32).

Layout inside the graph: NCHW for the convolutions (the ONNX convention), time-major
`[T, B, D]` for the LSTMs; the inputs and outputs are those of `crnn_jax.export`:

  images float32 [B, H, W, 1], widths int32 [B]  ->  logits float32 [B, T, K], lengths int32 [B]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crnn_jax.models import crnn
from crnn_jax.models import rectifier as rectifier_lib
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
  return [_fold(params[f"conv{i}"], params.get(f"bn{i}") if i in batch_norm_after else None,
                stats.get(f"bn{i}")) for i in range(7)]


def _fold(conv, bn, stats) -> tuple[np.ndarray, np.ndarray]:
  """One convolution's (kernel, bias) with its BatchNorm (if `bn`) folded in, float32."""
  kernel = np.asarray(conv["kernel"], np.float64)
  bias = np.asarray(conv["bias"], np.float64)
  if bn is not None:
    scale = np.asarray(bn["scale"], np.float64) / np.sqrt(
        np.asarray(stats["var"], np.float64) + BN_EPSILON)
    kernel = kernel * scale
    bias = (bias - np.asarray(stats["mean"], np.float64)) * scale + np.asarray(bn["bias"],
                                                                              np.float64)
  return kernel.astype(np.float32), bias.astype(np.float32)


def _rectifier(g: _GraphBuilder, model: crnn.CRNN, variables: dict[str, Any], images: str,
               height: int) -> str:
  """The TPS rectifier's nodes: NCHW `images` `[B, 1, H, W]` -> rectified `[B, 1, H, W]`.

  The same computation as `rectifier.TPSRectifier` (see the module docstring there).
  """
  i64 = lambda v: g.const(v, dtype=np.int64)  # pylint: disable=unnecessary-lambda-assignment
  i32 = lambda v: g.const(v, dtype=np.int32)  # pylint: disable=unnecessary-lambda-assignment
  f32 = lambda v: g.const(v, dtype=np.float32)  # pylint: disable=unnecessary-lambda-assignment
  params = variables["params"]["rectifier"]
  stats = variables.get("batch_stats", {}).get("rectifier", {})
  num_points = model.rectifier_points
  bins = num_points // 2
  layers = len(model.rectifier_channels)
  # Localization network (as crnn.ConvStack: masked after every layer).
  valid = "widths"
  x = _masked(g, images, valid)
  for layer in range(layers):
    kernel, bias = _fold(params[f"conv{layer}"], params[f"bn{layer}"], stats[f"bn{layer}"])
    x = g.op("Conv", [x, g.const(np.transpose(kernel, (3, 2, 0, 1)), "rectifier_kernel"),
                      g.const(bias, "rectifier_bias")], prefix=f"rectifier_conv{layer}",
             kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = _masked(g, g.op("Relu", [x], prefix="rectifier_relu"), valid)
    if layer < layers - 1:
      x = g.op("MaxPool", [x], prefix="rectifier_pool", kernel_shape=[2, 2], strides=[2, 2])
      valid = g.op("Div", [valid, i32(2)], prefix="rectifier_valid")
      x = _masked(g, x, valid)
  # Column bins over each sample's valid columns (rectifier.bin_weights), mean over height.
  feats = g.op("ReduceMean", [x, i64([2])], prefix="rectifier_mean", keepdims=0)  # [B, C, W']
  feat_width = g.op("Gather", [g.op("Shape", [feats]), i64(2)], axis=0)
  cols = g.op("Unsqueeze", [g.op("Cast", [g.op("Range", [i64(0), feat_width, i64(1)])], to=6),
                            i64([0, 2])])  # [1, W', 1] int32
  v = g.op("Unsqueeze", [valid, i64([1, 2])])  # [B, 1, 1]
  n = np.arange(bins, dtype=np.int32).reshape(1, 1, bins)
  lo = g.op("Div", [g.op("Mul", [i32(n), v]), i32(bins)])
  hi = g.op("Div", [g.op("Add", [g.op("Mul", [i32(n + 1), v]), i32(bins - 1)]), i32(bins)])
  hi = g.op("Max", [hi, g.op("Add", [lo, i32(1)])])
  inside = g.op("And", [g.op("GreaterOrEqual", [cols, lo]), g.op("Less", [cols, hi])])
  weights = g.op("Div", [g.op("Cast", [inside], to=1),
                         g.op("Cast", [g.op("Sub", [hi, lo])], to=1)])  # [B, W', N]
  pooled = g.op("Transpose", [g.op("MatMul", [feats, weights])], perm=[0, 2, 1])  # [B, N, C]
  pooled = g.op("Reshape", [pooled, i64([0, -1])])

  def dense(x, name):
    return g.op("Add", [g.op("MatMul", [x, f32(np.asarray(params[name]["kernel"]))]),
                        f32(np.asarray(params[name]["bias"]))], prefix=f"rectifier_{name}")

  hidden = g.op("Relu", [dense(pooled, "hidden")])
  points = g.op("Reshape", [dense(hidden, "fiducials"), i64([0, num_points, 2])])
  # TPS coefficients of the displacements from the canonical points.
  canon = rectifier_lib.canonical_points(num_points)
  delta = g.op("Sub", [points, f32(canon[None])])
  coef = g.op("MatMul", [f32(rectifier_lib.tps_solver(canon)), delta])  # [B, K + 3, 2]

  def coef_rows(start, end):  # [B, end - start, 2]
    return g.op("Slice", [coef, i64([start]), i64([end]), i64([1])])

  # The grid: output pixel centres normalized to each image, the TPS displacement there.
  width = g.op("Gather", [g.op("Shape", [images]), i64(3)], axis=0)
  wi = g.op("Max", ["widths", i32(1)])  # [B]
  wf = g.op("Unsqueeze", [g.op("Cast", [wi], to=1), i64([1])])  # [B, 1]
  cols_f = g.op("Cast", [g.op("Range", [i64(0), width, i64(1)])], to=1)  # [W]
  xs = g.op("Sub", [g.op("Div", [g.op("Add", [g.op("Mul", [cols_f, f32(2.0)]), f32(1.0)]), wf]),
                    f32(1.0)])  # [B, W]
  rows = np.arange(height, dtype=np.float64)
  ys = (2.0 * rows + 1.0) / height - 1.0
  xs4 = g.op("Unsqueeze", [xs, i64([1, 3])])  # [B, 1, W, 1]
  dx = g.op("Sub", [xs4, f32(canon[:, 0].reshape(1, 1, 1, -1))])
  dy2 = ((ys[:, None] - canon[None, :, 1]) ** 2).reshape(1, height, 1, num_points)
  r2 = g.op("Add", [g.op("Mul", [dx, dx]), f32(dy2)])  # [B, H, W, K]
  kernel = g.op("Mul", [r2, g.op("Log", [g.op("Add", [
      g.op("Mul", [r2, f32(rectifier_lib.KERNEL_SCALE)]), f32(rectifier_lib.KERNEL_EPS)])])])
  weights_k = g.op("Unsqueeze", [coef_rows(3, 3 + num_points), i64([1])])  # [B, 1, K, 2]
  disp = g.op("MatMul", [kernel, weights_k])  # [B, H, W, 2]
  a0, a1, a2 = (g.op("Unsqueeze", [coef_rows(k, k + 1), i64([1])]) for k in range(3))
  disp = g.op("Add", [disp, a0])
  disp = g.op("Add", [disp, g.op("Mul", [xs4, a1])])
  disp = g.op("Add", [disp, g.op("Mul", [f32(ys.reshape(1, height, 1, 1)), a2])])
  disp_x = g.op("Gather", [disp, i64(0)], axis=3)  # [B, H, W]
  disp_y = g.op("Gather", [disp, i64(1)], axis=3)
  w3 = g.op("Unsqueeze", [wf, i64([2])])  # [B, 1, 1]
  px = g.op("Add", [g.op("Unsqueeze", [cols_f, i64([0, 1])]),
                    g.op("Mul", [g.op("Mul", [w3, f32(0.5)]), disp_x])])
  py = g.op("Add", [f32(rows.reshape(1, height, 1)), g.op("Mul", [disp_y, f32(0.5 * height)])])
  # Bilinear sampling, clamped to each sample's real columns and the rows.
  last_col = g.op("Sub", [g.op("Unsqueeze", [wi, i64([1, 2])]), i32(1)])  # [B, 1, 1] int32
  px = g.op("Min", [g.op("Max", [px, f32(0.0)]), g.op("Cast", [last_col], to=1)])
  py = g.op("Clip", [py, f32(0.0), f32(float(height - 1))])
  x0f, y0f = g.op("Floor", [px]), g.op("Floor", [py])
  fx, fy = g.op("Sub", [px, x0f]), g.op("Sub", [py, y0f])
  x0, y0 = g.op("Cast", [x0f], to=7), g.op("Cast", [y0f], to=7)
  x1 = g.op("Min", [g.op("Add", [x0, i64(1)]), g.op("Cast", [last_col], to=7)])
  y1 = g.op("Min", [g.op("Add", [y0, i64(1)]), i64(height - 1)])
  flat = g.op("Reshape", [images, i64([0, -1])])  # [B, H * W]
  grid_shape = g.op("Shape", [px])

  def pick(y, x):
    index = g.op("Add", [g.op("Mul", [y, width]), x])
    picked = g.op("GatherElements", [flat, g.op("Reshape", [index, i64([0, -1])])], axis=1,
                  prefix="rectifier_sample")
    return g.op("Reshape", [picked, grid_shape])

  one_x, one_y = g.op("Sub", [f32(1.0), fx]), g.op("Sub", [f32(1.0), fy])
  top = g.op("Add", [g.op("Mul", [one_x, pick(y0, x0)]), g.op("Mul", [fx, pick(y0, x1)])])
  bottom = g.op("Add", [g.op("Mul", [one_x, pick(y1, x0)]), g.op("Mul", [fx, pick(y1, x1)])])
  out = g.op("Add", [g.op("Mul", [one_y, top]), g.op("Mul", [fy, bottom])])
  return g.op("Unsqueeze", [out, i64([1])], prefix="rectifier_output")  # [B, 1, H, W]


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
    model: the CRNN (its layout: batch_norm_layout, lstm_layers, rectifier).
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
  if model.rectifier_module() is not None:
    x = _rectifier(g, model, variables, x, height)
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
