"""Third stage of the scene-text recognizer, fixed width: scene_en trained on with prices drawn.

scene_en (configs/synth_en_scene2.py) reads '$10.25' as '51025': the renderer drew a '$' in
about one record in 500. This stage draws 40% of the digit records as prices with a currency
sign that the label leaves out (`price_fraction`), from a new data seed, with a third, lower
cosine schedule. It is the fixed-width arm of a comparison: configs/synth_en_scene3_keep_ratio.py
trains the same records from the same weights with aspect-ratio-preserving inputs.

  python -m train.main --config configs/synth_en_scene3.py --workdir ~/runs/synth_en_scene3

`init_weights = 'scene_en'` named stage 2's weights when this stage ran; later stages have
replaced them, so to repeat it pass stage 2's export (`--config.init_weights=PATH`, e.g.
`crnn-jax export --checkpoint ~/runs/synth_en_scene2 --format weights --output PATH`).

Set-up as for configs/synth_en_scene.py. Wall time and results are in the README (section
"Reading photographs").
"""

from configs import synth_en_scene2


def get_config():
  config = synth_en_scene2.get_config()
  config.init_weights = "scene_en"
  config.data.train_seed = 505
  config.data.synthetic.price_fraction = 0.4
  config.num_train_steps = 500
  config.optimizer.learning_rate = 2e-4
  config.optimizer.warmup_steps = 50
  config.eval_every_steps = 500
  return config
