"""End to end: train a tiny model with the entry point, then `crnn-jax eval` and `predict`."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from crnn_jax import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("run")
  result = subprocess.run(
      [sys.executable, "-m", "train.main", "--config", "configs/tiny.py", "--workdir",
       str(workdir), "--config.num_train_steps=2", "--config.log_every_steps=1",
       "--config.data.worker_count=1"],  # Batches come through grain's shared memory.
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step 2/2" in result.stderr and "images_per_second" in result.stderr
  assert "eval at step 2" in result.stderr
  assert "leaked shared_memory" not in result.stderr  # Worker batches are all freed.
  return workdir


def _tensorboard_tags(path):
  """{tag: kind} of the summaries in a TensorBoard event file (TFRecord framing)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  data, tags, pos = path.read_bytes(), {}, 0
  while pos < len(data):
    length = int.from_bytes(data[pos:pos + 8], "little")
    event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
    pos += 12 + length + 4
    for value in event.summary.value:
      tags[value.tag] = "image" if value.HasField("image") else "scalar"
  return tags


@pytest.mark.slow
def test_training_writes_config_checkpoint_and_tensorboard(workdir):
  config = json.loads((workdir / "config.json").read_text())
  assert config["num_train_steps"] == 2  # Command-line overrides are recorded.
  assert (workdir / "checkpoints" / "2").is_dir()
  (events,) = list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  tags = _tensorboard_tags(events)
  assert tags["train/loss"] == tags["eval/word_accuracy"] == "scalar"
  assert tags["eval/examples"] == "image"  # The grid of validation predictions.


@pytest.mark.slow
def test_eval_prints_and_writes_metrics(workdir, tmp_path, capsys):
  out = tmp_path / "metrics.json"
  assert cli.main(["eval", "--checkpoint", str(workdir), "--num-records", "20",
                   "--output", str(out), "--show", "3"]) == 0
  metrics = json.loads(out.read_text())
  assert metrics["count"] == 20 and metrics["step"] == 2 and metrics["split"] == "test"
  assert 0.0 <= metrics["word_accuracy"] <= 1.0
  printed = capsys.readouterr().out
  assert "word_accuracy_ignore_case" in printed and "target" in printed


@pytest.mark.slow
def test_predict_and_eval_data_show_progress_on_a_terminal(workdir, tmp_path, terminal_stderr):
  images = tmp_path / "images"
  images.mkdir()
  for i in range(3):
    Image.fromarray(np.full((32, 60 + 20 * i), 255, np.uint8)).save(images / f"{i}.png")
  (images / "gt.txt").write_text("".join(f"{i}.png\tword\n" for i in range(3)))
  commands = [  # (command, what the bar counts when done)
      (["predict", "--checkpoint", str(workdir), *sorted(map(str, images.glob("*.png")))], "3/3"),
      (["eval", "--checkpoint", str(workdir), "--data", str(images)], "3/3"),
      (["eval", "--checkpoint", str(workdir), "--num-records", "20"], "2/2")]  # 16 a batch.
  for command, done in commands:
    for quiet in (False, True):
      with terminal_stderr() as terminal:
        assert cli.main(command + (["--quiet"] if quiet else [])) == 0
      assert (done in terminal.getvalue()) != quiet, (command, terminal.getvalue())


@pytest.mark.slow
def test_predict_reads_images_and_reports_a_bad_file(workdir, tmp_path, capsys):
  images = tmp_path / "images"
  images.mkdir()
  Image.fromarray(np.full((40, 120), 255, np.uint8)).save(images / "wide.png")
  Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(images / "small.jpg")
  (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  output = tmp_path / "preds.tsv"
  status = cli.main(["predict", "--checkpoint", str(workdir), str(images),
                     "--output", str(output)])
  assert status == 1  # One input failed.
  lines = output.read_text().splitlines()
  assert [pathlib.Path(line.split("\t")[0]).name for line in lines] == ["small.jpg", "wide.png"]
  for line in lines:
    path, text, confidence = line.split("\t")
    assert 0.0 <= float(confidence) <= 1.0
  err = capsys.readouterr().err
  assert "broken.png" in err and "cannot read image" in err


def test_eval_of_a_missing_workdir_fails_clearly(tmp_path, capsys):
  assert cli.main(["eval", "--checkpoint", str(tmp_path / "nope")]) == 2
  assert "config.json not found" in capsys.readouterr().err
