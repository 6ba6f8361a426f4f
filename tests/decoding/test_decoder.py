"""Tests of crnn_jax/decoding/decoder.py: the Decoder facade, per-image lexicons, make_predict."""

import numpy as np
import pytest

from crnn_jax.text.charset import Charset
from crnn_jax.decoding import char_lm
from crnn_jax.decoding import decoder
from crnn_jax.decoding import greedy

CHARSET = Charset("abc")


def test_decoders_on_hand_built_tables():
  # Frames favour 'a' | blank | 'a' slightly, so the best path is "aa" but p("a") is larger.
  probs = np.array([[0.3, 0.7, 0.0, 0.0], [0.4, 0.6, 0.0, 0.0], [0.3, 0.7, 0.0, 0.0]])
  log_probs = np.log(np.maximum(probs, 1e-12))[None].astype(np.float32)
  lengths = np.array([3])
  [best] = decoder.Decoder(CHARSET, "greedy").decode(log_probs, lengths)
  assert best.text == "a" and best.confidence == pytest.approx(0.7 * 0.6 * 0.7, rel=1e-5)
  [beam] = decoder.Decoder(CHARSET, "beam", beam_width=4).decode(log_probs, lengths)
  p_a = 1 - 0.3 * 0.4 * 0.3 - 0.7 * 0.4 * 0.7  # All paths but "---" and "a-a".
  assert beam.text == "a" and beam.confidence == pytest.approx(p_a, rel=1e-4)
  lexicon = decoder.Decoder(CHARSET, "lexicon", lexicon=["aa", "b", "ab"])
  [word] = lexicon.decode(log_probs, lengths)
  assert word.text == "aa" and word.confidence == pytest.approx(0.7 * 0.4 * 0.7, rel=1e-3)
  # Per-image lexicons override the global one.
  [word] = lexicon.decode(log_probs, lengths, lexicons=[["b", "c"]])
  assert word.text in ("b", "c")
  with pytest.raises(ValueError, match="needs a lexicon"):
    decoder.Decoder(CHARSET, "lexicon").decode(log_probs, lengths)
  with pytest.raises(ValueError, match="decoder must be one of"):
    decoder.Decoder(CHARSET, "viterbi")


def test_image_lexicon_file_and_batches(tmp_path):
  path = tmp_path / "lex.tsv"
  path.write_text("# comment\nimg1.png\tfoo bar,baz\n7\tabc\n", encoding="utf-8")
  assert decoder.load_image_lexicons(path) == {"img1.png": ["foo", "bar", "baz"], "7": ["abc"]}
  (tmp_path / "bad.tsv").write_text("no tab here\n")
  with pytest.raises(ValueError, match="bad.tsv:1"):
    decoder.load_image_lexicons(tmp_path / "bad.tsv")
  lexicons = decoder.load_image_lexicons(path)
  batch = {"image": np.zeros((2, 32, 8, 1)), "mask": np.ones(2, bool),
           "key": np.array(["img1.png", "other"], dtype=object)}
  assert decoder.lexicons_for_batch(batch, lexicons, 0) == [["foo", "bar", "baz"], None]
  del batch["key"]
  assert decoder.lexicons_for_batch(batch, lexicons, 6) == [None, ["abc"]]


def test_make_predict():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 4)).astype(np.float32) * 3
  lengths = np.array([5, 4, 2])
  batch = {"image": np.zeros((3, 32, 16, 1), np.float32), "width": np.array([16, 12, 4]),
           "text": np.array(["ab", "c", "a"], dtype=object), "mask": np.array([1, 1, 0], bool)}
  fn = lambda images, widths: (logits, lengths)
  texts, confidences = decoder.make_predict(fn, decoder.Decoder(CHARSET, "greedy"))(batch)
  greedy_texts = [CHARSET.decode(greedy.collapse_path(logits[b, :lengths[b]].argmax(-1)))
                  for b in range(2)]
  assert texts == greedy_texts + [""]  # The masked row is not decoded.
  assert confidences[2] == 0.0 and confidences.dtype == np.float32
  # Per-image lexicons by position, without a global lexicon.
  predict = decoder.make_predict(fn, decoder.Decoder(CHARSET, "lexicon"),
                                 {"0": ["cc"], "1": ["bb", "b"]})
  texts, confidences = predict(batch)
  assert texts[:2] == ["cc", texts[1]] and texts[1] in ("bb", "b") and texts[2] == ""
  assert confidences.shape == (3,)


