"""Fifth stage of the scene-text recognizer: stage 4's sign faces again, a little more often,
from new records.

Stage 4 (configs/synth_en_scene4.py) took SVT-train from 62.3% to 66.1% and IIIT5k-train
from 89.3% to 90.2% in 800 steps, still rising between its step-400 and step-800 checkpoints
(SVT-train 61.1% then 66.1%). This stage continues from its final checkpoint with a new seed,
raised, bevelled and 3-D letters a little more often, and a lower peak learning rate.

  python -m train.main --config configs/synth_en_scene5.py --workdir ~/runs/synth_en_scene5
  crnn-jax export --checkpoint ~/runs/synth_en_scene5 --format weights \\
      --output crnn_jax/weights/scene_en

`init_weights` names stage 4's workdir; on a machine without it, pass the stage-4 weights
(`--config.init_weights=PATH`, a workdir or an exported weights directory). Set-up as for
configs/synth_en_scene.py. Wall time and results are in the README (section
"Reading photographs").
"""

from configs import synth_en_scene4


def get_config():
  config = synth_en_scene4.get_config()
  config.init_weights = "~/runs/synth_en_scene4"
  config.data.train_seed = 707
  scene = config.data.synthetic.scene_params
  scene.bevel_prob = 0.2
  scene.extrude_prob = 0.2
  config.num_train_steps = 600
  config.optimizer.learning_rate = 2e-4
  config.eval_every_steps = 600
  return config
