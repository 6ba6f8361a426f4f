"""`crnn-jax predict`: output formats, standard input, the errors of empty inputs, --version."""

import io
import json
import sys

import pytest
from PIL import Image

import deploy_helpers
import crnn_jax
from crnn_jax import cli


@pytest.fixture
def images(tmp_path):
  """Two readable images and a corrupt one."""
  folder = tmp_path / "images"
  folder.mkdir()
  paths = []
  for i, image in enumerate(deploy_helpers.text_images(7, [60, 110])):
    paths.append(folder / f"{i}.png")
    Image.fromarray(image).save(paths[-1])
  bad = folder / "bad.png"
  bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  return paths, bad


def _predict(capsys, *args):
  status = cli.main(["predict", "--quiet", *args])
  out, err = capsys.readouterr()
  return status, out.splitlines(), err


def test_formats_tsv_text_and_jsonl(tiny_workdir, images, capsys):
  (first, second), bad = images
  inputs = [str(first), str(bad), str(second)]
  expected = crnn_jax.Recognizer.from_checkpoint(tiny_workdir).recognize([first, second])
  status, tsv, err = _predict(capsys, "--checkpoint", str(tiny_workdir), *inputs)
  assert status == 1 and f"error: {bad}: cannot read image" in err
  assert [line.split("\t")[:2] for line in tsv] == [[str(first), expected[0].text],
                                                     [str(second), expected[1].text]]
  assert [float(line.split("\t")[2]) for line in tsv] == pytest.approx(
      [p.confidence for p in expected], abs=5e-5)
  status, text, _ = _predict(capsys, "--checkpoint", str(tiny_workdir), "--format", "text",
                             *inputs)
  assert status == 1 and text == [p.text for p in expected]
  status, jsonl, _ = _predict(capsys, "--checkpoint", str(tiny_workdir), "--format", "jsonl",
                              *inputs)
  records = [json.loads(line) for line in jsonl]
  assert status == 1 and [r["path"] for r in records] == inputs  # Failures too, in order.
  assert "cannot read image" in records[1]["error"] and "text" not in records[1]
  for record, prediction in zip([records[0], records[2]], expected):
    assert record["text"] == prediction.text and record["too_wide"] is False
    assert record["confidence"] == pytest.approx(prediction.confidence, abs=1e-6)
    assert record["raw_confidence"] == pytest.approx(prediction.raw_confidence, abs=1e-6)


def _stdin(monkeypatch, data: bytes):
  monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_an_image_on_standard_input(tiny_workdir, images, capsys, monkeypatch):
  (first, _), _ = images
  _, [from_file], _ = _predict(capsys, "--checkpoint", str(tiny_workdir), str(first))
  _stdin(monkeypatch, first.read_bytes())
  status, [from_stdin], _ = _predict(capsys, "--checkpoint", str(tiny_workdir), "-")
  assert status == 0
  assert from_stdin.split("\t") == ["-"] + from_file.split("\t")[1:]


def test_image_paths_on_standard_input(tiny_workdir, images, capsys, monkeypatch):
  (first, second), _ = images
  _stdin(monkeypatch, f"{first}\n\n{second.parent}\n".encode())  # A blank line, a directory.
  status, lines, err = _predict(capsys, "--checkpoint", str(tiny_workdir), "-")
  assert status == 1 and "bad.png: cannot read image" in err  # The directory's corrupt file.
  assert [line.split("\t")[0] for line in lines] == [str(first), str(first), str(second)]


def test_empty_inputs_are_named(tiny_workdir, tmp_path, images, capsys, monkeypatch):
  (first, _), _ = images
  empty_dir = tmp_path / "no_images_here"
  empty_dir.mkdir()
  (empty_dir / "readme.txt").write_text("not an image")
  empty_file = tmp_path / "empty.png"
  empty_file.write_bytes(b"")
  status, lines, err = _predict(capsys, "--checkpoint", str(tiny_workdir), str(empty_dir),
                                str(empty_file), str(first))
  assert status == 1 and [line.split("\t")[0] for line in lines] == [str(first)]
  assert f"error: {empty_dir}: no image files in this directory" in err
  assert f"error: {empty_file}: cannot read image (empty file)" in err
  assert "2 of 3 inputs could not be read" in err
  status, lines, err = _predict(capsys, "--checkpoint", str(tiny_workdir), str(empty_dir))
  assert status == 1 and not lines and "no input images found" in err
  _stdin(monkeypatch, b"")
  status, _, err = _predict(capsys, "--checkpoint", str(tiny_workdir), "-")
  assert status == 1 and "standard input is empty" in err
  status, _, err = _predict(capsys, "--checkpoint", str(tiny_workdir), "-", "-")
  assert status == 2 and "'-' (standard input) can be given once" in err


def test_version(capsys):
  with pytest.raises(SystemExit) as stopped:
    cli.main(["--version"])
  assert stopped.value.code == 0
  assert capsys.readouterr().out.strip() == f"crnn-jax {crnn_jax.__version__}"


def test_usage_lists_every_decoder_and_format():
  usage = cli.__doc__
  assert "greedy|beam|lm|lexicon" in usage and "tsv|text|jsonl" in usage
  assert "--decoder greedy|beam|lexicon]" not in usage
