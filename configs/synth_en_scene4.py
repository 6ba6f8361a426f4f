"""Fourth stage of the scene-text recognizer: the looks that SVT-train's errors have in common.

Stage 3 (configs/synth_en_scene3_keep_ratio.py, shipped as `scene_en`) left SVT-train at 62%.
Its errors are not mostly small crops: 49% of the crops 80 pixels or taller read right, against
77% at 32-48. What the wrong ones share are sign faces the renderer drew rarely or never:
raised, bevelled and 3-D letters (DETROIT, VILLAGE, HOTEL), letters carved in stone with a
letter-width between them (D E P A R T M E N T, G R A N D), red on red and other low contrast,
and a second line of the sign cut at the crop's edge. This stage draws more of each (the
`scene_params` below; `bevel_prob` is a new effect), from new records, with keep-ratio inputs
as stage 3.

  python -m train.main --config configs/synth_en_scene4.py --workdir ~/runs/synth_en_scene4
  crnn-jax export --checkpoint ~/runs/synth_en_scene4 --format weights \\
      --output crnn_jax/weights/scene_en

`init_weights = 'scene_en'` named stage 3's weights when this stage ran (2026-12-01); stage 5 has
replaced them since, so to repeat this stage pass stage 3's export
(`--config.init_weights=PATH`: crnn_jax/weights/scene_en as of commit ac6063a, e.g.
`git archive ac6063a crnn_jax/weights/scene_en | tar -x -C /tmp`, or `crnn-jax export
--checkpoint ~/runs/synth_en_scene3_keep_ratio --format weights --output PATH`). Set-up as for configs/synth_en_scene.py. Wall time and results are in the README (section
"Reading photographs").
"""

from configs import synth_en_scene3_keep_ratio


def get_config():
  config = synth_en_scene3_keep_ratio.get_config()
  config.init_weights = "scene_en"
  config.data.train_seed = 606
  scene = config.data.synthetic.scene_params
  scene.bevel_prob = 0.15
  scene.extrude_prob = 0.15
  scene.wide_spacing_prob = 0.4
  scene.wide_tracking = (0.12, 1.1)
  scene.low_contrast_prob = 0.15
  scene.neighbour_prob = 0.4
  config.num_train_steps = 800
  config.optimizer.learning_rate = 2.5e-4
  config.optimizer.warmup_steps = 50
  config.eval_every_steps = 800
  config.checkpoint_every_steps = 100
  return config
