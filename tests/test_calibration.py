"""Tests of crnn_jax/calibration.py and of the Recognizer's calibrated confidence."""

import json

import numpy as np
import pytest

import deploy_helpers
import crnn_jax
from crnn_jax import calibration
from crnn_jax import pretrained
from crnn_jax import run_files
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import decoder as decoder_lib


def _overconfident(seed, count=4000):
  """Raw confidences c whose readings are right with probability sigmoid(3 log c + 0.5):
  c^3 e^0.5 / (1 + c^3 e^0.5), at most 0.62 (an overconfident decoder)."""
  rng = np.random.default_rng(seed)
  raw = rng.beta(2.0, 0.7, count)
  odds = raw**3 * np.exp(0.5)
  return raw, rng.random(count) < odds / (1 + odds)


def test_reliability_and_ece_by_hand():
  confidence = [0.05, 0.15, 0.95, 0.95, 1.0]
  correct = [False, True, True, False, True]
  rows = calibration.reliability(confidence, correct, bins=10)
  assert [r["count"] for r in rows] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]  # 1.0 in the last bin.
  assert rows[9]["accuracy"] == pytest.approx(2 / 3)
  assert rows[9]["confidence"] == pytest.approx((0.95 + 0.95 + 1.0) / 3)
  expected = (0.05 + 0.85 + 3 * abs(2 / 3 - 2.9 / 3)) / 5
  assert calibration.expected_calibration_error(confidence, correct) == pytest.approx(expected)
  with pytest.raises(ValueError, match="2 confidences for 1"):
    calibration.reliability([0.1, 0.2], [True])


@pytest.mark.parametrize("method", calibration.METHODS)
def test_fitted_maps_are_monotone_and_keep_empty_readings_at_zero(method):
  raw, correct = _overconfident(0, 1000)
  fitted = calibration.fit(raw, correct, method)
  grid = np.concatenate([[0.0, 1e-30, 1e-12, 1e-6], np.linspace(1e-3, 1.0, 2000)])
  mapped = fitted(grid)
  assert mapped[0] == 0.0
  assert np.all(np.diff(mapped) >= 0), method
  assert np.all((mapped >= 0) & (mapped <= 1))
  assert mapped[-1] > mapped[100] + 0.2  # Not a constant map.
  again = calibration.ConfidenceMap.from_dict(json.loads(json.dumps(fitted.to_dict())))
  np.testing.assert_allclose(again(grid), mapped)


@pytest.mark.parametrize("method", calibration.METHODS)
def test_fit_reduces_the_calibration_error_on_new_data(method):
  raw, correct = _overconfident(1)
  fitted = calibration.fit(raw, correct, method)
  test_raw, test_correct = _overconfident(2)
  before = calibration.expected_calibration_error(test_raw, test_correct)
  after = calibration.expected_calibration_error(fitted(test_raw), test_correct)
  assert before > 0.15
  assert after < 0.03 and after < before / 5, (before, after)


def test_fit_and_map_errors():
  with pytest.raises(ValueError, match="both right and wrong"):
    calibration.fit_platt(np.full(50, 0.9), np.ones(50, bool))
  with pytest.raises(ValueError, match="not increasing"):  # Higher confidence, more errors.
    raw = np.linspace(0.01, 1.0, 200)
    calibration.fit_platt(raw, raw < 0.5)
  with pytest.raises(ValueError, match="a > 0"):
    calibration.ConfidenceMap("platt", {"a": -1.0, "b": 0.0})
  with pytest.raises(ValueError, match="non-decreasing"):
    calibration.ConfidenceMap("isotonic", {"x": [-2.0, -1.0], "y": [0.8, 0.2]})
  with pytest.raises(ValueError, match="method"):
    calibration.fit([0.5] * 20, [True, False] * 10, "temperature")


def test_calibration_file_errors_name_the_file(tmp_path):
  path = tmp_path / calibration.CALIBRATION_FILE
  path.write_text("{not json")
  with pytest.raises(ValueError, match="calibration.json is not valid JSON"):
    calibration.Calibration.load(path)
  path.write_text(json.dumps({"format": 99}))
  with pytest.raises(ValueError, match="calibration.json: unknown calibration format 99"):
    calibration.Calibration.load(path)
  path.write_text(json.dumps({"format": 1, "decoders": {"lm": {"method": "platt", "a": 1}}}))
  with pytest.raises(ValueError, match="calibration.json: decoder 'lm': .* needs b"):
    calibration.Calibration.load(path)


