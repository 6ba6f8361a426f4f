"""Tests for crnn_jax.onnx_backend: the Recognizer's onnxruntime backend reads what JAX reads."""

import os
import pathlib

import numpy as np
import pytest

import deploy_helpers
import crnn_jax
from crnn_jax import cli, inference, onnx_backend
from crnn_jax.text.charset import Charset

pytestmark = pytest.mark.filterwarnings("ignore::crnn_jax.inference.TooWideWarning")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_file(tiny_workdir, tmp_path_factory):
  path = tmp_path_factory.mktemp("onnx_file") / "crnn.onnx"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx", "--output",
                   str(path)]) == 0
  return path


def _images():
  return deploy_helpers.text_images(7, [9, 40, 77, 100, 131, 260], height=32) + \
      deploy_helpers.text_images(8, [50, 190], height=48)


def _assert_same_predictions(ours, theirs):
  assert [p.text for p in ours] == [p.text for p in theirs]
  assert any(p.text for p in ours)  # The random model reads something.
  for a, b in zip(ours, theirs):
    assert a.confidence == pytest.approx(b.confidence, rel=1e-3, abs=1e-6)
    assert a.path == b.path and a.spans == b.spans
    assert (a.model_width, a.input_width, a.too_wide) == (b.model_width, b.input_width,
                                                          b.too_wide)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_onnxruntime_backend_predicts_what_jax_predicts(tiny_workdir, tmp_path, decoder):
  images = _images()
  jax_rec = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder=decoder)
  ort_rec = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder=decoder,
                                                backend="onnxruntime",
                                                compilation_cache=tmp_path / "cache",
                                                threads=1)
  assert ort_rec.backend.name == "onnxruntime" and ort_rec.backend.session is not None
  # One padded batch, and (greedy) batches of different widths.
  for batch_size in (64, 3) if decoder == "greedy" else (64,):
    _assert_same_predictions(ort_rec.recognize(images, batch_size=batch_size),
                             jax_rec.recognize(images, batch_size=batch_size))


def test_model_built_on_the_fly_is_cached_and_keyed_by_weights(tiny_workdir, tmp_path):
  cache = tmp_path / "cache"
  first = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, backend="onnxruntime",
                                              compilation_cache=cache)
  files = sorted(cache.glob("crnn_*.onnx"))
  assert len(files) == 1
  stamp = os.stat(files[0]).st_mtime_ns
  second = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, backend="onnxruntime",
                                               compilation_cache=cache)
  assert sorted(cache.glob("crnn_*.onnx")) == files and os.stat(files[0]).st_mtime_ns == stamp
  images = _images()
  assert [p.text for p in first.recognize(images)] == [p.text for p in second.recognize(images)]
  other = deploy_helpers.make_workdir(tmp_path / "other", seed=9)
  crnn_jax.Recognizer.from_checkpoint(other, backend="onnxruntime", compilation_cache=cache)
  assert len(list(cache.glob("crnn_*.onnx"))) == 2  # Other weights, another file.


def test_from_onnx_reads_charset_and_resizing_from_the_file(tiny_workdir, onnx_file):
  rec = crnn_jax.Recognizer.from_onnx(onnx_file, threads=1)
  reference = crnn_jax.Recognizer.from_checkpoint(tiny_workdir)
  assert rec.backend.model is None and rec.charset.chars == reference.charset.chars
  assert rec.preprocessing == reference.preprocessing and rec.preprocessing.height == 32
  _assert_same_predictions(rec.recognize(_images()), reference.recognize(_images()))


def test_from_onnx_of_a_fixed_width_model(tmp_path):
  config = deploy_helpers.tiny_config(resize="fixed")
  workdir = deploy_helpers.make_workdir(tmp_path / "fixed", seed=2, config=config)
  path = tmp_path / "fixed.onnx"
  assert cli.main(["export", "--checkpoint", str(workdir), "--format", "onnx", "--output",
                   str(path)]) == 0
  rec = crnn_jax.Recognizer.from_onnx(path)
  assert rec.preprocessing.fixed_width == 100
  _assert_same_predictions(rec.recognize(_images()),
                           crnn_jax.Recognizer.from_checkpoint(workdir).recognize(_images()))


def test_bad_backend_and_files_are_named(tmp_path):
  import onnx  # pylint: disable=import-outside-toplevel
  with pytest.raises(ValueError, match="backend must be one of"):
    crnn_jax.Recognizer.from_model(None, None, Charset("ab"), backend="tflite")
  garbage = tmp_path / "garbage.onnx"
  garbage.write_bytes(b"not a model")
  with pytest.raises(ValueError, match="garbage.onnx: cannot load"):
    crnn_jax.Recognizer.from_onnx(garbage)
  graph = onnx.helper.make_graph(
      [onnx.helper.make_node("Identity", ["x"], ["y"])], "g",
      [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
      [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
  other = tmp_path / "other.onnx"
  model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 21)])
  model.ir_version = 10
  onnx.save(model, other)
  with pytest.raises(ValueError, match="other.onnx: not a crnn-jax export"):
    crnn_jax.Recognizer.from_onnx(other)


def test_settings_need_crnn_jax_metadata():
  with pytest.raises(ValueError, match="crnn_jax.resize"):
    onnx_backend.recognizer_settings({})


def test_predict_cli_backends_agree(tiny_workdir, onnx_file, tmp_path, capsys):
  from PIL import Image  # pylint: disable=import-outside-toplevel
  for i, image in enumerate(_images()):
    Image.fromarray(image).save(tmp_path / f"{i}.png")
  outputs = {}
  for name, flags in (("jax", ["--checkpoint", str(tiny_workdir)]),
                      ("ort", ["--checkpoint", str(tiny_workdir), "--backend", "onnxruntime"]),
                      ("file", ["--onnx", str(onnx_file), "--threads", "1"])):
    assert cli.main(["predict", str(tmp_path), "--quiet"] + flags) == 0
    outputs[name] = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
  assert outputs["jax"] == outputs["ort"] == outputs["file"] and len(outputs["jax"]) == 8
  assert cli.main(["predict", str(tmp_path), "--onnx", str(onnx_file), "--checkpoint",
                   str(tiny_workdir)]) == 2
  assert "leave out --checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_model_reads_the_held_out_set_the_same_on_both_backends():
  paths = inference.expand_inputs([pathlib.Path(__file__).resolve().parents[1] / "testdata" / "heldout_en"])
  assert len(paths) == 600
  jax_texts = [p.text for p in crnn_jax.Recognizer.from_pretrained().recognize(paths)]
  ort = crnn_jax.Recognizer.from_pretrained(backend="onnxruntime", compilation_cache=False)
  ort_texts = [p.text for p in ort.recognize(paths)]
  assert ort_texts == jax_texts
  assert np.mean([t != "" for t in jax_texts]) > 0.95
