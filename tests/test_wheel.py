"""The wheel, installed outside the checkout, runs predict, eval, export and import-torch.

The wheel is built from the checkout (`pip wheel --no-deps --no-build-isolation`) and installed
(`--no-deps`) into a fresh virtual environment in a temporary directory. That environment
sees the test's own environment's packages through a .pth file, so nothing is downloaded; a
.pth path line does not run that environment's own .pth files, so the checkout's editable
install is not visible there. Each command runs from a temporary directory outside the
checkout, so only package data (weights, charsets, the default config, the web page) can
serve it.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
HELDOUT_EN = REPO / "testdata" / "heldout_en"


def _run(args, cwd, timeout=300):
  # Without PYTHONPATH: a checkout on it would shadow the wheel (and pip would call the wheel's
  # package already installed).
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)
  assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
  return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """(bin directory of a venv with the wheel installed, a working directory), both outside
  the checkout."""
  root = tmp_path_factory.mktemp("wheel")
  assert REPO not in root.parents
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", root / "dist", REPO], cwd=REPO, timeout=600)
  wheel, = (root / "dist").glob("crnn_jax-*.whl")
  venv = root / "venv"
  _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
  python = venv / "bin" / "python"
  site = pathlib.Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                           cwd=root).strip())
  (site / "outer_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
  _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], cwd=root)
  work = root / "work"
  work.mkdir()
  return venv / "bin", work


@pytest.mark.slow
def test_the_installed_package_is_the_wheels(installed):
  bin_dir, work = installed
  where = _run([bin_dir / "python", "-c", "import crnn_jax; print(crnn_jax.__file__)"],
               cwd=work).strip()
  assert pathlib.Path(where).is_relative_to(bin_dir.parent), where
  data = _run([bin_dir / "python", "-c",
               "import importlib.resources as r; p = r.files('crnn_jax'); print(sorted(str(x."
               "relative_to(p)) for x in p.rglob('*') if x.suffix in "
               "('.msgpack', '.json', '.md', '.txt', '.html')))"], cwd=work)
  for name in ("scene_en", "synth_en", "zh_en"):
    for file in ("variables.msgpack", "config.json", "info.json", "MODEL_CARD.md",
                 "calibration.json"):
      assert f"weights/{name}/{file}" in data, (name, file)
  assert "serve/page.html" in data and "text/charsets/" in data
  assert (bin_dir / "crnn-jax").is_file()


@pytest.mark.slow
def test_predict_and_eval_from_the_wheel(installed):
  bin_dir, work = installed
  lines = [line.split("\t") for line in (HELDOUT_EN / "gt.txt").read_text().splitlines()]
  picked = [lines[0], lines[300], lines[-1]]  # A word, and further groups.
  image = HELDOUT_EN / picked[0][0]
  out = _run([bin_dir / "crnn-jax", "predict", image], cwd=work)
  path, text, confidence = out.strip().split("\t")
  assert (path, text) == (str(image), picked[0][1]) and 0 < float(confidence) <= 1
  folder = work / "evalset"
  folder.mkdir()
  for relative, _ in picked:
    shutil.copy(HELDOUT_EN / relative, folder / pathlib.Path(relative).name)
  (folder / "gt.txt").write_text("".join(f"{pathlib.Path(r).name}\t{label}\n"
                                         for r, label in picked))
  out = _run([bin_dir / "crnn-jax", "eval", "--data", folder, "--decoder", "greedy",
              "--case-sensitive"], cwd=work)
  # The Markdown table's row: records, counted, labels altered, word accuracy (scene_en reads
  # 98% of heldout_en greedily: at least two of these three).
  row = re.search(r"\| evalset \| 3 \| 3 \| 0 \| (\d+\.\d+) \|", out)
  assert row and float(row[1]) in (66.67, 100.0), out


@pytest.mark.slow
def test_export_onnx_from_the_wheel(installed):
  onnxruntime = pytest.importorskip("onnxruntime")
  bin_dir, work = installed
  output = work / "synth_en.onnx"
  _run([bin_dir / "crnn-jax", "export", "--weights", "synth_en", "--format", "onnx",
        "--output", output], cwd=work)
  session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
  inputs = session.get_inputs()
  assert len(inputs) == 1 and inputs[0].shape[1:3] in ([32, None], [1, 32]) or (
      32 in inputs[0].shape), [(i.name, i.shape) for i in inputs]


@pytest.mark.slow
def test_import_torch_from_the_wheel(installed):
  torch = pytest.importorskip("torch")
  import test_torch_import  # pylint: disable=import-outside-toplevel
  bin_dir, work = installed
  torch.manual_seed(0)
  model = test_torch_import._TorchCRNN(test_torch_import.CHANNELS,  # pylint: disable=protected-access
                                       test_torch_import.HIDDEN,
                                       len(test_torch_import.ALPHABET) + 1)
  pth = work / "crnn.pth"
  torch.save(model.state_dict(), pth)
  _run([bin_dir / "crnn-jax", "import-torch", pth, "--output", work / "imported"], cwd=work)
  assert (work / "imported" / "config.json").is_file()
  out = _run([bin_dir / "crnn-jax", "predict", "--checkpoint", work / "imported",
              "--decoder", "greedy", HELDOUT_EN / "digits" / "00000.png"], cwd=work)
  assert out.count("\t") == 2  # A (random) reading of a randomly initialized model.
