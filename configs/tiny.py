"""A tiny configuration for tests and smoke runs (seconds on a CPU).

  python -m train.main --config configs/tiny.py --workdir runs/tiny
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.conv_channels = (8, 16, 32, 32, 64, 64, 64)
  config.model.lstm_hidden = 32
  config.data.synthetic.max_length = 6
  config.data.synthetic.augment = "none"
  config.data.worker_count = 0
  config.data.eval_size = 24
  config.batch_size = 8
  config.eval_batch_size = 16
  config.num_train_steps = 4
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  config.log_every_steps = 2
  config.eval_every_steps = 4
  config.checkpoint_every_steps = 2
  config.num_sample_predictions = 2
  return config
