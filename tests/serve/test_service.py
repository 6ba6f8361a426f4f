"""Tests of crnn_jax/serve/service.py: uploads read as predict reads files, input errors named,
decoders and lexicons, and a warm-up after which serving compiles nothing."""

import concurrent.futures
import io

import numpy as np
from PIL import Image
import pytest

from crnn_jax.serve import service as service_lib
import deploy_helpers
from serve.conftest import encode, word_images


def _read(service, uploads, decoder="greedy", lexicon=None, model=None):
  model = service.model(model)
  jobs = service.prepare(model, uploads, lexicon)
  return [f.result(60) for f in service.submit(model, decoder, jobs)]


def test_uploads_read_as_predict_reads_the_same_files(make_service, tiny_recognizer, tmp_path):
  service = make_service()
  service.start(background=False)
  gray = deploy_helpers.text_images(11, [90, 150, 40])
  rgba = np.zeros((32, 120, 4), np.uint8)
  rgba[..., 3] = 0
  rgba[8:24, 10:110, 3] = 255  # Dark ink on a transparent background.
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: the stored pixels are turned; upright it is 100 x 32.
  portrait = Image.fromarray(np.rot90(deploy_helpers.text_images(12, [100])[0], -1))
  buffer = io.BytesIO()
  portrait.save(buffer, format="JPEG", exif=exif, quality=95)
  uploads = [encode(gray[0]), encode(gray[1], "JPEG"), encode(rgba), buffer.getvalue(),
             encode(gray[2], "BMP")]
  paths = []
  for i, data in enumerate(uploads):
    paths.append(tmp_path / f"{i}.img")
    paths[-1].write_bytes(data)
  served = _read(service, [(f"image {i}", data) for i, data in enumerate(uploads)])
  predicted = tiny_recognizer.recognize(paths)  # What `crnn-jax predict` prints.
  assert [p.text for p in served] == [p.text for p in predicted]
  assert [p.confidence for p in served] == pytest.approx([p.confidence for p in predicted])
  assert [p.spans for p in served] == [p.spans for p in predicted]
  assert served[3].input_width == 100  # Read upright, as its EXIF tag says.
  assert [p.model_width for p in served] == [90, 150, 120, 100, 40]


@pytest.mark.parametrize("data, reason, status", [
    (b"", "empty", 400),
    (b"GIF89a not really a gif", "not_an_image", 400),
    (encode(deploy_helpers.text_images(1, [200])[0])[:120], "truncated", 400),
    (encode(np.zeros((1200, 1000), np.uint8)), "too_many_pixels", 413),  # 1.2 M > 1 M pixels.
])
def test_bad_images_are_refused_naming_the_image(make_service, data, reason, status):
  service = make_service()
  good = word_images(2, [64])[0]
  with pytest.raises(service_lib.RequestError) as caught:
    service.prepare(service.model(None), [("image 0 ('ok.png')", good),
                                          ("image 1 ('bad.png')", data)])
  error = caught.value
  assert (error.status, error.reason, error.image) == (status, reason, 1)
  assert str(error).startswith("image 1 ('bad.png'): cannot read image")


