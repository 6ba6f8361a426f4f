"""Ninth stage of the scene-text recognizer: stage 8's faces, and hollow (outline) letters.

Sign letters drawn as outlines only, with the surface showing inside them (`BOOKS`, `Capitol`
in SVT-train), are not drawn by stages 1 to 8: their borders always surround filled ink. This
stage borders twice as many words and draws half of those as outlines alone
(`scene.SceneParams.hollow_prob`), from new records, continuing from stage 8's final
checkpoint.

  python -m train.main --config configs/synth_en_scene9.py --workdir ~/runs/synth_en_scene9
  crnn-jax export --checkpoint ~/runs/synth_en_scene9 --format weights \\
      --output crnn_jax/weights/scene_en

47 min on a 2-core Intel Xeon with AVX-512 (4 s per step, the test suite running beside it
for 16 of them). Shipped as `scene_en`: SVT-train 66.5 -> 68.5% (bfloat16, +5 crops),
IIIT5k-train 90.75 -> 90.65%, heldout_en 98.17 -> 98.0%.

`init_weights` names stage 8's workdir; on a machine without it, pass other weights
(`--config.init_weights=PATH`). Set-up as for configs/synth_en_scene8.py. Wall time and results
are in the README (section "Reading photographs", stage 9).
"""

from configs import synth_en_scene8


def get_config():
  config = synth_en_scene8.get_config()
  config.init_weights = "~/runs/synth_en_scene8"
  config.data.train_seed = 1111
  scene = config.data.synthetic.scene_params
  scene.border_prob = 0.3
  scene.hollow_prob = 0.5
  config.num_train_steps = 700
  config.optimizer.learning_rate = 2e-4
  config.eval_every_steps = 700
  return config
