"""Tests for crnn_jax.quantize: int8 models calibrated on the renderer, close to float32."""

import json

import numpy as np
import pytest

import deploy_helpers
import crnn_jax
from crnn_jax import cli, quantize

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _config(resize="keep_ratio"):
  config = deploy_helpers.tiny_config(resize=resize)
  config.data.synthetic.augment = "light"
  config.data.synthetic.max_length = 8
  return config


@pytest.mark.parametrize("resize", ["keep_ratio", "fixed"])
def test_calibration_batches_are_preprocessed_as_in_training(resize):
  config = _config(resize)
  batches = quantize.calibration_batches(config, num_images=40, batch_size=16)
  assert [len(b["widths"]) for b in batches] == [16, 16, 8]
  for batch in batches:
    images, widths = batch["images"], batch["widths"]
    assert images.dtype == np.float32 and images.shape[1:] == (32, images.shape[2], 1)
    assert images.shape[2] == widths.max() and widths.dtype == np.int32
    assert -1.0 <= images.min() and images.max() <= 1.0
    if resize == "fixed":
      assert set(widths) == {100}
  if resize == "keep_ratio":  # Sorted by width: narrow batches first, and a real spread.
    assert batches[0]["widths"].max() <= batches[-1]["widths"].min()
    assert batches[-1]["widths"].max() > 2 * batches[0]["widths"].min()
  with pytest.raises(ValueError, match="num_images"):
    quantize.calibration_batches(config, num_images=0)


def test_int8_export_quantizes_the_convolutions_and_stays_close(tmp_path):
  config = _config()
  workdir = deploy_helpers.make_workdir(tmp_path / "run", seed=6, config=config)
  float_path, int8_path = tmp_path / "f32.onnx", tmp_path / "int8.onnx"
  assert cli.main(["export", "--checkpoint", str(workdir), "--format", "onnx", "--output",
                   str(float_path)]) == 0
  assert cli.main(["export", "--checkpoint", str(workdir), "--format", "onnx", "--quantize",
                   "int8", "--calibration-images", "64", "--output", str(int8_path)]) == 0
  model = onnx.load(str(int8_path))
  ops = [n.op_type for n in model.graph.node]
  assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
  assert ops.count("DynamicQuantizeLSTM") == 2 and "LSTM" not in ops
  int8_weights = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8}
  quantized = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
  # Conv weights enter through DequantizeLinear of an int8 constant, except conv0's.
  dequantized = {n.output[0]: n.input[0] for n in model.graph.node
                 if n.op_type == "DequantizeLinear"}
  from_int8 = {w for w in quantized if dequantized.get(w) in int8_weights}
  assert len(from_int8) == 6 and not any(w.startswith("conv0") for w in quantized - from_int8
                                         if w in dequantized)
  meta = {p.key: p.value for p in model.metadata_props}
  assert "int8" in meta["crnn_jax.quantization"] and "64 synthetic images" in \
      meta["crnn_jax.quantization"]
  assert json.loads(meta["crnn_jax.charset"]) == config.text.charset
  # The six quantized kernels are stored in a quarter of their float32 bytes.
  sizes = {t.name: len(t.raw_data) for t in model.graph.initializer}
  float_model = onnx.load(str(float_path))
  float_sizes = {t.name: len(t.raw_data) for t in float_model.graph.initializer}
  pairs = zip([n for n in model.graph.node if n.op_type == "Conv"],
              [n for n in float_model.graph.node if n.op_type == "Conv"])
  pairs = [(a.input[1], b.input[1]) for a, b in pairs if a.input[1] in from_int8]
  assert len(pairs) == 6
  assert all(sizes[dequantized[a]] * 4 == float_sizes[b] for a, b in pairs)
  # Logits close to float32's on images of the renderer (not the calibration ones).
  f32 = crnn_jax.Recognizer.from_onnx(float_path)
  int8 = crnn_jax.Recognizer.from_onnx(int8_path)
  batch = quantize.calibration_batches(config, num_images=32, seed=123)[0]
  a, lengths = f32.backend.session.logits(batch["images"], batch["widths"])
  b, _ = int8.backend.session.logits(batch["images"], batch["widths"])
  real = np.arange(a.shape[1])[None, :] < lengths[:, None]
  error = np.abs(a - b)[real].mean() / np.abs(a)[real].mean()
  agree = np.mean(a.argmax(-1)[real] == b.argmax(-1)[real])
  # A random tiny model (8-16 channels) is far harder to quantize than a trained one; real
  # models are measured in benchmarks/real_crops.py (README: CPU deployment).
  assert error < 0.3 and agree > 0.7, (error, agree)


