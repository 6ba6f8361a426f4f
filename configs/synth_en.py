"""English recognizer: the full-size CRNN on the 62 characters [0-9a-zA-Z], case-sensitive.

Trained only on the built-in synthetic renderer (strong augmentation, the 94-font pool of the
PyPI font packages), this is the model shipped in `crnn_jax/pretrained/` and used by
`crnn-jax predict` when no checkpoint is given:

  python -m train.main --config configs/synth_en.py --workdir runs/synth_en

Text mix: dictionary words (55%: lower 50%, upper 25%, capitalized 25%), digit strings (15%) and
random alphanumeric strings (30%), 1 to 12 characters, as in the held-out test set
(testdata/heldout_en, fonts outside the training pool). Images are resized to 32 x 128 (as in
the paper, with 33 frames instead of 26 for the long words and strings); the line box spans
the capital height and the descenders whatever the text, so 'o' and 'O' keep the height cue
that tells them apart. (Keeping the aspect ratio in width buckets up to 256 pixels costs about
2.6 s per step on the 2-core CPU against about 1.5 s here.)

The run can be stopped (Ctrl-C, SIGTERM) and continued with the same command: it resumes
from the last checkpoint (every 500 steps), data iterator included.

Measured wall time on the 2-core CPU of the development machine (no GPU): see the README's
"English recognizer" section.
"""

from configs import default

ALPHANUMERIC_62 = default.ALPHANUMERIC_36 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def get_config():
  config = default.get_config()
  config.text.charset = ALPHANUMERIC_62
  config.text.fold_case = False
  config.data.resize = "fixed"
  config.data.fixed_width = 128
  config.data.synthetic.min_length = 1
  config.data.synthetic.max_length = 12
  config.data.synthetic.word_fraction = 0.55
  config.data.synthetic.digit_fraction = 0.15
  config.data.synthetic.augment = "strong"
  config.data.eval_size = 1000
  config.batch_size = 64
  config.num_train_steps = 4000
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 300
  config.optimizer.schedule = "cosine"
  config.log_every_steps = 50
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 500
  return config
