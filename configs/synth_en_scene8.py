"""Eighth stage of the scene-text recognizer: stage 5's records drawn from the 'signage' pool.

Stages 5 to 7 levelled off at 66-67% on SVT-train, whose errors are mostly sign faces that
no pool font resembles (heavy serifs, Gill- and Futura-like capitals, extended grotesques).
Typeface variety is what moved the print model most (synth_en's third stage). This stage
adds 52 families from Debian font packages to the 'scene' pool's 114
(`fonts.SIGNAGE_DEBIAN_FONTS`, 207 files), with stage 5's text and effects, from new records,
starting from stage 5's final checkpoint (then shipped as `scene_en`) with stage 2's peak
learning rate (new faces to learn, not a polish).

  apt-get install fonts-adf-accanthis fonts-adf-baskervald fonts-adf-berenis \\
      fonts-adf-gillius fonts-adf-ikarius fonts-adf-libris fonts-adf-mekanus \\
      fonts-adf-oldania fonts-adf-romande fonts-adf-switzera fonts-adf-tribun \\
      fonts-adf-universalis fonts-adf-verana fonts-beteckna fonts-cabinsketch \\
      fonts-cantarell fonts-crosextra-carlito fonts-gemunu-libre fonts-hack fonts-jura \\
      fonts-leckerli-one fonts-linuxlibertine fonts-lobstertwo fonts-mplus fonts-noto-core \\
      fonts-ocr-b fonts-oldstandard fonts-play fonts-quattrocento fonts-radisnoir \\
      fonts-reggae fonts-sil-andika fonts-sil-charis fonts-sil-gentiumplus fonts-sora \\
      fonts-staypuft fonts-tlwg-garuda-ttf fonts-tlwg-kinnari-ttf fonts-tlwg-laksaman-ttf \\
      fonts-tlwg-loma-ttf fonts-tlwg-sawasdee-ttf fonts-tlwg-umpush-ttf fonts-tlwg-waree-ttf
  python -m train.main --config configs/synth_en_scene8.py --workdir ~/runs/synth_en_scene8

1 h 21 min on a 2-core Intel Xeon with AVX-512 (3.45 s per step). It did not move stage 5
(IIIT5k-train 90.80%, SVT-train 66.54%, heldout_en 98.33% at step 1400, float32), so it is not
shipped; stage 9 (configs/synth_en_scene9.py) continues from it. Set-up otherwise as for
configs/synth_en_scene.py. Results are in the README (section "Reading photographs", stage 8).
"""

from configs import synth_en_scene5


def get_config():
  config = synth_en_scene5.get_config()
  config.init_weights = "~/runs/synth_en_scene5"  # Stage 5, shipped as scene_en until stage 9.
  config.data.train_seed = 1010
  config.data.synthetic.font_pool = "signage"
  config.num_train_steps = 1400
  config.optimizer.learning_rate = 3e-4
  config.checkpoint_every_steps = 200
  config.eval_every_steps = 1400
  return config
