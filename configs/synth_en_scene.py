"""English scene-text recognizer: the shipped synth_en model trained on photograph-like crops.

The renderer's 'scene' level (crnn_jax/data/scene.py) draws words in colour over crops of
photographs and textures from Debian and PyPI packages, with outlines, shadows, perspective,
arcs, wide letter spacing, tight crops cutting into neighbouring lines, uneven light, blur, low
resolution and JPEG; a quarter of the records stay at the 'strong' level (clean grayscale
print) so that print does not regress. Words come from wordfreq's 100,000 most frequent English
words in the case forms signs use (40% upper case), 15% of them length-balanced, one record
in ten with punctuation in the image that the 62-character label leaves out. The 'scene' font
pool adds 48 display families (heavy, condensed, rounded, script, techno) to the 'wide' pool.

Set-up and run (Debian backgrounds and the scene extra; no downloads at run time):

  apt-get install gnome-backgrounds mate-backgrounds ukui-wallpapers \\
      plasma-workspace-wallpapers colobot-common-textures
  pip install -e '.[scene]'
  python -m train.main --config configs/synth_en_scene.py --workdir ~/runs/synth_en_scene
  crnn-jax export --checkpoint ~/runs/synth_en_scene --format weights --output runs/scene_en

The run resumes from its last checkpoint when started again with the same command. Wall time
and the learning curve on real crops are in the README (section "Reading photographs").
"""

from configs import synth_en_wide


def get_config():
  config = synth_en_wide.get_config()
  config.init_weights = "synth_en"
  config.data.train_seed = 303
  synthetic = config.data.synthetic
  synthetic.augment = "scene"
  synthetic.strong_fraction = 0.25
  synthetic.font_pool = "scene"
  synthetic.vocabulary = "wordfreq"
  synthetic.length_balance = 0.15
  synthetic.punctuation_fraction = 0.1
  synthetic.max_length = 14
  synthetic.word_fraction = 0.7
  synthetic.digit_fraction = 0.12
  synthetic.lower_fraction = 0.3
  synthetic.upper_fraction = 0.4
  config.num_train_steps = 1800
  config.optimizer.learning_rate = 5e-4
  config.optimizer.warmup_steps = 100
  config.eval_every_steps = 600
  config.checkpoint_every_steps = 100
  return config
