"""Trains a CRNN: `python -m train.main --config configs/quickstart.py --workdir runs/quick`.

Any config field can be overridden, e.g. `--config.num_train_steps=100`.
"""

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from crnn_jax import train_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the config.")
config_flags.DEFINE_config_file("config", None, "Training configuration file.",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.set_verbosity(logging.INFO)
  train_lib.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
