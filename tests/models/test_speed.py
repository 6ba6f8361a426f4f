"""The speed benchmark's premises: the PyTorch CRNN is our CRNN, and inference compiles once.

benchmarks/torch_crnn.py must compute what crnn_jax.models.crnn computes (same layers, same
parameter count up to the LSTM bias convention), or benchmarks/speed.py compares different
models. The Recognizer must compile one program per width bucket, not per image, and keep it
in the persistent compilation cache.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crnn_jax import inference
from crnn_jax.text.charset import Charset
from crnn_jax.models import crnn

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
SMALL = dict(conv_channels=(8, 16, 16, 16, 32, 32, 32), lstm_hidden=16)


def _torch_crnn():
  pytest.importorskip("torch")
  sys.path.insert(0, str(BENCHMARKS))
  try:
    import torch_crnn  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(BENCHMARKS))
  return torch_crnn


def test_torch_crnn_has_crnn_pytorch_parameter_count():
  torch_crnn = _torch_crnn()
  model = torch_crnn.CRNN(37)
  assert sum(p.numel() for p in model.parameters()) == 8_331_301


@pytest.mark.parametrize("layout", ["torch", "paper"])
def test_torch_crnn_computes_the_same_logits(layout):
  torch_crnn = _torch_crnn()
  import torch  # pylint: disable=g-import-not-at-top
  model = crnn.CRNN(num_classes=11, batch_norm_layout=layout, **SMALL)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (2, 32, 60, 1)).astype(np.float32)
  variables = model.init(jax.random.key(0), jnp.asarray(images), jnp.array([60, 60]))
  variables = jax.tree_util.tree_map_with_path(  # Non-trivial BatchNorm statistics.
      lambda path, x: x + 0.1 if jax.tree_util.keystr(path).endswith("['var']") else x,
      variables)
  logits, _ = model.apply(variables, jnp.asarray(images), jnp.array([60, 60]))
  ours = torch_crnn.CRNN(11, batch_norm_layout=layout, **SMALL)
  torch_crnn.load_flax_variables(ours, jax.device_get(variables))
  ours.eval()
  with torch.no_grad():
    theirs = ours(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(1, 0, 2).numpy()
  assert np.abs(np.asarray(logits)).max() > 1e-3
  np.testing.assert_allclose(theirs, logits, rtol=1e-4, atol=1e-5)


@pytest.fixture
def restore_cache_config():
  """Restores the cache settings; the test starts and ends with JAX's cache object unset.

  JAX sets up its persistent cache at the first compilation after a directory is configured
  and keeps it: without a reset, an earlier test's cache would stay in use.
  """
  from jax._src import compilation_cache  # pylint: disable=g-import-not-at-top
  saved = (jax.config.jax_compilation_cache_dir,
           jax.config.jax_persistent_cache_min_compile_time_secs)
  compilation_cache.reset_cache()
  yield
  jax.config.update("jax_compilation_cache_dir", saved[0])
  jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])
  compilation_cache.reset_cache()


@pytest.mark.parametrize("decoder", ["greedy", "lm"])
def test_recognizer_compiles_once_per_width_bucket_and_caches_on_disk(tmp_path, decoder,
                                                                      restore_cache_config):
  jax.config.update("jax_compilation_cache_dir", None)
  model = crnn.CRNN(num_classes=37, **SMALL)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 64, 1)), jnp.array([64]))
  recognizer = inference.Recognizer.from_model(model, variables,
                                               Charset("0123456789abcdefghijklmnopqrstuvwxyz"),
                                               compilation_cache=tmp_path / "cache",
                                               decoder=decoder)
  # Greedy decoding runs the model and the best path on device, the others fetch log-probs.
  # pylint: disable-next=protected-access
  backend = recognizer.backend
  compiled = backend._best_paths if decoder == "greedy" else backend._log_probs
  assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache")
  rng = np.random.default_rng(0)

  def images(widths):
    return [rng.uniform(-1, 1, (32, w)).astype(np.float32) for w in widths]

  # Widths 33..64 share the 64 bucket; 5 and 7 images are both padded to 8 rows.
  recognizer.recognize_preprocessed(images([33, 40, 47, 60, 64]))
  recognizer.recognize_preprocessed(images([34, 35, 50, 51, 52, 63, 64]))
  assert compiled._cache_size() == 1  # pylint: disable=protected-access
  recognizer.recognize_preprocessed(images([65, 90]))  # The 96 bucket, 2 rows.
  assert compiled._cache_size() == 2  # pylint: disable=protected-access
  assert any((tmp_path / "cache").iterdir())
