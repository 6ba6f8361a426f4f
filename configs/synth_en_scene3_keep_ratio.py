"""Third stage of the scene-text recognizer, keep-ratio arm: the records of synth_en_scene3.py
resized to height 32 with their aspect ratio kept, in width buckets of 64 to 256 pixels.

Real crops range from 1:1 to more than 10:1; fixed-width inputs stretch short words and squeeze
long ones into 128 columns. This config trains the same records as configs/synth_en_scene3.py,
from the same weights and with the same schedule, changing only the resizing, so that the two
runs measure what keep-ratio inputs are worth on real crops.

  python -m train.main --config configs/synth_en_scene3_keep_ratio.py \\
      --workdir ~/runs/synth_en_scene3_keep_ratio
  crnn-jax export --checkpoint ~/runs/synth_en_scene3_keep_ratio --format weights \\
      --output crnn_jax/weights/scene_en

It won the comparison and ships as `scene_en`.

Wall time and results are in the README (section "Reading photographs").
"""

from configs import synth_en_scene3


def get_config():
  config = synth_en_scene3.get_config()
  config.data.resize = "keep_ratio"
  config.data.max_width = 256
  config.data.bucket_widths = (64, 128, 192, 256)
  return config
