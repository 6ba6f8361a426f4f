"""The synthetic text engine: text sources per language, one renderer, font and background pools.

Where things are:

  params.py      RenderParams: every setting of the engine, named as `config.data.synthetic`
                 names them, checked once; SceneParams: the scene level's probabilities.
  sources.py     `source_from_config`: the source that `RenderParams.text` names.
  source_en.py   SyntheticTextSource: English record texts, each in a font covering the charset.
  text_en.py     EnTextSampler: words in case forms, digits, random strings; drawn-only
                 punctuation and prices.
  source_zh.py   ZhSyntheticSource: mixed Chinese/English/digit lines, each in a covering face.
  text_zh.py     the mixed-line sampler (jieba words, numbers, dates, units, ...; ZhTextMix).
  renderer.py    Renderer: a line at its level; Streams: one random stream per stage.
  grayscale.py   the print levels 'none', 'light', 'strong': one function per stage.
  scene.py       the 'scene' level (colour photographs of signs): one function per stage.
  glyph.py       glyph effects on the print text mask (weight, width, bleed, wobble).
  fonts.py, cjk_fonts.py, backgrounds.py, words.py, files.py: the pools drawn from.

To add an effect: a stage function in grayscale.py or scene.py that draws from its own stream
(`streams('my_effect')`), its probability and ranges in params.py (SceneParams). To add a kind
of text: a sampler (text_<lang>.py), a source class (source_<lang>.py) and its name in `sources.SOURCES` and
`params.TEXT_KINDS`. (Datasets on disk are the input pipeline's: `crnn_jax/data/sources.py`.)

The engine stands on the alphabets (`crnn_jax.text`) alone: it never imports the input
pipeline (`crnn_jax.data`), which imports it only where it builds a synthetic dataset, nor
training, evaluation or inference code (tests/test_layering.py). The contact sheet of what a
config renders is `crnn_jax/samples.py`, above both.
"""
