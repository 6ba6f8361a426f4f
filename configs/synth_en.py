"""English recognizer: the full-size CRNN on the 62 characters [0-9a-zA-Z], case-sensitive.

Trained only on the built-in synthetic renderer (strong augmentation, the 'extended' font pool:
102 files of 17 typefaces from PyPI packages), this is the first of the three stages of the model
shipped in `crnn_jax/weights/synth_en`, which `crnn-jax predict` and
`Recognizer.from_pretrained()` use when no checkpoint is given:

  python -m train.main --config configs/synth_en.py --workdir runs/synth_en
  crnn-jax export --checkpoint runs/synth_en --format weights --output runs/synth_en_stage1

Text mix: dictionary words (55%: lower 50%, upper 25%, capitalized 25%), digit strings (15%) and
random alphanumeric strings (30%), 1 to 12 characters, as in the held-out test set
(testdata/heldout_en, fonts outside the training pool). Images are resized to 32 x 128 (as in
the paper, with 33 frames instead of 26 for the long words and strings); the line box spans
the capital height and the descenders whatever the text, so 'o' and 'O' keep the height cue
that tells them apart. (Keeping the aspect ratio in width buckets up to 256 pixels costs about
1.8 times as much per step.)

The run can be stopped (Ctrl-C, SIGTERM) and continued with the same command: it resumes
from the last checkpoint, data iterator included. To train on from the shipped weights
instead (a new run, fresh optimizer), add `--config.init_weights=synth_en`.

This file is the first of the shipped model's three stages; configs/synth_en_finetune.py, the
second, trains its exported weights on, and configs/synth_en_wide.py, the third, adds fonts
(commands there). Wall time and learning curve: README, section "The print model synth_en".
"""

from configs import default
from crnn_jax.data.charset import ALPHANUMERIC_62



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
  config.data.synthetic.font_pool = "extended"
  config.data.eval_size = 1000
  config.batch_size = 64
  config.num_train_steps = 2200
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 300
  config.optimizer.schedule = "cosine"
  config.log_every_steps = 50
  config.eval_every_steps = 1100
  config.checkpoint_every_steps = 275
  return config
