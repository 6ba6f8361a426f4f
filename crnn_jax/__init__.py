"""crnn-jax: CRNN scene-text recognition in JAX/Flax."""

from crnn_jax import _xla_flags

_xla_flags.apply()  # Must run before JAX creates its CPU backend.

__version__ = "0.1.0"
