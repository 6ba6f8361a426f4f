r"""Trains a CRNN: `python -m train.main --config configs/quickstart.py --workdir runs/quick`.

Any config field can be overridden, e.g. `--config.num_train_steps=100`.

Several processes (hosts) run the same command, each with its process id, e.g. on two hosts:

  python -m train.main --config ... --workdir ... \
      --config.distributed.coordinator_address=host0:1234 \
      --config.distributed.num_processes=2 --config.distributed.process_id=0   # 1 on host1

Rerunning the same command resumes from the workdir's latest checkpoint. After SIGTERM the run
saves a checkpoint at the current step and exits with status 143 (128 + SIGTERM).
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from crnn_jax import checkpointing
from crnn_jax import config_file
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
  try:
    train_lib.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except checkpointing.Preempted as e:
    logging.warning("%s", e)
    sys.exit(checkpointing.PREEMPTED_EXIT_CODE)


def run() -> None:
  """`app.run(main)`, with `--help` exiting 0 and a misspelt `--config.x` field in one line."""
  argv = sys.argv[1:]
  if any(arg in ("--help", "-h", "-?") for arg in argv):
    print(__doc__.strip() + "\n\n" + FLAGS.main_module_help())
    sys.exit(0)
  errors = config_file.check_command_line(argv)
  if errors:
    for line in errors:
      print(f"error: {line}", file=sys.stderr)
    sys.exit(2)
  app.run(main)


if __name__ == "__main__":
  run()