def test_quantize_is_for_onnx_only(tiny_workdir, tmp_path, capsys):
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "stablehlo",
                   "--quantize", "int8", "--output", str(tmp_path / "x")]) == 2
  assert "--quantize int8 is for --format onnx" in capsys.readouterr().err


@pytest.fixture
def bare_install(monkeypatch):
  """Fonts as after `pip install crnn-jax` alone: no fontpkg-* package, no Debian font."""
  from crnn_jax.synth import fonts  # pylint: disable=g-import-not-at-top
  extra = set(fonts._pypi_font_packages("signage"))  # pylint: disable=protected-access
  real = fonts._package_dir  # pylint: disable=protected-access
  monkeypatch.setattr(fonts, "_package_dir", lambda name: None if name in extra else real(name))
  monkeypatch.setattr(fonts, "_debian_package_fonts", lambda patterns: [])
  fonts._discover.cache_clear()  # pylint: disable=protected-access
  yield
  fonts._discover.cache_clear()  # pylint: disable=protected-access


def _scene_config():
  """A model trained on the scene level with the signage pool, as scene_en is."""
  config = _config()
  config.data.synthetic.augment = "scene"
  config.data.synthetic.font_pool = "signage"
  config.data.synthetic.scene_params = {"bevel_prob": 0.2}
  return config


def test_default_calibration_renders_with_what_every_install_has(bare_install):
  config = _scene_config()
  portable = quantize.portable_data_config(config.data)
  assert (portable.synthetic.font_pool, portable.synthetic.augment) == ("standard", "strong")
  assert not portable.synthetic.scene_params and config.data.synthetic.augment == "scene"
  assert portable.synthetic.word_fraction == config.data.synthetic.word_fraction  # Text mix.
  batches = quantize.calibration_batches(config, num_images=12, batch_size=8)
  assert sum(len(b["widths"]) for b in batches) == 12
  assert quantize.describe(None, batches).startswith("12 synthetic images")
  with pytest.raises(ModuleNotFoundError, match="crnn-jax\\[fonts\\]"):  # The old default.
    quantize.calibration_batches(config, num_images=4, data=quantize.RENDERER)


def test_calibration_on_a_directory_of_images(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  config = _config()
  images = tmp_path / "crops"
  (images / "more").mkdir(parents=True)
  widths = [40, 120, 75, 200, 64]
  for i, (width, image) in enumerate(zip(widths, deploy_helpers.text_images(1, widths,
                                                                             height=48))):
    Image.fromarray(image).save(images / ("more" if i % 2 else "") / f"{i}.png")
  (images / "notes.txt").write_text("not an image")
  batches = quantize.calibration_batches(config, num_images=10, batch_size=4, data=images)
  got = sorted(w for b in batches for w in b["widths"])
  assert got == sorted(round(w * 32 / 48) for w in widths)  # Keep-ratio, height 32.
  assert quantize.describe(images, batches) == "5 images of crops"
  assert len(quantize.calibration_files(images, 3)) == 3
  with pytest.raises(FileNotFoundError, match="missing does not exist"):
    quantize.calibration_batches(config, data=tmp_path / "missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="empty holds no image file"):
    quantize.calibration_batches(config, data=tmp_path / "empty")
  (images / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  with pytest.raises(ValueError, match="bad.png: cannot read image"):
    quantize.calibration_batches(config, num_images=10, data=images)


def test_int8_export_with_calibration_data(tiny_workdir, tmp_path, capsys):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  crops = tmp_path / "my_crops"
  crops.mkdir()
  for i, image in enumerate(deploy_helpers.text_images(2, [50, 90, 130, 170])):
    Image.fromarray(image).save(crops / f"{i}.jpg")
  out = tmp_path / "int8.onnx"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx",
                   "--quantize", "int8", "--calibration-data", str(crops),
                   "--output", str(out)]) == 0
  meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
  assert meta["crnn_jax.quantization"].endswith("calibrated on 4 images of my_crops")
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx",
                   "--calibration-data", str(crops), "--output", str(out)]) == 2
  assert "--calibration-data is for --quantize int8" in capsys.readouterr().err
