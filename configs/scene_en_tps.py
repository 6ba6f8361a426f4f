"""scene_en with a TPS rectifier in front (issue 32): the shipped scene_en, more bent words.

  python -m train.main --config configs/scene_en_tps.py --workdir ~/runs/scene_en_tps

The shipped `scene_en` (stage 9 of configs/scene_en.py, pinned by hash, as stage 10 started) with
`model.rectifier = 'tps'` (crnn_jax/models/rectifier.py, 20 fiducial points, about 1.05 M
parameters more). `init_weights_mode = 'partial'` copies every array of the CRNN and leaves the
rectifier at its initialization, the identity: before the first step the model reads exactly as
scene_en does. Stage 9's data (the 'signage' font pool, its hollow, bevelled and 3-D letters,
15% clean print) with new records (seed 1313) and far more irregular words than today: arcs on
40% of the words (stage 9: 15%) up to 0.7 font sizes at the ends (0.45), a perspective map on
75% (60%) with corners moved up to 0.2 box heights (0.12), tilts of sd 5 degrees up to 20 (sd
3, up to 12) and shear up to 0.45 (0.35). 15% of the scene records stay straight and level (no
arc, no perspective map; stage 9: 34%), besides the 15% of clean print, so that regular text
keeps being seen.
The grid of 64 records (`crnn-jax data samples --config configs/scene_en_tps.py --count 64`)
shows the arcs, slants and trapezoids clearly, the words still legible
(docs/experiments/rectifier.md, "Sample grids").

One learning rate for all parameters: crnn_jax/optim.py has no parameter groups or freezing,
so the rectifier cannot be given a higher rate than the recognizer. The peak is 2e-4 (stages 5
and 9's; stage 1 had 5e-4, stages 2 and 8 3e-4), with 100 warm-up steps, then cosine to zero:
low enough for the trained recognizer not to drift, and Adam moves the rectifier's fresh last
layer (zero weights, the canonical points as bias) at the same per-step size whatever its
gradients' scale. If the fiducial points barely move by step 1,000 (`crnn-jax predict
--visualize`), a second run at a higher rate, or parameter groups in optim.py, is the next step.

Wall time: 2,200 steps of 64 images. Stage 10 (the same model without rectifier, the same
data pipeline) ran at 3 s per step on the 2-core AMD EPYC; the rectifier adds about 6% of
the CRNN's multiply-adds forward (benchmarks/rectifier.py: 1.01-1.10x at inference) and its
grid's backward pass, so about 3.3 s per step: 2 h 01 min of steps, plus 9 evaluations of 1,000
synthetic images (every 250 steps, about 50 s each, estimated) and the checkpoints (every 100 steps), about
2 h 10 min in all; up to 2 h 30 min at 4 s per step. It resumes from its last checkpoint if
stopped (same command).

Set-up as for configs/scene_en.py stages 8 to 10 (the 'signage' fonts, the Debian background
photographs, the scene extra). Validation: docs/experiments/rectifier.md, "Training (next
session)".
"""

from configs import scene_en

TRAIN_SEED = 1313  # New records: stage 10 drew 1212.


def get_config():
  config = scene_en.get_config(f"stage={scene_en.SHIPPED_STAGE}")
  config.init_weights = scene_en.SCENE_EN_STAGE9
  config.init_weights_mode = "partial"  # The CRNN copied, the rectifier fresh (the identity).
  config.model.rectifier = "tps"
  config.data.train_seed = TRAIN_SEED
  scene = config.data.synthetic.scene_params
  scene.curve_prob = 0.4
  scene.curve_range = 0.7
  scene.perspective_prob = 0.75
  scene.corner_jitter = 0.2
  scene.rotation_deg = 10.0
  scene.shear_range = 0.45
  config.num_train_steps = 2200
  config.optimizer.learning_rate = 2e-4
  config.optimizer.warmup_steps = 100
  config.checkpoint_every_steps = 100
  config.eval_every_steps = 250
  return config
