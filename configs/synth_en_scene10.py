"""Tenth stage of the scene-text recognizer: stage 9's records with inline letters.

Sign faces with a line of another colour running inside their strokes (engraved and inline
capitals: `DETROIT`, `HOTEL` in SVT-train) are not drawn by stages 1 to 9. This stage draws
them on a fifth of the words that are not hollow and whose strokes are thick enough
(`scene.SceneParams.inline_prob`), from new records, continuing from the
shipped `scene_en` (stage 9, bfloat16 weights, so a machine without earlier workdirs can run
it) with stage 9's learning rate.

  python -m train.main --config configs/synth_en_scene10.py --workdir ~/runs/synth_en_scene10

1000 steps, 18:14 to 19:08 on 2026-12-02 (54 min, about 3 s per step on a 2-core AMD EPYC).
Not shipped: SVT-train 68.48 -> 69.65% (+3 crops; 71.21 at step 600), IIIT5k-train 90.75 ->
90.25% (-10 crops), float32 step 1000. Set-up as for configs/synth_en_scene8.py. Results are in
the README (section "Reading photographs", stage 10).
"""

from configs import synth_en_scene9


def get_config():
  config = synth_en_scene9.get_config()
  config.init_weights = "scene_en"  # Stage 9, as shipped.
  config.data.train_seed = 1212
  config.data.synthetic.scene_params.inline_prob = 0.2
  config.num_train_steps = 1000
  config.eval_every_steps = 1000
  return config
