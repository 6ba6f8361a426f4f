"""crnn-jax: CRNN scene-text recognition in JAX/Flax.

`crnn_jax.Recognizer` (see `crnn_jax.inference`) is imported lazily, on first use, so that
`import crnn_jax` stays cheap and the XLA flags below are set before anything imports JAX.
"""

from crnn_jax import _xla_flags

_xla_flags.apply()  # Must run before JAX creates its CPU backend.

__version__ = "0.1.0"

_LAZY = {"Recognizer": "crnn_jax.inference", "Prediction": "crnn_jax.inference",
         "CharSpan": "crnn_jax.inference"}
__all__ = ["Recognizer", "Prediction", "CharSpan", "__version__"]


def __getattr__(name):
  if name in _LAZY:
    import importlib  # pylint: disable=g-import-not-at-top
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module 'crnn_jax' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
