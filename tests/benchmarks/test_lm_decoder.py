"""Tests of benchmarks/lm_decoder.py: log-probabilities per folder and protocol accuracy."""

import numpy as np
import pytest
from PIL import Image

import crnn_jax
from crnn_jax.decoding import greedy
import deploy_helpers


def test_accuracy_under_the_standard_protocol(lm_decoder):
  # 'Hello!' matches 'hello' once stripped; '!!!' strips to nothing and is not counted.
  labels = ["Hello!", "World", "!!!", "abc"]
  texts = ["hello", "w0rld", "x", "ABC"]
  assert lm_decoder.accuracy(labels, texts) == pytest.approx(100 * 2 / 3)


def test_folder_log_probs_read_as_the_recognizer_reads(lm_decoder, tiny_workdir, tmp_path):
  recognizer = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="greedy")
  images = deploy_helpers.text_images(7, [40, 300, 120, 64, 200])
  paths = []
  for i, image in enumerate(images):
    paths.append(tmp_path / f"{i}.png")
    Image.fromarray(image).save(paths[-1])
  log_probs = lm_decoder.folder_log_probs(recognizer, paths, batch_size=2)
  predictions = recognizer.recognize(paths)
  for lp, prediction in zip(log_probs, predictions):
    assert lp.shape[0] == len(prediction.path)  # One row per frame of that image.
    assert recognizer.charset.decode(greedy.collapse_path(lp.argmax(-1))) == prediction.text
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=1e-4)