def _two_readings(p_second_letter_wrong):
  """Frames for 'cfnter' vs 'center': the second letter's frame favours 'f' slightly."""
  charset = Charset("abcdefghijklmnopqrstuvwxyz")
  word = "center"
  frames = np.full((2 * len(word), charset.num_classes), 1e-6)
  for i, char in enumerate(word):
    frames[2 * i, charset.encode(char)[0]] = 1.0
    frames[2 * i + 1, 0] = 1.0  # Blank between letters.
  frames[2, charset.encode("e")[0]] = 1 - p_second_letter_wrong
  frames[2, charset.encode("f")[0]] = p_second_letter_wrong
  frames /= frames.sum(-1, keepdims=True)
  return charset, np.log(frames)[None].astype(np.float32), np.array([frames.shape[0]])


def test_lm_decoder_rescores_the_beam_with_the_language_model():
  from crnn_jax.decoding import char_lm  # pylint: disable=import-outside-toplevel
  charset, log_probs, lengths = _two_readings(0.6)
  lm = char_lm.CharNgramLM(["center", "enter", "centre", "tent"], order=4)
  [greedy_out] = decoder.Decoder(charset, "greedy").decode(log_probs, lengths)
  assert greedy_out.text == "cfnter"
  without = decoder.Decoder(charset, "lm", lm_weight=0.0, length_bonus=0.0, language_model=lm)
  [beam_out] = decoder.Decoder(charset, "beam", beam_width=32).decode(log_probs, lengths)
  assert without.decode(log_probs, lengths)[0] == beam_out  # Weight 0: the beam's best.
  lm_decoder = decoder.Decoder(charset, "lm", language_model=lm)
  [out] = lm_decoder.decode(log_probs, lengths)
  assert out.text == "center"
  assert out.confidence == pytest.approx(0.4, rel=1e-3)  # p(l | y) of 'center' itself.
  assert out.labels == tuple(charset.encode("center"))
  assert lm_decoder.label == "lm32" and lm_decoder.beam_width == decoder.DEFAULT_LM_BEAM_WIDTH
  # Strong evidence wins over the language model.
  charset, log_probs, lengths = _two_readings(0.999)
  assert lm_decoder.decode(log_probs, lengths)[0].text == "cfnter"
  with pytest.raises(ValueError, match="lm weight"):
    decoder.Decoder(charset, "lm", lm_weight=-1.0, language_model=lm)


def test_lm_decoder_length_bonus_and_batches():
  from crnn_jax.decoding import char_lm  # pylint: disable=import-outside-toplevel
  charset, log_probs, lengths = _two_readings(0.6)
  lm = char_lm.CharNgramLM(["center"], order=3)
  batch = np.concatenate([log_probs, log_probs])
  out = decoder.Decoder(charset, "lm", language_model=lm).decode(batch, np.array([12, 0]))
  assert out[0].text == "center"
  assert out[1].text == "" and out[1].confidence == 0.0  # No frames: empty, confidence 0.
  # A large negative bonus per character makes the shortest hypothesis win.
  short = decoder.Decoder(charset, "lm", language_model=lm, length_bonus=-100.0)
  assert len(short.decode(log_probs, lengths)[0].text) < len("center")


def test_default_decoder_by_charset():
  assert decoder.default_name(Charset("0123456789abcXYZ!?")) == "lm"
  assert decoder.default_name(Charset("abc中文")) == "greedy"
  assert decoder.default_name(Charset("abc\u00e9")) == "greedy"  # Not ASCII: no English model.
  assert char_lm.is_english(" 09azAZ~") and not char_lm.is_english("abc\t")
  from crnn_jax.text import zh_charset  # pylint: disable=import-outside-toplevel
  # zh_en's mixed-line model is its default decoder too, with a lighter weight.
  zh_en = Charset(zh_charset.ZH_EN_CHARS)
  assert char_lm.has_model(zh_charset.ZH_EN_CHARS)
  assert decoder.default_name(zh_en) == "lm"
  assert decoder.default_lm_weight(zh_en) == decoder.ZH_EN_LM_WEIGHT == 0.1
  english = Charset("0123456789abcXYZ!?")
  assert decoder.default_lm_weight(english) == decoder.DEFAULT_LM_WEIGHT == 0.5
  assert decoder.build_decoder(english, "lm", language_model=object()).lm_weight == 0.5
  assert decoder.build_decoder(english, "lm", lm_weight=0.2,
                               language_model=object()).lm_weight == 0.2
