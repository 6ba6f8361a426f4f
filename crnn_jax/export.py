"""Exporting a trained CRNN: ONNX (native operators) and serialized StableHLO (jax.export).

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

ONNX. `crnn_jax.onnx_graph` writes the model as native ONNX operators (Conv with BatchNorm
folded in, MaxPool, one bidirectional LSTM node per BiLSTM with `sequence_lens`, MatMul), built
with the `onnx` package from the weights, so that runtimes use their own kernels for each layer;
tests/test_export.py checks its logits against the flax model (relative 1e-4) and that padding
does not change them. The charset and the input/output conventions are stored in the model's
metadata_props. `crnn-jax export --format onnx --quantize int8` writes a statically quantized
copy (see `crnn_jax.quantize`). Weights with a calibration.json (the shipped models) carry their
confidence maps along as `crnn_jax.calibration` (JSON), which `Recognizer.from_onnx` applies.

StableHLO. `jax.export` of the flax model itself, with symbolic batch and width
(constraint W >= 8), serialized with `Exported.serialize()`. Loading needs only JAX:

  exported = jax.export.deserialize(bytearray(open("crnn.stablehlo", "rb").read()))
  logits, lengths = exported.call(images, widths)

The charset and conventions are written next to it as JSON (`crnn.stablehlo.json`).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any


import jax
import jax.numpy as jnp

from crnn_jax.data import preprocess
from crnn_jax.models import crnn

FORMATS = ("onnx", "stablehlo")
MIN_WIDTH = preprocess.MIN_WIDTH  # The narrowest input, as resizing makes it.


def metadata(charset, height: int, fold_case: bool, *, resize: str = "keep_ratio",
             fixed_width: int = 0, max_width: int = preprocess.DEFAULT_MAX_WIDTH) -> dict[str, str]:
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
    ImportError: onnx is not installed (`pip install crnn-jax[export]`).
  """
  try:
    import onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"ONNX export needs onnx: pip install 'crnn-jax[export]' ({e})") from None
  from crnn_jax import onnx_graph  # pylint: disable=g-import-not-at-top
  proto = onnx_graph.build_model(model, variables, height=height, opset=opset)
  del proto.metadata_props[:]
  for key, value in metadata(charset, height, fold_case, resize=resize,
                             fixed_width=fixed_width).items():
    proto.metadata_props.add(key=key, value=value)
  proto.doc_string = "CRNN text recognizer exported by crnn-jax (see crnn_jax/export.py)"
  onnx.checker.check_model(proto)
  return proto


QUANTIZE_MODES = ("none", "int8")
CALIBRATION_KEY = "crnn_jax.calibration"  # Metadata: the confidence maps, as calibration.json.


def export_checkpoint(workdir, fmt: str, output, step: int | None = None,
                      opset: int = 21, **onnx_options) -> pathlib.Path:
  """Exports a training workdir's checkpoint to `output`.

  Args:
    workdir: the training workdir (config.json, checkpoints/).
    fmt: 'onnx' or 'stablehlo'.
    output: the file to write (StableHLO also writes `output + '.json'` with the metadata).
    step: the checkpoint step (default: latest).
    opset: ONNX opset.
    **onnx_options: `quantize`, `calibration_images`, `reduce_range`, `calibration_data` (see
      `export_variables`).

  Returns:
    The written path.
  """
  from crnn_jax import run_files  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  loaded = run_files.load_model(workdir, step)
  return export_variables(loaded.config, loaded.variables, fmt, output, opset, **onnx_options)


def export_weights(name_or_dir, fmt: str, output, opset: int = 21,
                   **onnx_options) -> pathlib.Path:
  """Exports a shipped model (`pretrained.available()`) or a weights directory to `output`.

  Arguments and result as `export_checkpoint`; the weights are exported in float32, with the
  directory's confidence maps (calibration.json) in the metadata.
  """
  from crnn_jax import calibration as calibration_lib  # pylint: disable=g-import-not-at-top
  from crnn_jax import pretrained  # pylint: disable=g-import-not-at-top
  from crnn_jax import run_files  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  loaded = run_files.load_model(weights=name_or_dir)
  onnx_options.setdefault("calibration", calibration_lib.load_for(pretrained.resolve(name_or_dir)))
  return export_variables(loaded.config, loaded.variables, fmt, output, opset, **onnx_options)


def export_variables(config, variables, fmt: str, output, opset: int = 21, *,
                     quantize: str = "none", calibration_images: int = 1024,
                     reduce_range: bool = True,
                     calibration_data: str | pathlib.Path | None = None,
                     calibration=None) -> pathlib.Path:
  """Exports a model given by its training config and variables (see `export_checkpoint`).

  Args:
    config, variables: the model.
    fmt, output, opset: as `export_checkpoint`.
    quantize: ONNX only: 'int8' writes a statically quantized model (`crnn_jax.quantize`),
      calibrated on `calibration_images` images (`calibration_data`).
    calibration_images: see `quantize`.
    reduce_range: int8 with 7-bit weights (see `crnn_jax.quantize`).
    calibration_data: None: images rendered with fonts every install has; 'renderer': the
      model's own renderer settings; else a directory of the user's images (see
      `quantize.calibration_batches`).
    calibration: the model's confidence maps (`crnn_jax.calibration.Calibration`), stored in
      the metadata as `crnn_jax.calibration` (None: none).
  """
  from crnn_jax.text.charset import Charset  # pylint: disable=g-import-not-at-top

  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  if quantize not in QUANTIZE_MODES:
    raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
  if quantize != "none" and fmt != "onnx":
    raise ValueError(f"quantize={quantize!r} is for the onnx format, not {fmt!r}")
  from crnn_jax import run_files  # pylint: disable=g-import-not-at-top

  charset = Charset.from_config(config.text)
  model = run_files.build_module(config)
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
    if calibration is not None:
      meta[CALIBRATION_KEY] = json.dumps(calibration.to_dict())
    pathlib.Path(str(output) + ".json").write_text(json.dumps(meta, indent=2,
                                                              ensure_ascii=False) + "\n")
  else:
    proto = export_onnx(model, variables, charset, height=height,
                        fold_case=bool(config.text.fold_case), opset=opset, **resize)
    if calibration is not None:  # Kept by the int8 copy, which copies the metadata.
      proto.metadata_props.add(key=CALIBRATION_KEY, value=json.dumps(calibration.to_dict()))
    if quantize == "int8":
      from crnn_jax import quantize as quantize_lib  # pylint: disable=g-import-not-at-top
      batches = quantize_lib.calibration_batches(config, calibration_images,
                                                 data=calibration_data)
      proto = quantize_lib.quantize_int8(
          proto, batches, reduce_range=reduce_range,
          calibrated_on=quantize_lib.describe(calibration_data, batches))
    output.write_bytes(proto.SerializeToString())
  return output

