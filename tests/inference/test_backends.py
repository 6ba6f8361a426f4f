"""Tests for crnn_jax.inference.backends and images: the parts a Recognizer is made of."""

import numpy as np
import pytest

import crnn_jax
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.inference import backends
from crnn_jax.inference import images


def test_batch_shapes_bound_programs_for_xla_and_are_exact_for_onnxruntime():
  jax_backend = backends.JaxBackend(None, None, width_step=32)
  assert jax_backend.batch_shape(5, 33) == (8, 64) and jax_backend.compiles
  onnx_backend = backends.OnnxBackend(session=None)
  assert onnx_backend.batch_shape(5, 33) == (5, 33) and not onnx_backend.compiles
  with pytest.raises(ValueError, match="backend must be one of"):
    backends.make_backend("tflite", None, None)


def test_jax_backend_log_probs_are_the_models_log_softmax(tiny_workdir):
  recognizer = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="greedy")
  backend = recognizer.backend
  rng = np.random.default_rng(0)
  batch = rng.uniform(-1, 1, (2, 32, 64, 1)).astype(np.float32)
  widths = np.array([64, 40], np.int32)
  log_probs, lengths = backend.log_probs(batch, widths)
  logits, lengths2 = backend.model.apply(backend.variables, batch, widths, train=False)
  np.testing.assert_array_equal(lengths, lengths2)
  np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
  shift = log_probs - np.asarray(logits)  # log-softmax: the logits less one value per frame.
  np.testing.assert_allclose(shift, np.broadcast_to(shift[..., :1], shift.shape), atol=1e-4)
  ids, confidence = backend.best_paths(batch, widths)
  for row, length in enumerate(lengths):  # Frames past a sample's length are padding.
    np.testing.assert_array_equal(ids[row, :length], np.argmax(log_probs[row, :length], -1))
  assert confidence.shape == (2,)


def test_a_recognizer_is_its_parts(tiny_workdir):
  built = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="beam", beam_width=4)
  decoder = decoder_lib.build_decoder(built.charset, "beam", beam_width=4)
  composed = crnn_jax.Recognizer(built.backend, built.preprocessing, decoder)
  arrays = [built.preprocess(np.full((32, w), 200, np.uint8)) for w in (40, 90)]
  assert composed.recognize_preprocessed(arrays) == built.recognize_preprocessed(arrays)
  assert composed.charset is decoder.charset


def test_preprocessing_resizes_as_the_model_was_trained():
  fixed = images.Preprocessing(height=32, fixed_width=100)
  assert fixed.max_aspect_ratio == 2.5 * 100 / 32
  assert fixed.prepare(np.zeros((20, 300), np.uint8))[0].shape == (32, 100)
  assert images.Preprocessing(fixed_width=0).fixed_width is None  # 0: keep the ratio.
  keep = images.Preprocessing(height=32, max_width=64)
  array, size = keep.prepare(np.zeros((16, 300), np.uint8))
  assert array.shape == (32, 64) and size == (16, 300)


def test_build_decoder_defaults_per_charset():
  assert decoder_lib.build_decoder(Charset("abc")).name == "lm"  # English: the lm decoder.
  cjk = Charset("".join(chr(0x4E00 + i) for i in range(3)))
  assert decoder_lib.build_decoder(cjk).name == "greedy"
  assert decoder_lib.build_decoder(cjk, "beam", beam_width=3).beam_width == 3
