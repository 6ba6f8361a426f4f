"""Tests for crnn_jax.visualize and `crnn-jax predict --visualize`."""

import numpy as np
import pytest
from PIL import Image

import deploy_helpers
from crnn_jax import cli, visualize
from crnn_jax.inference import CharSpan, Prediction

RED = np.array([200, 30, 30])


def _is_red(pixels):
  return np.all(pixels == RED, axis=-1)


def test_render_prediction_layout():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (32, 40)).astype(np.uint8)
  path = "a--bb-----"  # 10 frames for width 40.
  spans = (CharSpan("a", 0, 0, 0.0, 2.0), CharSpan("b", 3, 4, 10.0, 18.0))
  prediction = Prediction("ab", 0.5, spans, path, 40, 40)
  picture = visualize.render_prediction(visualize.to_uint8(image.astype(np.float32) / 127.5 - 1),
                                        prediction, zoom=3)
  assert picture.dtype == np.uint8 and picture.shape[2] == 3
  # The enlarged input sits at the top left, pixel for pixel.
  enlarged = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)
  np.testing.assert_array_equal(picture[4:4 + 96, 4:4 + 120, 0], enlarged)
  # The path row: ink under frames 0 and 3-4 ('a', 'bb'); only blank-grey or white elsewhere.
  row = picture[4 + 96 + 4: 4 + 96 + 4 + 15]
  for t, char in enumerate(path):
    x = 4 + 12 * t
    cell = row[:, x - 4:x + 5]
    dark = np.all(cell < 100, axis=-1).any()
    assert dark == (char != "-"), (t, char)
  # Span bars: colored pixels under 'bb' (frames 3..4) but not under frames 6..9.
  bars = picture[4 + 96 + 4 + 15 + 4: 4 + 96 + 4 + 15 + 8]
  colored = ~np.all(bars == 255, axis=-1)
  assert colored[:, 4 + 36:4 + 48].all() and not colored[:, 4 + 12 * 6:4 + 12 * 9].any()


def test_examples_grid_marks_wrong_ones():
  images = [np.full((32, 50, 1), 0.5, np.float32), np.full((32, 70, 1), -0.5, np.float32)]
  grid = visualize.examples_grid(images, ["hello", "wrld"], ["hello", "world"],
                                 confidences=[0.9, 0.4], columns=2)
  assert grid.ndim == 3 and grid.shape[2] == 3
  left, right = grid[:, :grid.shape[1] // 2 - 10], grid[:, grid.shape[1] // 2 + 10:]
  assert _is_red(right).sum() > 200  # Red frame and "WRONG".
  assert _is_red(left).sum() == 0
  # The images are there (in their gray levels: (0.5 + 1) * 127.5 and (-0.5 + 1) * 127.5).
  assert (grid == 191).all(axis=-1).sum() >= 50 * 32 * 4
  assert (grid == 64).all(axis=-1).sum() >= 70 * 32 * 4
  with pytest.raises(ValueError):
    visualize.examples_grid(images, ["a"], ["a", "b"])


class _FakeWriter:

  def __init__(self):
    self.calls = []

  def add_image(self, tag, image, step, dataformats="CHW"):
    self.calls.append((tag, image, step, dataformats))


def test_log_eval_examples(tmp_path):
  batch = np.zeros((20, 32, 64, 1), np.float32)
  widths = np.full(20, 40)
  preds, targets = ["a"] * 20, ["a"] * 19 + ["b"]
  writer = _FakeWriter()
  grid = visualize.log_eval_examples(writer, batch, preds, targets, 500, widths=widths)
  [(tag, image, step, fmt)] = writer.calls
  assert (tag, step, fmt) == ("eval/examples", 500, "HWC")
  assert image is grid and grid.shape[2] == 3
  assert _is_red(grid).sum() == 0  # Only the first 16 are drawn; all right.
  from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
  with SummaryWriter(str(tmp_path / "tb")) as real:
    visualize.log_eval_examples(real, batch, preds, targets[::-1], 7, widths=widths)
  events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
  assert events and events[0].stat().st_size > grid.size // 100


def test_predict_visualize_cli(tiny_workdir, tmp_path, capsys):
  paths = []
  for i, image in enumerate(deploy_helpers.text_images(4, [100, 48])):
    paths.append(tmp_path / f"img{i}.png")
    Image.fromarray(image).save(paths[-1])
  out = tmp_path / "vis"
  assert cli.main(["predict", "--checkpoint", str(tiny_workdir), *map(str, paths), "--visualize",
                   str(out)]) == 0
  lines = capsys.readouterr().out.strip().split("\n")
  files = sorted(out.glob("*.png"))
  assert [f.name for f in files] == ["0000_img0.png", "0001_img1.png"]
  for f, width, line in zip(files, (100, 48), lines):
    picture = np.asarray(Image.open(f))
    assert picture.shape[0] > 32 * 3 and picture.shape[1] >= width * 3
    assert line.split("\t")[1]  # A text was printed for it.
