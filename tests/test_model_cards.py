"""Every shipped model carries its provenance: a MODEL_CARD.md that names its weights file by
SHA-256, and an info.json without paths of the machine it was trained on."""

import json
import re

import pytest

from crnn_jax import pretrained
from crnn_jax import run_files
from crnn_jax.decoding import char_lm

SHIPPED = pretrained.available()


def test_models_are_shipped():
  assert pretrained.DEFAULT_MODEL in SHIPPED and len(SHIPPED) >= 2


def _strings(value):
  if isinstance(value, dict):
    for item in value.values():
      yield from _strings(item)
  elif isinstance(value, list):
    for item in value:
      yield from _strings(item)
  elif isinstance(value, str):
    yield value


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_names_the_weights_by_sha256(name):
  directory = pretrained.resolve(name)
  card = directory / pretrained.MODEL_CARD_FILE
  assert card.is_file(), f"{directory} has no {pretrained.MODEL_CARD_FILE}"
  text = card.read_text()
  found = re.findall(r"^- \*\*sha256 of variables\.msgpack\*\*: `([0-9a-f]{64})`$", text, re.M)
  assert found == [pretrained.sha256_file(directory / pretrained.VARIABLES_FILE)], (
      f"{card}: the sha256 line must match {pretrained.VARIABLES_FILE}")
  for heading in ("## Recipe", "## Evaluation", "## Decoder and language model",
                  "## Reliability", "## Intended use", "## Known failure modes"):
    assert f"\n{heading}" in text, f"{card} lacks the section {heading!r}"


@pytest.mark.parametrize("name", SHIPPED)
def test_model_card_records_the_language_model_version(name):
  text = (pretrained.resolve(name) / pretrained.MODEL_CARD_FILE).read_text()
  chars = pretrained.load_config(name).text.charset
  if all(" " <= c <= "~" for c in chars):
    assert char_lm.ENGLISH_WORDLIST_SHA256 in text
  else:  # zh_en: the lm decoder's model of mixed lines.
    assert char_lm.CHINESE_LM_SOURCE in " ".join(text.split())


@pytest.mark.parametrize("name", SHIPPED)
def test_info_json_holds_no_machine_path(name):
  info = pretrained.info(name)
  assert info["step"] > 0 and info["dtype"] in pretrained.DTYPES
  for value in _strings(info):
    assert not pretrained.is_machine_path(value), (name, value)
  assert info["variables_sha256"] == pretrained.sha256_file(
      pretrained.resolve(name) / pretrained.VARIABLES_FILE)


def test_export_writes_the_run_name_not_its_path(tiny_workdir, tmp_path):
  assert tiny_workdir.is_absolute()
  out = run_files.export_checkpoint(tiny_workdir, tmp_path / "w")
  info = json.loads((out / pretrained.INFO_FILE).read_text())
  assert info["run"] == tiny_workdir.name and info["step"] == 0
  assert not [v for v in _strings(info) if pretrained.is_machine_path(v)]
  assert str(tmp_path) not in json.dumps(info) and str(tiny_workdir) not in json.dumps(info)
  assert info["variables_sha256"] == pretrained.sha256_file(out / pretrained.VARIABLES_FILE)
  extra = pretrained.save(tmp_path / "x", pretrained.load_config(out), pretrained.load(out)[1],
                          info={"weights": str(out), "home": "~/runs/a", "name": "synth_en"})
  info = json.loads((extra / pretrained.INFO_FILE).read_text())
  assert (info["weights"], info["home"], info["name"]) == ("w", "a", "synth_en")


def test_machine_paths():
  assert pretrained.is_machine_path("/root/runs/synth_en_scene9")
  assert pretrained.is_machine_path("~/runs/x") and pretrained.is_machine_path("C:\\runs\\x")
  assert not pretrained.is_machine_path("runs/synth_en_wide")
  assert not pretrained.is_machine_path("bfloat16")
  assert pretrained.portable("/root/runs/synth_en_scene9/") == "synth_en_scene9"


def test_cards_and_calibration_maps_are_package_data():
  import fnmatch  # pylint: disable=import-outside-toplevel
  import pathlib  # pylint: disable=import-outside-toplevel
  import tomllib  # pylint: disable=import-outside-toplevel
  root = pathlib.Path(__file__).resolve().parents[1]
  patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
      "package-data"]["crnn_jax"]
  package = root / "crnn_jax"
  for name in SHIPPED:
    for path in sorted(pretrained.resolve(name).iterdir()):
      relative = path.relative_to(package).as_posix()
      assert any(fnmatch.fnmatch(relative, p) for p in patterns), (
          f"{relative} is not package data: a wheel would lack it")
