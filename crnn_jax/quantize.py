"""int8 ONNX models: static quantization calibrated on the model's own synthetic images.

  crnn-jax export --weights scene_en --format onnx --quantize int8 --output scene_en.int8.onnx

The float32 export (`crnn_jax.onnx_graph`) goes through onnxruntime's static quantizer in QDQ
form: the weights of the convolutions become int8, one scale per output channel, and their
inputs uint8 with ranges observed (min/max) on calibration images. The convolutions carry
almost all of the model's arithmetic; the first one (a single input channel, 1% of it) stays
float32, and so do the projections (MatMul): quantizing those cost accuracy on real crops and
saved no measurable time. The LSTMs, which onnxruntime cannot quantize statically, are then
quantized dynamically (`DynamicQuantizeLSTM`: int8 weights, inputs quantized per call), which
more than halves their time and the file size. Calibration images are
rendered by the training renderer with the model's own settings (`config.data.synthetic`, at
its augmentation level, e.g. the 'scene' level for scene_en), from a seed no training or
evaluation split uses, and preprocessed as in training (grayscale, height 32, the config's
fixed width or keep-ratio widths up to data.max_width, [-1, 1]); they are batched by width so
that keep-ratio models see their real width distribution.

7-bit weights (`reduce_range`, the default): on CPUs without AVX-512 VNNI onnxruntime's u8s8
kernels add pairs of products in 16 bits, which saturates with full-range weights; measured on
an AVX2 CPU, full-range int8 read 76.6% of IIIT5k-train against float32's 86.9%, 7-bit 86.9%
(README, "CPU deployment"). With VNNI, full-range weights (`reduce_range=False`) read as 7-bit
ones do and run a few percent faster; 7-bit files run correctly everywhere.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Iterator

import numpy as np

from crnn_jax.data import preprocess
from crnn_jax.data.charset import Charset

CALIBRATION_SEED = 9_000_001  # Not a train/eval/test seed of any shipped config.
QUANTIZED_OPS = ("Conv",)
FLOAT_NODES = ("conv0",)  # Node name prefixes kept in float32 (see the module docstring).
CALIBRATION_IMAGES = 1024


def calibration_batches(config, num_images: int = CALIBRATION_IMAGES, batch_size: int = 32,
                        seed: int = CALIBRATION_SEED) -> list[dict[str, np.ndarray]]:
  """Batches {'images' `[B, H, W, 1]` float32, 'widths' `[B]` int32} of rendered images.

  Args:
    config: the model's training config (its text, data.synthetic and resizing fields).
    num_images: how many images.
    batch_size: images per batch (grouped by width).
    seed: the renderer's seed.
  """
  from crnn_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  if num_images <= 0:
    raise ValueError(f"num_images must be positive, got {num_images}")
  charset = Charset.from_config(config.text)
  source = synthetic.source_from_config(config.data, charset, seed=seed, num_records=num_images)
  height = int(config.data.height)
  fixed_width = (int(config.data.fixed_width)
                 if config.data.get("resize", "keep_ratio") == "fixed" else None)
  max_width = int(config.data.get("max_width", 256))
  from crnn_jax import progress  # pylint: disable=g-import-not-at-top
  arrays = []
  for i in progress.bar(range(num_images), desc="rendering calibration images"):
    gray = preprocess.to_grayscale(source[i]["image"])
    resized = preprocess.resize(gray, height=height, fixed_width=fixed_width,
                                max_width=max_width)
    arrays.append(preprocess.normalize(resized))
  arrays.sort(key=lambda a: a.shape[1])
  batches = []
  for start in range(0, len(arrays), batch_size):
    chunk = arrays[start:start + batch_size]
    width = max(a.shape[1] for a in chunk)
    batches.append({"images": preprocess.pad_to_width(chunk, width),
                    "widths": np.array([a.shape[1] for a in chunk], np.int32)})
  return batches


class _Reader:
  """onnxruntime's CalibrationDataReader protocol over a list of feed dicts."""

  def __init__(self, batches: list[dict[str, np.ndarray]]):
    self._batches = batches
    self._iterator: Iterator[dict[str, np.ndarray]] = iter(batches)

  def get_next(self) -> dict[str, np.ndarray] | None:
    return next(self._iterator, None)

  def rewind(self) -> None:
    self._iterator = iter(self._batches)


def quantize_int8(proto, batches: list[dict[str, np.ndarray]], *, reduce_range: bool = True,
                  per_channel: bool = True):
  """A statically quantized (QDQ) copy of a float32 crnn-jax ONNX model.

  Args:
    proto: the float32 `onnx.ModelProto` (from `export.export_onnx`; its metadata is kept).
    batches: calibration feeds (`calibration_batches`).
    reduce_range: 7-bit weights (see the module docstring).
    per_channel: one weight scale per output channel.

  Returns:
    The int8 `onnx.ModelProto`.
  """
  import onnx  # pylint: disable=g-import-not-at-top
  try:
    from onnxruntime import quantization  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("int8 export needs onnxruntime: pip install 'crnn-jax[export]' "
                      f"({e})") from None
  with tempfile.TemporaryDirectory(prefix="crnn_jax_quantize_") as tmp:
    source, target = os.path.join(tmp, "float32.onnx"), os.path.join(tmp, "int8.onnx")
    onnx.save(proto, source)
    keep_float = [node.name for node in proto.graph.node
                  if node.name.startswith(tuple(f"{prefix}_" for prefix in FLOAT_NODES))]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # Its advice to run its pre-processing, on root, each time.
    try:
      quantization.quantize_static(
          source, target, _Reader(batches), quant_format=quantization.QuantFormat.QDQ,
          op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep_float,
          per_channel=per_channel, reduce_range=reduce_range,
          activation_type=quantization.QuantType.QUInt8,
          weight_type=quantization.QuantType.QInt8,
          calibrate_method=quantization.CalibrationMethod.MinMax)
      lstm_target = os.path.join(tmp, "int8_lstm.onnx")
      quantization.quantize_dynamic(target, lstm_target, op_types_to_quantize=["LSTM"],
                                    reduce_range=reduce_range,
                                    weight_type=quantization.QuantType.QInt8)
    finally:
      root.setLevel(level)
    quantized = onnx.load(lstm_target)
  del quantized.metadata_props[:]
  for prop in proto.metadata_props:
    quantized.metadata_props.add(key=prop.key, value=prop.value)
  quantized.metadata_props.add(key="crnn_jax.quantization",
                               value=f"int8: static QDQ {', '.join(QUANTIZED_OPS)}, dynamic "
                               f"LSTM; "
                               f"{'7' if reduce_range else '8'}-bit weights), calibrated on "
                               f"{sum(len(b['widths']) for b in batches)} synthetic images")
  return quantized
