"""English recognizer, second stage: train configs/synth_en.py's model on, on new synthetic data.

The shipped model (`crnn_jax/weights/synth_en`) is three runs on the 2-core CPU of the
development machine (no GPU): configs/synth_en.py from step 0, this file from its exported
weights, then configs/synth_en_wide.py (more fonts) from this one's. Stages 1 and 2:

  python -m train.main --config configs/synth_en.py --workdir runs/synth_en
  crnn-jax export --checkpoint runs/synth_en --format weights --output runs/synth_en_stage1
  python -m train.main --config configs/synth_en_finetune.py --workdir runs/synth_en_ft
  crnn-jax export --checkpoint runs/synth_en_ft --format weights --output runs/synth_en_stage2

A new run (fresh Adam state and step count) from the stage-1 weights (`init_weights`, bfloat16
as exported): a second warm-up and cosine decay at half the first stage's peak learning rate,
over records the first stage never drew (another `data.train_seed`). Everything else, the text
mix, fonts, augmentation and image size, is the first stage's.

Wall time and learning curve: README, section "The print model synth_en".
"""

from configs import synth_en


def get_config():
  config = synth_en.get_config()
  config.init_weights = "runs/synth_en_stage1"
  config.data.train_seed = 101
  config.num_train_steps = 1800
  config.optimizer.learning_rate = 5e-4
  config.optimizer.warmup_steps = 100
  config.eval_every_steps = 600
  config.checkpoint_every_steps = 150
  return config
