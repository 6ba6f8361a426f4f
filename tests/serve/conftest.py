"""Fixtures of the service tests: the tiny random model as a Recognizer, encoded images, and
services and apps around them (the reading of a random model does not matter where these are
used; tests that check readings use the shipped scene_en)."""

import io

import numpy as np
from PIL import Image
import pytest

import crnn_jax
import deploy_helpers

pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")


def encode(array: np.ndarray, fmt: str = "PNG", **save_kwargs) -> bytes:
  """An image array encoded as PNG (or `fmt`)."""
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=fmt, **save_kwargs)
  return buffer.getvalue()


def word_images(seed: int, widths, height: int = 32) -> list[bytes]:
  """PNG bytes of random text-like images (`deploy_helpers.text_images`)."""
  return [encode(a) for a in deploy_helpers.text_images(seed, widths, height=height)]


@pytest.fixture(scope="session")
def tiny_recognizer(tiny_workdir):
  """The tiny random CRNN of the session's workdir, greedy by default."""
  return crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="greedy")


@pytest.fixture
def make_service(tiny_recognizer):
  """`make_service(**kwargs)`: a Service of the tiny model ('tiny', all decoders, default
  greedy) with small bounds and no warm-up unless asked; closed after the test."""
  from crnn_jax.serve import service as service_lib  # pylint: disable=import-outside-toplevel
  made = []

  def make(*, batching=None, limits=None, warmup_max_width=0, models=None):
    models = models or [service_lib.build_model("tiny", tiny_recognizer,
                                                default_decoder="greedy")]
    service = service_lib.Service(
        models, batching=batching or service_lib.Batching(max_batch=4, max_wait_ms=2,
                                                          max_queue=32),
        limits=limits or service_lib.Limits(max_images=8, max_body_bytes=1 << 20,
                                            max_pixels=1_000_000),
        warmup_max_width=warmup_max_width)
    made.append(service)
    return service

  yield make
  for service in made:
    service.close(timeout=10)
