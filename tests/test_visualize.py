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


def test_render_prediction_with_a_rectifier():
  from crnn_jax.models import rectifier  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  image = rng.integers(100, 256, (32, 40)).astype(np.uint8)
  rectified = rng.integers(0, 100, (32, 40)).astype(np.uint8)
  path = "a--bb-----"
  spans = (CharSpan("a", 0, 0, 0.0, 2.0), CharSpan("b", 3, 4, 10.0, 18.0))
  prediction = Prediction("ab", 0.5, spans, path, 40, 40)
  points = rectifier.pixel_points(rectifier.canonical_points(20)[None], np.array([40]), 32)[0]
  plain = visualize.render_prediction(image, prediction, zoom=3)
  picture = visualize.render_prediction(image, prediction, zoom=3, rectified=rectified,
                                        points=points)
  gap = 96 + visualize.RECTIFIED_GAP
  assert picture.shape == (plain.shape[0] + gap, plain.shape[1], 3)
  # The rectified image under the input, pixel for pixel, and everything below moved down.
  enlarged = np.repeat(np.repeat(rectified, 3, axis=0), 3, axis=1)
  np.testing.assert_array_equal(picture[4 + gap:4 + gap + 96, 4:124, 0], enlarged)
  np.testing.assert_array_equal(picture[4 + gap + 96:], plain[4 + 96:])
  # The input is drawn with the fiducial points over it: blue along the top edge, orange along
  # the bottom edge, the rest of the input untouched.
  top_color, bottom_color = visualize._SPAN_COLORS[:2]  # pylint: disable=protected-access
  panel = picture[4:100, 4:124]
  blue, orange = np.all(panel == top_color, -1), np.all(panel == bottom_color, -1)
  assert blue[:8].sum() > 50 and orange[-8:].sum() > 50
  assert not blue[16:].any() and not orange[:-16].any()
  gray = np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)
  middle = slice(20, 76)
  np.testing.assert_array_equal(panel[middle, :, 0], gray[middle])
  with pytest.raises(ValueError, match="differ"):
    visualize.render_prediction(image, prediction, rectified=rectified[:, :30])


def test_predict_visualize_cli_with_a_rectifier(tmp_path, capsys):
  from crnn_jax import inference, run_files  # pylint: disable=g-import-not-at-top
  workdir = deploy_helpers.make_workdir(tmp_path / "run", seed=4,
                                        config=deploy_helpers.tps_config())
  paths = []
  for i, image in enumerate(deploy_helpers.text_images(5, [100, 48])):
    paths.append(tmp_path / f"img{i}.png")
    Image.fromarray(image).save(paths[-1])
  out = tmp_path / "vis"
  assert cli.main(["predict", "--checkpoint", str(workdir), *map(str, paths), "--visualize",
                   str(out), "--decoder", "greedy"]) == 0
  capsys.readouterr()
  files = sorted(out.glob("*.png"))
  assert [f.name for f in files] == ["0000_img0.png", "0001_img1.png"]
  loaded = run_files.load_model(workdir)
  recognizer = inference.Recognizer.from_checkpoint(workdir, decoder="greedy",
                                                    compilation_cache=False)
  arrays = [recognizer.prepare(p)[0] for p in paths]
  views = visualize.rectify_arrays(loaded.module, loaded.variables, arrays)
  assert visualize.rectify_arrays(None, None, arrays) is None
  for f, array, (rectified, points) in zip(files, arrays, views):
    width = array.shape[1]
    assert rectified.shape == array.shape and points.shape == (20, 2)
    assert np.abs(rectified - array).mean() > 0.02  # This rectifier is not the identity.
    picture = np.asarray(Image.open(f))[..., :3]
    top = 4 + 96 + visualize.RECTIFIED_GAP
    expected = np.repeat(np.repeat(visualize.to_uint8(rectified), 3, axis=0), 3, axis=1)
    np.testing.assert_array_equal(picture[top:top + 96, 4:4 + 3 * width, 0], expected)
