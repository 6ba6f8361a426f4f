"""crnn-jax: CRNN scene-text recognition in JAX/Flax."""

__version__ = "0.1.0"
