"""Alphabets: the ground floor that every part of the package reads its characters from.

  charset.py      `Charset`: text <-> class ids (blank 0), case folding, charset files; the
                  named alphabets `ALPHANUMERIC_36` and `ALPHANUMERIC_62`.
  zh_charset.py   the zh_en charset (GB2312 level 1, ASCII, Chinese marks) and the fold of
                  East Asian width variants onto it.
  charsets/       the charset files shipped with the package (`zh_en.txt`).

It imports nothing else of crnn_jax (tests/test_layering.py): the input pipeline, the synthetic
engine, the models, the decoders and the evaluation all stand on it.
"""
