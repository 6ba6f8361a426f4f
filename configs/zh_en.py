"""Mixed Chinese, English and digit text lines: the `zh_en` recognizer (issue 15).

  apt-get install fonts-noto-cjk fonts-noto-cjk-extra fonts-droid-fallback \\
      fonts-cns11643-kai fonts-cns11643-sung          # the training faces (19 with these)
  pip install -e '.[scene,zh]'                         # OpenCV, wordfreq, jieba
  python -m train.main --config configs/zh_en.py --workdir ~/runs/zh_en
  crnn-jax export --checkpoint ~/runs/zh_en --format weights --output crnn_jax/weights/zh_en
  crnn-jax eval --weights zh_en --data testdata/heldout_zh --nfkc

Text: `crnn_jax.synth.text_zh` lines of 1-25 characters (jieba's word frequencies, English words,
numbers, dates, prices, units, codes, Chinese and ASCII punctuation; proportions in
`ZhTextMix`), in the 3,871-character `zh_en` charset (`crnn_jax.text.zh_charset`), case
sensitive. Faces: the CJK training pool (`crnn_jax.synth.cjk_fonts`; the evaluation's reserved
families and the held-out HanaMin never among them), one that covers every character of the
line. Half the records at the renderer's scene level (signs), half clean print (documents,
screens).

Model: a light CRNN (channels 48-96-192-192-256-256-256, 160 LSTM units per direction; 4.08M
parameters, 8.2 MB in bfloat16 against the issue's 12 MB), keep-ratio inputs of height 32 up to
800 pixels (25:1), in width buckets. Frames per label character (the model has one per 4
columns), measured on 300 records at the 'strong' level: median 3.95, 5th percentile 2.67,
minimum 1.92 (CTC needs 1, and 2 between repeated characters); widths at height 32: median 172,
95th percentile 344, maximum 545 pixels, so no line is squeezed at 800.

Wall time and results: not trained yet (a 2-core CPU draws about 1 step in 10-25 s at these
widths; the recipe is sized for a GPU, where `data.worker_count` should rise until the renderer
keeps up). Results go in docs/experiments/zh_en.md.
"""

from configs import default
from crnn_jax.text import zh_charset


def get_config():
  config = default.get_config()
  config.text.charset = zh_charset.ZH_EN_CHARS
  config.text.fold_case = False
  config.model.conv_channels = (48, 96, 192, 192, 256, 256, 256)
  config.model.lstm_hidden = 160
  config.data.resize = "keep_ratio"
  config.data.max_width = 800
  config.data.bucket_widths = (160, 320, 480, 640, 800)
  config.data.max_label_length = 25
  config.data.train_seed = 1501
  config.data.eval_seed = 1502
  config.data.test_seed = 1503
  config.data.eval_size = 1000
  config.data.worker_count = 2
  synthetic = config.data.synthetic
  synthetic.text = "zh_en"
  synthetic.min_length = 1
  synthetic.max_length = 25
  synthetic.augment = "scene"
  synthetic.strong_fraction = 0.5
  synthetic.font_size = 40
  config.batch_size = 64
  config.num_train_steps = 100_000
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 2_000
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 1_000
  config.eval_batch_size = 128
  return config
