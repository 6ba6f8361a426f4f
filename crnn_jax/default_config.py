"""Default configuration: the CRNN of Shi, Bai and Yao (2015) on built-in synthetic text.

Every config field, its default and its comment live here, in the package, so that an installed
wheel has them too (`crnn-jax import-torch` writes a workdir with these settings). The
repository's configs/default.py re-exports `get_config`; train with:

  python -m train.main --config configs/default.py --workdir runs/default

Any field can be overridden on the command line, e.g. `--config.batch_size=128`.
Variant configs (configs/quickstart.py, tiny.py, ...) import configs/default.py and change a few
fields.
"""

import ml_collections

# The lower-case alphanumeric alphabet of crnn.pytorch (blank is index 0, not part of it).
from crnn_jax.text.charset import ALPHANUMERIC_36
from crnn_jax.synth.params import RenderParams


def get_config() -> ml_collections.ConfigDict:
  """Returns the default (paper-size) training configuration."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  # --- Text -----------------------------------------------------------------
  config.text = ml_collections.ConfigDict()
  config.text.charset = ALPHANUMERIC_36  # The characters; blank (index 0) is implicit.
  config.text.charset_file = ""  # If set, one file of characters (UTF-8) overriding `charset`.
  config.text.fold_case = True  # Lower-case labels before encoding (and predictions are lower-case).
  config.text.unknown_chars = "drop"  # 'drop' the sample (and count it) or 'error'.

  # --- Model ----------------------------------------------------------------
  config.model = ml_collections.ConfigDict()
  config.model.conv_channels = (64, 128, 256, 256, 512, 512, 512)
  # 'torch': BatchNorm after convolutions 3, 5, 7 (original Torch code, crnn.pytorch).
  # 'paper': BatchNorm after convolutions 5 and 6 (the paper's Table 4).
  config.model.batch_norm_layout = "torch"
  config.model.lstm_hidden = 256
  config.model.lstm_layers = 2
  # Activation dtype; 'bfloat16' for mixed precision (parameters and optimizer state stay
  # float32, and so do the LSTM cell state, the log-softmax and the CTC loss).
  config.model.dtype = "float32"
  # 'tps': a thin-plate-spline rectifier in front of the CRNN (crnn_jax/models/rectifier.py;
  # Shi et al. 2016, DTRB's "Trans" stage), identity until trained; 'none': no rectifier.
  config.model.rectifier = "none"
  config.model.rectifier_points = 20  # K fiducial points, half along each edge of the text.
  config.model.rectifier_channels = (32, 64, 128, 256)  # Its localization network's convs.
  config.model.rectifier_hidden = 256

  # --- Data -----------------------------------------------------------------
  config.data = ml_collections.ConfigDict()
  config.data.source = "synthetic"
  config.data.height = 32
  # Resizing: 'fixed' stretches every image to height x fixed_width (as in the paper);
  # 'keep_ratio' keeps the aspect ratio, caps the width at max_width, and batches by width bucket.
  config.data.resize = "fixed"
  config.data.fixed_width = 100
  config.data.max_width = 256
  config.data.bucket_widths = (64, 128, 192, 256)
  config.data.worker_count = 1  # grain worker processes for the train iterator (0: in-process).
  config.data.eval_size = 2000  # Number of held-out synthetic images used by periodic evaluation.
  config.data.train_seed = 1  # Synthetic splits are just different seeds.
  config.data.eval_seed = 2
  config.data.test_seed = 3

  # Datasets on disk (data.source 'auto', 'arrayrecord', 'lmdb', 'folder' or 'mjsynth'; 'auto'
  # detects each path's kind). ArrayRecord datasets come from `crnn-jax data build`.
  config.data.train_paths = ()  # Training datasets, e.g. ('/data/MJ', '/data/ST').
  config.data.train_ratios = ()  # Per-batch shares of train_paths, e.g. (0.5, 0.5); () concatenates.
  config.data.eval_paths = ()  # Held-out datasets for periodic evaluation (concatenated).
  config.data.test_paths = ()  # Datasets of the 'test' split (default: eval_paths).
  config.data.train_split = ""  # Split of a built dataset / MJSynth annotation ('' picks one).
  config.data.eval_split = ""
  config.data.shuffle = True  # Shuffle training records (seeded by train_seed, every epoch).
  config.data.bucket_window = 16  # keep_ratio: batches per window grouped by width bucket.
  config.data.max_label_length = 0  # If > 0, longer training labels are skipped (DTRB: 25).
  config.data.read_threads = 0  # Threads decoding records in each loading process.
  config.data.worker_buffer_size = 2  # Batches buffered per grain worker process.
  config.data.skip_log_examples = 5  # Skipped records named in the log, per reason and worker.

  # The synthetic text engine's settings: the fields of crnn_jax/synth/params.py RenderParams,
  # each with its default and help there (text 'en' or 'zh_en', lengths, the text mix, fonts,
  # augment 'none' / 'light' / 'strong' / 'scene', ...). `scene_params`, `glyph` and `zh_mix`
  # hold only the fields a config changes (of SceneParams, glyph.GlyphParams, text_zh.ZhTextMix).
  config.data.synthetic = RenderParams().to_config()

  # --- Optimization ---------------------------------------------------------
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"  # 'adadelta' (the paper), 'adam', 'adamw' or 'sgd'.
  config.optimizer.learning_rate = 1e-3
  # Multiply learning_rate by (batch_size * grad_accum_steps) / reference_batch_size.
  config.optimizer.scale_lr_with_batch = False
  config.optimizer.reference_batch_size = 64
  # Average the gradients of this many batches per update (optax.MultiSteps); num_train_steps
  # still counts batches, the schedule's step counts count updates.
  config.optimizer.grad_accum_steps = 1
  config.optimizer.schedule = "cosine"  # 'constant', 'cosine' or 'step'.
  config.optimizer.warmup_steps = 500
  config.optimizer.step_decay_every = 100_000  # For 'step': multiply by step_decay_rate every N steps.
  config.optimizer.step_decay_rate = 0.1
  config.optimizer.weight_decay = 1e-4  # For 'adamw'.
  config.optimizer.adadelta_rho = 0.9  # The paper's rho.
  config.optimizer.momentum = 0.9  # For 'sgd' (0: plain SGD).
  config.optimizer.grad_clip_norm = 5.0  # 0 disables clipping.

  # --- Loop -----------------------------------------------------------------
  config.batch_size = 64  # Global batch size.
  config.num_train_steps = 300_000
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  config.keep_checkpoints = 3
  config.num_sample_predictions = 8  # Predictions printed after the final evaluation.
  config.eval_batch_size = 256
  # Stop (after checkpointing the last good state) when this many consecutive steps have a
  # non-finite loss or gradient; checked at log and checkpoint steps. 0 never stops.
  config.max_consecutive_bad_steps = 100

  # Start a new run from trained weights (fine-tuning): a shipped model name such as 'synth_en',
  # a directory written by `crnn-jax export --format weights`, or another run's workdir (its
  # latest checkpoint). Parameters and BatchNorm
  # statistics are loaded; the optimizer and the step count start afresh. The alphabet and the
  # model shape must match the weights' in mode 'exact'; 'partial' copies what fits (another
  # alphabet keeps the classes of the characters both have; other shapes start fresh) and
  # 'subset' also copies leading slices into a narrower model (crnn_jax/models/warm_start.py).
  # A workdir with a checkpoint resumes from it instead.
  config.init_weights = ""
  config.init_weights_mode = "exact"

  # --- Devices --------------------------------------------------------------
  # Shard parameters and optimizer state over the data axis (FSDP) instead of replicating them.
  config.shard_params = False
  # Multi-process runs (crnn_jax/distributed.py). 'auto' starts jax.distributed when a
  # coordinator address is given (here or in JAX_COORDINATOR_ADDRESS) or on Cloud TPU VMs;
  # 'always' also lets JAX detect Slurm, Open MPI or Kubernetes; 'never' stays single-process.
  config.distributed = ml_collections.ConfigDict()
  config.distributed.initialize = "auto"
  config.distributed.coordinator_address = ""  # "host:port" of process 0.
  config.distributed.num_processes = 0  # 0: from JAX_NUM_PROCESSES or detected.
  config.distributed.process_id = -1  # -1: from JAX_PROCESS_ID or detected.
  config.distributed.initialization_timeout = 300  # Seconds to wait for all processes.
  return config
