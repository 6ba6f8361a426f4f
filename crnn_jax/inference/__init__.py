"""Inference with a trained model: `Recognizer` loads a checkpoint, shipped weights or an ONNX
file and reads images (usage: the docstring of `recognizer.py`).

A Recognizer is made of parts, one module each:

* `images`: reading image files and uploads (`load_image`, `expand_inputs`) and the model's
  preprocessing (`Preprocessing`: height, resizing, widest input);
* `backends`: what runs the model, `JaxBackend` (XLA) or `OnnxBackend` (onnxruntime), behind one
  interface (`Backend.log_probs`, `Backend.best_paths`), and the compilation cache;
* `recognizer`: `Recognizer(backend, preprocessing, decoder, calibration)`, which batches
  images by width, runs the backend and decodes with a `crnn_jax.decoding.decoder.Decoder`,
  and what it returns (`Prediction`, `CharSpan`).
"""

from crnn_jax.inference.backends import BACKENDS, enable_compilation_cache
from crnn_jax.inference.images import (IMAGE_ERROR_REASONS, IMAGE_SUFFIXES, TOO_WIDE_FACTOR,
                                       ImageError, Preprocessing, TooWideWarning,
                                       expand_inputs, load_image)
from crnn_jax.inference.recognizer import CharSpan, Prediction, Recognizer

__all__ = ["BACKENDS", "IMAGE_ERROR_REASONS", "IMAGE_SUFFIXES", "TOO_WIDE_FACTOR", "CharSpan",
           "ImageError", "Prediction", "Preprocessing", "Recognizer", "TooWideWarning",
           "enable_compilation_cache", "expand_inputs", "load_image"]
