"""English recognizer, third stage: the second stage's weights trained on with the 'wide' font pool.

This is the model shipped in `crnn_jax/weights/synth_en`. The first two stages
(configs/synth_en.py, configs/synth_en_finetune.py) draw from 17 typefaces; their errors on
testdata/heldout_en were mostly in faces unlike any of them: l/I/1 in Arial-like sans faces,
o/O/0, the serifed r of a Courier-like mono. This stage adds 50 Google Fonts families from PyPI
(`pip install -e '.[fonts]'`, fonts.WIDE_FONT_PACKAGES: sans, serif, slab and monospace faces,
none related to the held-out fonts), 252 font files of 66 typefaces in all, and trains on from
the second stage's exported weights (fresh Adam state, new records, the second stage's schedule):

  crnn-jax export --checkpoint runs/synth_en_ft --format weights --output runs/synth_en_stage2
  python -m train.main --config configs/synth_en_wide.py --workdir runs/synth_en_wide
  crnn-jax export --checkpoint runs/synth_en_wide --format weights --output crnn_jax/weights/synth_en

Everything else, the text mix, augmentation and image size, is the first two stages'.

Wall time and learning curve: README, section "The print model synth_en".
"""

from configs import synth_en_finetune


def get_config():
  config = synth_en_finetune.get_config()
  config.init_weights = "runs/synth_en_stage2"
  config.data.train_seed = 202
  config.data.synthetic.font_pool = "wide"
  return config  # Steps, schedule and evaluation: the second stage's.
