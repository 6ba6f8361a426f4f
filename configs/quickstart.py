"""Quickstart: a reduced CRNN that learns synthetic words on a 2-core CPU in under 15 minutes.

  python -m train.main --config configs/quickstart.py --workdir runs/quick

Same architecture as configs/default.py with a quarter of the channels and LSTM units, case-insensitive
36-character alphabet, words of up to 10 characters and light augmentation.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.model.conv_channels = (16, 32, 64, 64, 128, 128, 128)
  config.model.lstm_hidden = 64
  config.data.synthetic.max_length = 10
  config.data.synthetic.augment = "light"
  config.data.eval_size = 1000
  config.batch_size = 64
  config.num_train_steps = 3000
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 200
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 1000
  return config
