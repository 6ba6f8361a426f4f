"""`crnn-jax data samples`: a contact sheet of what a config renders, beside real crops."""

import numpy as np
import pytest
from PIL import Image

from configs import tiny
from crnn_jax import cli
from crnn_jax import samples

ROOT_CONFIG = "configs/tiny.py"


def test_sheet_holds_each_rendered_and_real_image_with_its_label(gt_folder):
  folder, good, _ = gt_folder
  config = tiny.get_config()
  rendered = samples.rendered_samples(config, 5, seed=11)
  again = samples.rendered_samples(config, 5, seed=11)
  assert [label for _, label in rendered] == [label for _, label in again]  # The seed decides.
  assert all(image.ndim in (2, 3) and image.dtype == np.uint8 for image, _ in rendered)
  real, skipped = samples.real_samples(folder.parent, 10)
  # gt.txt's labels; e.png is listed only with bad labels, junk.png cannot be read.
  assert sorted(label for _, label in real) == sorted([label for _, label, _ in good] + [""])
  assert len(skipped) == 1 and "junk.png: cannot read image" in skipped[0]
  sheet, boxes = samples.contact_sheet([("rendered", rendered), ("real", real)], columns=2,
                                       cell_height=40, cell_width=150)
  assert [len(b) for b in boxes] == [5, len(good) + 1]
  # The panels side by side.
  assert min(x for x, _, _, _ in boxes[1]) > max(x + w for x, _, w, _ in boxes[0])
  pixels = np.asarray(sheet)
  for (image, _), (x, y, w, h) in zip(rendered + real, boxes[0] + boxes[1]):
    expected = np.asarray(samples.cell_image(image, 40, 150))
    assert expected.shape == (h, w, 3)
    np.testing.assert_array_equal(pixels[y:y + h, x:x + w], expected)


def test_data_samples_command(tmp_path, gt_folder, capsys):
  folder, good, _ = gt_folder
  out = tmp_path / "grid.png"
  assert cli.main(["data", "samples", "--config", ROOT_CONFIG, "--output", str(out),
                   "--count", "8"]) == 0
  assert "8 rendered images" in capsys.readouterr().out
  alone = Image.open(out).size
  assert cli.main(["data", "samples", "--config", ROOT_CONFIG, "--output", str(out),
                   "--count", "8", "--real", str(folder)]) == 0
  printed, err = capsys.readouterr()
  assert f"{len(good) + 1} real crops" in printed and "left out" in err and "junk.png" in err
  beside = Image.open(out).size
  assert beside[0] > 1.9 * alone[0] and beside[1] == alone[1]
  empty = tmp_path / "no_crops"
  empty.mkdir()
  assert cli.main(["data", "samples", "--config", ROOT_CONFIG, "--output", str(out),
                   "--real", str(empty)]) == 2
  assert f"real crops: {empty} holds no image file" in capsys.readouterr().err


def test_count_must_be_positive():
  with pytest.raises(ValueError, match="count must be at least 1"):
    samples.rendered_samples(tiny.get_config(), 0)