def test_models_decoders_and_lexicons_are_checked(make_service, tiny_recognizer):
  service = make_service()
  service.start(background=False)
  model = service.model(None)
  assert model.name == "tiny" and service.model("tiny") is model
  with pytest.raises(service_lib.RequestError, match="unknown model 'nope'.*tiny"):
    service.model("nope")
  with pytest.raises(service_lib.RequestError, match="unknown decoder 'viterbi'") as caught:
    service.decoder(model, "viterbi", None)
  assert caught.value.reason == "unknown_decoder"
  assert service.decoder(model, None, None) == "greedy"
  with pytest.raises(service_lib.RequestError, match="needs a word list"):
    service.decoder(model, "lexicon", None)
  with pytest.raises(service_lib.RequestError, match="no word of the lexicon"):
    service.decoder(model, "lexicon", ("ÆØÅ", "€€"))  # Outside the tiny model's charset.
  lexicon = service_lib.parse_lexicon("hello, world\nfoo", 10)
  assert lexicon == ("hello", "world", "foo")
  assert service.decoder(model, "lexicon", lexicon) == "lexicon"
  images = [(f"image {i}", data) for i, data in enumerate(word_images(3, [60, 90, 120]))]
  read = _read(service, images, "lexicon", lexicon)
  assert all(p.text in lexicon for p in read)
  # Each decoder reads the batch as the Recognizer with that decoder reads it.
  for name in ("greedy", "beam"):
    served = _read(service, images, name)
    expected = tiny_recognizer.recognize_preprocessed(
        [tiny_recognizer.prepare(Image.open(io.BytesIO(d)))[0] for _, d in images],
        decoder=model.decoders[name])
    assert [p.text for p in served] == [p.text for p in expected]
  with pytest.raises(service_lib.RequestError, match="at most 2"):
    service_lib.parse_lexicon(["a", "b", "c"], 2)
  with pytest.raises(service_lib.RequestError, match="list of strings"):
    service_lib.parse_lexicon([1, 2], 10)


def test_build_model_offers_the_decoders_asked_for(tiny_recognizer):
  model = service_lib.build_model("m", tiny_recognizer, decoder_names=("greedy", "beam"))
  assert list(model.decoders) == ["greedy", "beam"] and model.default_decoder == "greedy"
  with pytest.raises(ValueError, match="not among the decoders"):
    service_lib.build_model("m", tiny_recognizer, default_decoder="lm",
                            decoder_names=("greedy",))
  with pytest.raises(ValueError, match="unknown decoder"):
    service_lib.build_model("m", tiny_recognizer, decoder_names=("greedy", "ctc"))
  with pytest.raises(ValueError, match="unique"):
    service_lib.Service([model, model])


def test_after_the_warm_up_serving_compiles_nothing(make_service, tiny_recognizer):
  service = make_service(warmup_max_width=128)
  # Rows 1, 4 (max_batch 4) x padded widths 32..128 x the greedy and log-prob programs.
  assert len(service.programs) == 2 * 4 * 2
  assert {(p.kind, p.rows, p.width) for p in service.programs} == {
      (k, r, w) for k in ("greedy", "log_probs") for r in (1, 4) for w in (32, 64, 96, 128)}
  assert not service.ready
  service.start(background=False)
  assert service.ready and service.warmed == len(service.programs)
  compiled = (tiny_recognizer.backend._best_paths._cache_size(),  # pylint: disable=protected-access
              tiny_recognizer.backend._log_probs._cache_size())  # pylint: disable=protected-access
  model = service.model(None)
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    requests = []
    for seed, widths in enumerate([[20], [64, 100], [128, 33, 70], [90] * 4, [128] * 3,
                                   [40] * 2]):
      uploads = [(f"image {i}", d) for i, d in enumerate(word_images(seed, widths))]
      for decoder in ("greedy", "beam"):
        requests.append(pool.submit(_read, service, uploads, decoder))
    assert all(len(r.result(60)) >= 1 for r in requests)
  assert (tiny_recognizer.backend._best_paths._cache_size(),  # pylint: disable=protected-access
          tiny_recognizer.backend._log_probs._cache_size()) == compiled  # pylint: disable=protected-access
  service.drain()
  assert not service.ready
  del model


@pytest.mark.parametrize("max_batch, sizes", [(1, [1]), (2, [1, 2]), (4, [1, 4]), (8, [1, 4, 8]),
                                              (12, [1, 4, 8]), (16, [1, 4, 16]),
                                              (32, [1, 4, 16, 32]), (64, [1, 4, 16, 64])])
def test_batch_sizes_are_few_powers_of_two(max_batch, sizes):
  assert service_lib.batch_sizes(max_batch) == sizes
