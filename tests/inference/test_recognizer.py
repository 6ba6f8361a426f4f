"""Tests for the Recognizer API, decoder selection, alignments and character spans."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import deploy_helpers
import crnn_jax
from crnn_jax import cli
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import alignment
from crnn_jax.decoding import decoder as decoder_lib
from crnn_jax.decoding import greedy
from crnn_jax.models import crnn

CHARSET = Charset("abc")


@pytest.fixture(scope="module")
def recognizer(tiny_workdir):
  return crnn_jax.Recognizer.from_checkpoint(tiny_workdir)


@pytest.mark.slow
def test_import_is_lazy_and_flags_apply_first():
  code = ("import os, sys, crnn_jax\n"
          "assert 'jax' not in sys.modules\n"
          "assert 'ynn_fusion_type' in os.environ['XLA_FLAGS']\n"
          "r = crnn_jax.Recognizer\n"
          "assert 'jax' in sys.modules and r.__module__ == 'crnn_jax.inference.recognizer'\n")
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "CRNN_JAX_NO_XLA_FLAGS")}
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
  assert result.returncode == 0, result.stderr[-2000:]


def test_recognize_any_input_equals_model_greedy(tiny_workdir, tmp_path):
  recognizer = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="greedy")
  gray = deploy_helpers.text_images(5, [120, 40, 300])
  path = tmp_path / "a.png"
  Image.fromarray(gray[0]).save(path)
  tall = np.asarray(Image.fromarray(gray[1]).resize((80, 64)))  # Resized to 32 x 40.
  color = np.repeat(gray[2][:, :, None], 3, axis=2)
  inputs = [str(path), Image.fromarray(gray[1]), tall, color, gray[2].astype(np.float32) / 255]
  predictions = recognizer.recognize(inputs, batch_size=2)
  assert len(predictions) == 5
  arrays = [recognizer.preprocess(x) for x in inputs]
  for array, p in zip(arrays, predictions):
    logits, lengths = deploy_helpers.model_logits(
        tiny_workdir, array[None, :, :, None], np.array([array.shape[1]], np.int32))
    frames = logits[0, :lengths[0]]
    best = frames.argmax(-1)
    assert p.text == recognizer.charset.decode(greedy.collapse_path(best))
    log_probs = greedy.log_softmax(frames)
    assert p.confidence == pytest.approx(np.exp(log_probs.max(-1).sum()), rel=1e-3)
    assert p.path == alignment.frame_path(best, recognizer.charset)
    assert p.model_width == array.shape[1]
  assert predictions[0].input_width == 120 and predictions[2].input_width == 80
  assert predictions[3].text == predictions[4].text  # Same pixels, uint8 color vs float gray.


def test_spans_map_frames_to_input_columns(recognizer):
  image = deploy_helpers.text_images(7, [150])[0]
  doubled = np.asarray(Image.fromarray(image).resize((300, 64), Image.BILINEAR))
  for p, input_width in zip(recognizer.recognize([image, doubled]), (150, 300)):
    assert p.text and len(p.spans) == len(p.text)
    assert "".join(s.char for s in p.spans) == p.text
    scale = input_width / p.model_width
    previous_last = -1
    for s in p.spans:
      assert previous_last < s.first_frame <= s.last_frame < len(p.path)
      assert set(p.path[s.first_frame:s.last_frame + 1]) == {s.char}
      x0, x1 = crnn.frame_columns(s.first_frame, s.last_frame, p.model_width)
      assert (s.x0, s.x1) == pytest.approx((x0 * scale, x1 * scale))
      assert 0 <= s.x0 < s.x1 <= input_width
      previous_last = s.last_frame


def test_recognizer_beam_and_lexicon(tiny_workdir, recognizer):
  images = deploy_helpers.text_images(3, [100, 64, 180])
  best = recognizer.recognize(images)
  beam1 = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="beam", beam_width=1)
  lexicon = ["abc", "hello", best[1].text, "zz9"]
  lex = crnn_jax.Recognizer.from_checkpoint(tiny_workdir, decoder="lexicon", lexicon=lexicon)
  charset = recognizer.charset
  for p in beam1.recognize(images):
    # The alignment is a path of the decoded text.
    path_ids = [0 if c == "-" else charset.chars.index(c) + 1 for c in p.path]
    assert greedy.collapse_path(path_ids) == charset.encode(p.text)
    assert "".join(s.char for s in p.spans) == p.text
    assert 0 < p.confidence <= 1
  words = lex.recognize(images)
  assert all(p.text in lexicon for p in words)
  assert words[1].text == best[1].text  # The greedy output itself is in the lexicon.
  per_image = lex.recognize(images, lexicons=[["only"], None, ["one", "two"]])
  assert per_image[0].text == "only" and per_image[1].text in lexicon
  assert per_image[2].text in ("one", "two")
  for p in per_image:
    if p.spans:
      assert "".join(s.char for s in p.spans) == p.text


def test_eval_cli_reports_each_decoder(tiny_workdir, tmp_path, capsys):
  lexicon = tmp_path / "lexicon.txt"
  lexicon.write_text("hello\nworld\nabc\n")
  output = tmp_path / "metrics.json"
  assert cli.main(["eval", "--checkpoint", str(tiny_workdir), "--num-records", "8",
                   "--batch-size", "8", "--decoder", "greedy,beam", "--decoder", "lexicon",
                   "--lexicon", str(lexicon), "--beam-width", "3", "--output",
                   str(output)]) == 0
  metrics = json.loads(output.read_text())
  assert set(metrics["decoders"]) == {"greedy", "beam3", "lexicon"}
  # The decoder path's greedy metrics equal the standard evaluator's.
  for key in ("word_accuracy", "one_minus_ned", "char_error_rate"):
    assert metrics["decoders"]["greedy"][key] == pytest.approx(metrics[key])
  assert metrics["decoders"]["lexicon"]["count"] == 8
  assert "lexicon" in capsys.readouterr().out
  assert cli.main(["eval", "--checkpoint", str(tiny_workdir), "--decoder", "lexicon"]) == 2


def test_predict_cli_with_decoder(tiny_workdir, tmp_path, capsys):
  path = tmp_path / "w.png"
  Image.fromarray(deploy_helpers.text_images(2, [90])[0]).save(path)
  lexicon = tmp_path / "lex.txt"
  lexicon.write_text("hello\nworld\n")
  assert cli.main(["predict", "--checkpoint", str(tiny_workdir), str(path), "--decoder", "lexicon",
                   "--lexicon", str(lexicon)]) == 0
  assert capsys.readouterr().out.split("\t")[1] in ("hello", "world")


def test_predict_lm_flags_reach_the_decoder():
  from crnn_jax.cli import predict  # pylint: disable=import-outside-toplevel
  parser = argparse.ArgumentParser()
  predict.add_predict_arguments(parser)
  kwargs = predict.recognizer_kwargs(parser.parse_args(["--lm-weight", "0.25",
                                                        "--length-bonus", "-1"]))
  # The decoder is built for the model's charset once it is known (lm for English models).
  assert callable(kwargs["decoder"])
  kwargs.pop("backend", None)
  recognizer = crnn_jax.Recognizer.from_model(None, None, Charset("abc"), compilation_cache=False,
                                              **kwargs)
  assert recognizer.decoder.name == "lm"
  assert recognizer.decoder.lm_weight == 0.25 and recognizer.decoder.length_bonus == -1.0


def test_far_too_wide_inputs_warn_once_with_the_count(recognizer, tiny_workdir, tmp_path, capsys):
  images = deploy_helpers.text_images(3, [100, 5000, 4000])
  # Keep-ratio: 1024 / 32.
  assert recognizer.max_aspect_ratio == recognizer.preprocessing.max_width / 32
  with pytest.warns(crnn_jax.inference.TooWideWarning, match=r"2 of 3 images .*\(up to 156:1\)"):
    predictions = recognizer.recognize(images)
  assert [p.too_wide for p in predictions] == [False, True, True]
  assert predictions[1].aspect_ratio == pytest.approx(5000 / 32)
  fixed = crnn_jax.Recognizer(recognizer.backend,
                              dataclasses.replace(recognizer.preprocessing, fixed_width=128),
                              recognizer.decoder)
  assert fixed.max_aspect_ratio == 10.0  # 2.5 x the 128 / 32 input shape.
  long_word = deploy_helpers.text_images(4, [400])[0]  # 12.5:1
  with pytest.warns(crnn_jax.inference.TooWideWarning, match="1 of 2 images"):
    flags = [p.too_wide for p in fixed.recognize([images[0], long_word])]
  assert flags == [False, True]
  # predict says it on stderr, once.
  for i, image in enumerate(images):
    Image.fromarray(image).save(tmp_path / f"{i}.png")
  assert cli.main(["predict", "--checkpoint", str(tiny_workdir), str(tmp_path)]) == 0
  err = capsys.readouterr().err
  assert err.count("warning: 2 of 3 images are wider than 32:1") == 1


def test_recognize_reports_unreadable_inputs_when_asked(recognizer, tmp_path):
  images = deploy_helpers.text_images(6, [100, 64, 180])
  paths = []
  for i, image in enumerate(images):
    paths.append(tmp_path / f"{i}.png")
    Image.fromarray(image).save(paths[-1])
  broken = tmp_path / "broken.png"
  broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
  inputs = [paths[0], broken, paths[1], paths[2]]
  with pytest.raises(ValueError, match="broken.png: cannot read image"):
    recognizer.recognize(inputs)
  reported = recognizer.recognize(inputs, errors="report")
  assert len(reported) == 4
  assert reported[1].text == "" and "broken.png: cannot read image" in reported[1].error
  alone = recognizer.recognize(paths)
  assert [p.error for p in alone] == ["", "", ""]
  assert [reported[i] for i in (0, 2, 3)] == alone  # The others read as without the bad file.
  lex = crnn_jax.Recognizer(recognizer.backend, recognizer.preprocessing,
                            decoder_lib.build_decoder(recognizer.charset, "lexicon",
                                                      lexicon=["abc"]))
  per_image = lex.recognize(inputs, lexicons=[["one"], ["bad"], ["two"], ["three"]],
                            errors="report")
  assert [p.text for p in per_image] == ["one", "", "two", "three"]  # Lexicons stay aligned.
  with pytest.raises(ValueError, match="errors must be"):
    recognizer.recognize(inputs, errors="ignore")
  with pytest.raises(ValueError, match="3 lexicons for 4 images"):
    lex.recognize(inputs, lexicons=[["a"]] * 3)


def test_default_decoder_follows_the_charset(recognizer):
  from crnn_jax.text.charset import Charset  # pylint: disable=import-outside-toplevel
  assert recognizer.decoder.name == "lm"  # 36 ASCII characters: the English language model.
  cjk = Charset("".join(chr(0x4E00 + i) for i in range(len(recognizer.charset))))
  other = crnn_jax.Recognizer.from_model(None, None, cjk, compilation_cache=False)
  assert other.decoder.name == "greedy"
  chosen = crnn_jax.Recognizer.from_model(None, None, recognizer.charset, decoder="beam",
                                          compilation_cache=False)
  assert chosen.decoder.name == "beam" and chosen.decoder.beam_width == 10


def test_the_next_batch_starts_before_the_current_one_is_decoded(recognizer, monkeypatch):
  events = []
  # pylint: disable-next=protected-access
  real_start, real_decode = recognizer._start_batch, recognizer.decoder.decode
  monkeypatch.setattr(recognizer, "_start_batch",
                      lambda arrays, idx, g: events.append(("start", len(idx)))
                      or real_start(arrays, idx, g))
  monkeypatch.setattr(recognizer.decoder, "decode",
                      lambda lp, ln, lex=None: events.append(("decode", len(ln)))
                      or real_decode(lp, ln, lex))
  arrays = [recognizer.preprocess(x) for x in deploy_helpers.text_images(4, [40] * 5)]
  predictions = recognizer.recognize_preprocessed(arrays, batch_size=2)
  assert events == [("start", 2), ("start", 2), ("decode", 2), ("start", 1), ("decode", 2),
                    ("decode", 1)]
  # Pipelining changes nothing read: the same as one batch at a time.
  one_by_one = [recognizer.recognize_preprocessed([a])[0] for a in arrays]
  assert [p.text for p in predictions] == [p.text for p in one_by_one]


def test_load_image_reads_bytes_as_files_and_names_each_failure(tmp_path):
  import io  # pylint: disable=import-outside-toplevel
  from crnn_jax import inference  # pylint: disable=import-outside-toplevel
  rgba = np.zeros((20, 50, 4), np.uint8)
  rgba[5:15, 5:45] = (30, 30, 30, 255)  # Dark ink; the rest transparent.
  buffer = io.BytesIO()
  Image.fromarray(rgba).save(buffer, format="PNG")
  path = tmp_path / "ink.png"
  path.write_bytes(buffer.getvalue())
  from_bytes = inference.load_image(buffer.getvalue(), name="upload")
  np.testing.assert_array_equal(from_bytes, inference.load_image(path))
  assert from_bytes[0, 0] == 255 and from_bytes[10, 10] == 30  # Composited onto white.
  big = io.BytesIO()
  Image.fromarray(np.zeros((300, 400), np.uint8)).save(big, format="PNG")
  cases = [(b"", "empty"), (b"not an image at all", "not_an_image"),
           (buffer.getvalue()[:80], "truncated"), (big.getvalue(), "too_many_pixels")]
  for data, reason in cases:
    with pytest.raises(inference.ImageError, match=r"^upload: cannot read image") as caught:
      inference.load_image(data, name="upload", max_pixels=100_000)
    assert caught.value.reason == reason
  assert inference.load_image(big.getvalue()).shape == (300, 400)  # No limit by default.
  empty = tmp_path / "empty.png"
  empty.write_bytes(b"")
  with pytest.raises(ValueError, match="empty.png: cannot read image \\(empty file\\)"):
    inference.load_image(empty)
  with pytest.raises(ValueError, match="missing.png: cannot read image"):
    inference.load_image(tmp_path / "missing.png")


def test_recognize_preprocessed_takes_another_decoder(recognizer):
  arrays = [recognizer.preprocess(x) for x in deploy_helpers.text_images(5, [60, 90])]
  lexicon = decoder_lib.Decoder(recognizer.charset, "lexicon", lexicon=["red", "green"])
  read = recognizer.recognize_preprocessed(arrays, decoder=lexicon)
  assert {p.text for p in read} <= {"red", "green"}
  assert recognizer.decoder.name == "lm"  # Its own decoder is unchanged...
  greedy_read = recognizer.recognize_preprocessed(
      arrays, decoder=decoder_lib.Decoder(recognizer.charset, "greedy"))
  own = crnn_jax.Recognizer(recognizer.backend, recognizer.preprocessing,
                            decoder_lib.build_decoder(recognizer.charset, "greedy"))
  assert greedy_read == own.recognize_preprocessed(arrays)  # ...and greedy reads as greedy.
