"""Sixth stage of the scene-text recognizer: stage 5's data from new records, a lower
schedule.

Stage 5 (configs/synth_en_scene5.py, shipped as `scene_en`) took SVT-train from 66.1% to 66.5%
and IIIT5k-train from 90.2% to 90.7% in 600 steps. This stage trains on from the shipped weights
with a new data seed and a lower peak learning rate, evaluating every 300 steps for
the learning curve.

  python -m train.main --config configs/synth_en_scene6.py --workdir ~/runs/synth_en_scene6

It did not beat stage 5 (README, section "Reading photographs", stage 6), so it is not shipped
and `init_weights` names stage 5's workdir (stage 5 shipped as `scene_en` until stage 9). Set-up
as for configs/synth_en_scene.py.
"""

from configs import synth_en_scene5


def get_config():
  config = synth_en_scene5.get_config()
  config.init_weights = "~/runs/synth_en_scene5"  # Stage 5, shipped as scene_en until stage 9.
  config.data.train_seed = 808
  config.num_train_steps = 600
  config.optimizer.learning_rate = 1.5e-4
  config.optimizer.warmup_steps = 30
  config.eval_every_steps = 300
  return config
