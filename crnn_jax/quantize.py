"""int8 ONNX models: static quantization calibrated on rendered images or your own.

  crnn-jax export --weights scene_en --format onnx --quantize int8 --output scene_en.int8.onnx
  crnn-jax export --weights scene_en --format onnx --quantize int8 --output scene_en.int8.onnx \
      --calibration-data my_crops/

The float32 export (`crnn_jax.onnx_graph`) goes through onnxruntime's static quantizer in QDQ
form: the weights of the convolutions become int8, one scale per output channel, and their
inputs uint8 with ranges observed (min/max) on calibration images. The convolutions carry
almost all of the model's arithmetic; the first one (a single input channel, 1% of it) stays
float32, and so do the projections (MatMul): quantizing those cost accuracy on real crops and
saved no measurable time. The LSTMs, which onnxruntime cannot quantize statically, are then
quantized dynamically (`DynamicQuantizeLSTM`: int8 weights, inputs quantized per call), which
more than halves their time and the file size. A TPS rectifier's nodes (`rectifier_*`) stay
float32: they are a few percent of the arithmetic, and its sampling positions move with any
error in its fiducial points.

Calibration images (`calibration_batches`) come from one of three places:

* by default, the renderer with the model's text mix and resizing but only what every install
  has (`portable_data_config`): the 'standard' font pool (matplotlib's DejaVu and the font-*
  packages crnn-jax depends on) at the 'strong' print level, from a seed no training or
  evaluation split uses. The activation ranges only need images like the model's inputs, and
  these need no font package, Debian font or extra (the model's own 'scene' level would need
  the 'scene' extra and, for scene_en, 43 Debian font packages);
* `data='renderer'`: the model's own renderer settings (`config.data.synthetic`, e.g. the
  'scene' level and 'signage' pool for scene_en), as before 2026-12;
* a directory: the user's own images (any format Pillow reads, searched recursively), e.g.
  crops of the deployment's data; at most `num_images` of them, evenly spread over the
  sorted file list.

All are preprocessed as in training (grayscale, height 32, the config's fixed width or
keep-ratio widths up to data.max_width, [-1, 1]) and batched by width, so that keep-ratio
models see their real width distribution. Mixed Chinese/English models (text 'zh_en') render
with their own settings by default: the standard pool has no CJK glyphs.

7-bit weights (`reduce_range`, the default): on CPUs without AVX-512 VNNI onnxruntime's u8s8
kernels add pairs of products in 16 bits, which saturates with full-range weights; measured on
an AVX2 CPU, full-range int8 read 76.6% of IIIT5k-train against float32's 86.9%, 7-bit 86.9%
(docs/benchmarks.md, "CPU deployment"). With VNNI, full-range weights (`reduce_range=False`) read as 7-bit
ones do and run a few percent faster; 7-bit files run correctly everywhere.
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
from typing import Iterator, Sequence

import numpy as np

from crnn_jax.data import preprocess
from crnn_jax.text.charset import Charset

CALIBRATION_SEED = 9_000_001  # Not a train/eval/test seed of any shipped config.
QUANTIZED_OPS = ("Conv",)
FLOAT_NODES = ("conv0", "rectifier")  # Node name prefixes kept in float32 (see above).
CALIBRATION_IMAGES = 1024
RENDERER = "renderer"  # `calibration_batches(data=RENDERER)`: the model's own renderer.


def portable_data_config(data_config):
  """`config.data` with a renderer that needs only crnn-jax's core dependencies.

  The 'standard' font pool, no extra font directory, and the 'strong' print level in place of
  the 'scene' level (which needs the 'scene' extra); text mix, resizing and everything else are
  the model's. Configs of other text kinds than 'en' are returned unchanged (see the module
  docstring).
  """
  synthetic = data_config.synthetic
  if synthetic.get("text", "en") != "en":
    return data_config
  data_config = data_config.copy_and_resolve_references()
  synthetic = data_config.synthetic
  synthetic.font_pool = "standard"
  synthetic.fonts_dir = ""
  if synthetic.augment == "scene":
    synthetic.augment = "strong"
  if "scene_params" in synthetic:
    synthetic.scene_params = {}
  if "backgrounds_dir" in synthetic:
    synthetic.backgrounds_dir = ""
  return data_config


def _preprocess(config, images) -> list[np.ndarray]:
  """Images (arrays or paths) preprocessed as in training: float32 `[H, W]` in [-1, 1]."""
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top
  from crnn_jax import progress  # pylint: disable=g-import-not-at-top
  height = int(config.data.height)
  fixed_width = (int(config.data.fixed_width)
                 if config.data.get("resize", "keep_ratio") == "fixed" else None)
  max_width = int(config.data.get("max_width", 256))
  arrays = []
  for image in progress.bar(images, desc="calibration images"):
    if isinstance(image, (str, pathlib.Path)):
      image = inference.load_image(image)
    gray = preprocess.to_grayscale(image)
    resized = preprocess.resize(gray, height=height, fixed_width=fixed_width,
                                max_width=max_width)
    arrays.append(preprocess.normalize(resized))
  return arrays


def calibration_files(directory: str | pathlib.Path, num_images: int) -> list[pathlib.Path]:
  """At most `num_images` image files of a directory (recursive, by suffix), evenly spread
  over the sorted list.

  Raises:
    FileNotFoundError: no such directory.
    ValueError: it is not a directory, or holds no image file.
  """
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top
  directory = pathlib.Path(directory).expanduser()
  if not directory.exists():
    raise FileNotFoundError(f"calibration data {directory} does not exist")
  if not directory.is_dir():
    raise ValueError(f"calibration data {directory} is not a directory of images")
  files = inference.expand_inputs([directory])
  if not files:
    raise ValueError(f"calibration data {directory} holds no image file (searched recursively "
                     f"for {', '.join(inference.IMAGE_SUFFIXES)})")
  if len(files) > num_images:
    picked = np.unique(np.linspace(0, len(files) - 1, num_images).round().astype(int))
    files = [files[i] for i in picked]
  return files


def calibration_batches(config, num_images: int = CALIBRATION_IMAGES, batch_size: int = 32,
                        seed: int = CALIBRATION_SEED,
                        data: str | pathlib.Path | None = None) -> list[dict[str, np.ndarray]]:
  """Batches {'images' `[B, H, W, 1]` float32, 'widths' `[B]` int32} of calibration images.

  Args:
    config: the model's training config (its text, data.synthetic and resizing fields).
    num_images: how many images (a directory may hold fewer: all of them are used).
    batch_size: images per batch (grouped by width).
    seed: the renderer's seed.
    data: None: images rendered with `portable_data_config`; RENDERER: with the model's own
      renderer settings; else a directory of images (`calibration_files`).

  Raises:
    ValueError, FileNotFoundError: a bad count or directory, or an image that cannot be read
      (named).
  """
  if num_images <= 0:
    raise ValueError(f"num_images must be positive, got {num_images}")
  if data is not None and str(data) != RENDERER:
    arrays = _preprocess(config, calibration_files(data, num_images))
  else:
    from crnn_jax.synth import sources as synthetic_sources  # pylint: disable=g-import-not-at-top
    data_config = config.data if data is not None else portable_data_config(config.data)
    source = synthetic_sources.source_from_config(data_config, Charset.from_config(config.text),
                                                  seed=seed, num_records=num_images)
    arrays = _preprocess(config, (source[i]["image"] for i in range(num_images)))
  return batch_by_width(arrays, batch_size)


def describe(data: str | pathlib.Path | None, batches: Sequence[dict[str, np.ndarray]]) -> str:
  """What `calibration_batches(..., data=data)` calibrated on, for the model's metadata."""
  count = sum(len(b["widths"]) for b in batches)
  if data is None:
    return f"{count} synthetic images (standard font pool, model's text mix)"
  if str(data) == RENDERER:
    return f"{count} synthetic images (the model's own renderer settings)"
  return f"{count} images of {pathlib.Path(data).name or data}"


def batch_by_width(arrays: list[np.ndarray], batch_size: int) -> list[dict[str, np.ndarray]]:
  """Preprocessed `[H, W]` arrays sorted by width and padded into feeds of `batch_size`."""
  arrays = sorted(arrays, key=lambda a: a.shape[1])
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
                  per_channel: bool = True, calibrated_on: str = ""):
  """A statically quantized (QDQ) copy of a float32 crnn-jax ONNX model.

  Args:
    proto: the float32 `onnx.ModelProto` (from `export.export_onnx`; its metadata is kept).
    batches: calibration feeds (`calibration_batches`).
    reduce_range: 7-bit weights (see the module docstring).
    per_channel: one weight scale per output channel.
    calibrated_on: what the batches are (`describe`), for the metadata.

  Returns:
    The int8 `onnx.ModelProto`.

  Raises:
    ImportError: onnx or onnxruntime is missing, with the command that installs them.
  """
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    from onnxruntime import quantization  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("int8 export needs onnx and onnxruntime: pip install 'crnn-jax[export]' "
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
                               + (calibrated_on or f"{sum(len(b['widths']) for b in batches)} "
                                  "images"))
  return quantized