@pytest.fixture(scope="module")
def calibrated_weights(tiny_workdir, tmp_path_factory):
  """The tiny model's weights with a calibration.json: a Platt map for greedy and for lm."""
  directory = run_files.export_checkpoint(tiny_workdir, tmp_path_factory.mktemp("w") / "tiny",
                                          dtype="float32")
  maps = {"greedy": calibration.ConfidenceMap("platt", {"a": 0.5, "b": 2.0}),
          "lm": calibration.ConfidenceMap("platt", {"a": 0.3, "b": 1.0})}
  settings = {"greedy": {}, "lm": {"beam_width": 32, "lm_weight": 0.5, "length_bonus": 1.5}}
  calibration.Calibration(maps, settings, {"fitted_on": "a test"}).save(
      directory / calibration.CALIBRATION_FILE)
  return directory, maps


@pytest.mark.parametrize("decoder", ["greedy", "lm"])
def test_recognizer_reports_calibrated_confidence(calibrated_weights, decoder):
  directory, maps = calibrated_weights
  images = deploy_helpers.text_images(4, [90, 40, 200, 64])
  calibrated = crnn_jax.Recognizer.from_pretrained(directory, decoder=decoder)
  raw = crnn_jax.Recognizer.from_pretrained(directory, decoder=decoder, calibration=None)
  assert calibrated.confidence_map() is not None and raw.confidence_map() is None
  got, reference = calibrated.recognize(images), raw.recognize(images)
  assert [p.text for p in got] == [p.text for p in reference]
  np.testing.assert_allclose([p.raw_confidence for p in got],
                             [p.confidence for p in reference], rtol=1e-6)
  np.testing.assert_allclose([p.confidence for p in got],
                             maps[decoder]([p.confidence for p in reference]), rtol=1e-6)
  # A random model's readings are unlikely (raw 1e-35 to 1e-9): the maps raise them.
  assert all(p.confidence > 2 * p.raw_confidence for p in got if p.raw_confidence > 0)
  assert all(p.raw_confidence == p.confidence for p in reference)


def test_other_decoder_settings_report_raw_confidence(calibrated_weights):
  directory, _ = calibrated_weights
  recognizer = crnn_jax.Recognizer.from_pretrained(directory, decoder="lm", lm_weight=0.8)
  assert recognizer.confidence_map() is None  # Fitted at lm_weight 0.5.
  beam = decoder_lib.Decoder(recognizer.charset, "beam")
  assert recognizer.confidence_map(beam) is None  # No map for beam decoding.
  greedy = decoder_lib.Decoder(recognizer.charset, "greedy")
  assert recognizer.confidence_map(greedy) is recognizer.calibration.maps["greedy"]
  [p] = recognizer.recognize(deploy_helpers.text_images(5, [80]))
  assert p.confidence == p.raw_confidence


def test_shipped_models_calibrate_their_default_decoders():
  for name in pretrained.available():
    fitted = calibration.load_for(pretrained.resolve(name))
    assert fitted is not None, f"{name} has no {calibration.CALIBRATION_FILE}"
    charset = Charset.from_config(pretrained.load_config(name).text)
    for decoder in ("greedy", decoder_lib.default_name(charset)):
      assert fitted.map_for(decoder_lib.Decoder(charset, decoder)) is not None, (name, decoder)
    assert "synthetic" in fitted.info["fitted_on"]


def test_onnx_export_carries_the_maps(calibrated_weights, tmp_path):
  pytest.importorskip("onnx")
  pytest.importorskip("onnxruntime")
  from crnn_jax import cli  # pylint: disable=import-outside-toplevel
  directory, _ = calibrated_weights
  path = tmp_path / "tiny.onnx"
  assert cli.main(["export", "--weights", str(directory), "--format", "onnx",
                   "--output", str(path)]) == 0
  images = deploy_helpers.text_images(6, [70, 150])
  from_onnx = crnn_jax.Recognizer.from_onnx(path, decoder="greedy")
  reference = crnn_jax.Recognizer.from_pretrained(directory, decoder="greedy")
  assert from_onnx.confidence_map() is not None
  got, expected = from_onnx.recognize(images), reference.recognize(images)
  np.testing.assert_allclose([p.confidence for p in got], [p.confidence for p in expected],
                             rtol=1e-3)
  assert crnn_jax.Recognizer.from_onnx(path, calibration=None).confidence_map() is None
