"""Second stage of the scene-text recognizer: stage 1's weights trained on fresh scene crops.

Stage 1 (configs/synth_en_scene.py, 1,800 steps from synth_en) was still gaining on real crops
when its schedule ended (SVT-train +1.9 points over its last 300 steps). This stage starts from
stage 1's weights with a new data seed (images stage 1 never saw), a smaller share of clean
print (15%: stage 1 left the print set at 97%, above its 95% floor) and a second cosine
schedule from a lower peak learning rate. Its result shipped as `scene_en` until stage 3
(configs/synth_en_scene3_keep_ratio.py) replaced it.

  crnn-jax export --checkpoint ~/runs/synth_en_scene --format weights \\
      --output ~/runs/scene_en_stage1
  python -m train.main --config configs/synth_en_scene2.py --workdir ~/runs/synth_en_scene2
  crnn-jax export --checkpoint ~/runs/synth_en_scene2 --format weights \\
      --output crnn_jax/weights/scene_en

Set-up as for configs/synth_en_scene.py. The run's history (its schedule was shortened
twice), wall time and learning curve are in the README (section "Reading photographs").
"""

from configs import synth_en_scene


def get_config():
  config = synth_en_scene.get_config()
  config.init_weights = "~/runs/scene_en_stage1"
  config.data.train_seed = 404
  config.data.synthetic.strong_fraction = 0.15
  config.num_train_steps = 1200
  config.optimizer.learning_rate = 3e-4
  config.optimizer.warmup_steps = 100
  return config
