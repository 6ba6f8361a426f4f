"""Default configuration: the CRNN of Shi, Bai and Yao (2015) on built-in synthetic text.

The fields, their defaults and their comments live in crnn_jax/default_config.py (inside the
package, so that a wheel install has them too); this file re-exports its `get_config`. Train with:

  python -m train.main --config configs/default.py --workdir runs/default

Any field can be overridden on the command line, e.g. `--config.batch_size=128`.
Variant configs (quickstart.py, tiny.py, ...) import this one and change a few fields.
"""

from crnn_jax.default_config import get_config

__all__ = ["get_config"]
