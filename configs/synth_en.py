"""synth_en, the shipped print model: the full-size CRNN, 62 case-sensitive characters [0-9a-zA-Z].

Trained only on the built-in synthetic renderer ('strong' augmentation, clean print) in three
stages on a 2-core CPU; stage 3 is the model shipped in `crnn_jax/weights/synth_en`, and the
starting point of `scene_en` (configs/scene_en.py). `get_config("stage=N")` gives stage N (the
default is 3, the shipped one); each stage is the previous one plus a few overrides.

  pip install -e '.[fonts]'  # Stage 3's 'wide' font pool.
  python -m train.main --config configs/synth_en.py:stage=1 --workdir runs/synth_en/stage1
  python -m train.main --config configs/synth_en.py:stage=2 --workdir runs/synth_en/stage2
  python -m train.main --config configs/synth_en.py:stage=3 --workdir runs/synth_en/stage3
  crnn-jax export --checkpoint runs/synth_en/stage3 --format weights \\
      --output crnn_jax/weights/synth_en

Stage k > 1 starts (a new run: fresh optimizer, step 0) from the last checkpoint of stage k-1's
workdir, `runs/synth_en/stage{k-1}` relative to where the command runs; pass other weights
with `--config.init_weights=PATH` (a workdir, or a weights directory from `crnn-jax export`).
A stopped run resumes from its last checkpoint, data iterator included, with the same command.

Stages (wall times, learning curves and results: docs/experiments/synth_en.md):
  1  2,200 steps from random initialization; the 'extended' font pool (17 typefaces).
  2  1,800 steps on new records, a second warm-up and cosine decay at half the peak rate.
  3  1,800 steps on new records from the 'wide' pool (66 typefaces), stage 2's schedule.

Text mix: dictionary words (55%), digit strings (15%) and random alphanumeric strings (30%) of
1 to 12 characters, as in testdata/heldout_en. Images are stretched to 32 x 128 (33 frames).
"""

from configs import default
from crnn_jax.text.charset import ALPHANUMERIC_62

STAGES = ("1", "2", "3")
SHIPPED_STAGE = "3"
RUNS = "runs/synth_en"  # Stage N's workdir: runs/synth_en/stageN.


def parse_stage(arg: str | None, stages: tuple[str, ...], default_stage: str, name: str) -> str:
  """The stage that `arg` ('stage=N', or None for `default_stage`) names.

  Raises:
    ValueError: another argument, or a stage not in `stages`.
  """
  if not arg:
    return default_stage
  key, _, value = arg.partition("=")
  if key != "stage" or value not in stages:
    raise ValueError(f"{name} takes 'stage=N' with N in {stages}, got {arg!r}")
  return value


def get_config(arg: str | None = None):
  """The recipe; `arg` 'stage=N' picks a stage (default: the shipped stage 3)."""
  stage = parse_stage(arg, STAGES, SHIPPED_STAGE, "synth_en")
  config = default.get_config()
  config.text.charset = ALPHANUMERIC_62
  config.text.fold_case = False
  config.data.resize = "fixed"
  config.data.fixed_width = 128
  config.data.eval_size = 1000
  synthetic = config.data.synthetic
  synthetic.min_length = 1
  synthetic.max_length = 12
  synthetic.word_fraction = 0.55
  synthetic.digit_fraction = 0.15
  synthetic.augment = "strong"
  synthetic.font_pool = "extended"
  config.batch_size = 64
  config.num_train_steps = 2200
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 300
  config.optimizer.schedule = "cosine"
  config.log_every_steps = 50
  config.eval_every_steps = 1100
  config.checkpoint_every_steps = 275
  if stage in ("2", "3"):  # Stage 1's model, on records it never drew, a lower second schedule.
    config.init_weights = f"{RUNS}/stage1"
    config.data.train_seed = 101
    config.num_train_steps = 1800
    config.optimizer.learning_rate = 5e-4
    config.optimizer.warmup_steps = 100
    config.eval_every_steps = 600
    config.checkpoint_every_steps = 150
  if stage == "3":  # Typeface variety: 252 font files of 66 typefaces (fonts.WIDE_FONT_PACKAGES).
    config.init_weights = f"{RUNS}/stage2"
    config.data.train_seed = 202
    synthetic.font_pool = "wide"
  return config
