"""Tests for crnn_jax.export: exported logits equal the flax model's on the real frames."""

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import deploy_helpers
from crnn_jax import checkpointing, cli, run_files
from crnn_jax.text.charset import Charset
from crnn_jax.models import crnn

# (padded width, true widths): full-width batches and mixed widths with padding.
CASES = [(100, [100]), (100, [100, 77, 8]), (37, [37, 20]), (256, [256, 255, 130, 64, 9])]


def _inputs(width, widths, seed):
  rng = np.random.default_rng(seed)
  images = rng.uniform(-1, 1, (len(widths), 32, width, 1)).astype(np.float32)
  return images, np.array(widths, np.int32)


def _reference(workdir, images, widths):
  config = run_files.load_config(workdir)
  model = crnn.from_config(config.model, Charset.from_config(config.text).num_classes)
  _, variables = checkpointing.restore_variables(workdir)
  logits, lengths = jax.jit(lambda x, w: model.apply(variables, x, w, train=False))(images, widths)
  return np.asarray(logits), np.asarray(lengths)


def _assert_close(logits, lengths, ref, ref_lengths):
  np.testing.assert_array_equal(lengths, ref_lengths)
  assert logits.shape == ref.shape
  for b, frames in enumerate(ref_lengths):
    scale = np.abs(ref[b, :frames]).max()
    assert scale > 0.1
    err = np.abs(logits[b, :frames] - ref[b, :frames]).max()
    assert err <= 1e-4 * scale, (b, err, scale)


def _onnx_session(ort, path):
  """An onnxruntime CPU session of an exported model, its warnings off."""
  options = ort.SessionOptions()
  options.log_severity_level = 3
  return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_onnx_export_runs_in_onnxruntime(tiny_workdir, tmp_path):
  ort = pytest.importorskip("onnxruntime")
  path = tmp_path / "crnn.onnx"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx", "--output",
                   str(path)]) == 0
  session = _onnx_session(ort, path)
  inputs = {i.name: i for i in session.get_inputs()}
  assert inputs["images"].shape == ["B", 32, "W", 1]
  assert inputs["widths"].shape == ["B"] and inputs["widths"].type == "tensor(int32)"
  assert [o.name for o in session.get_outputs()] == ["logits", "lengths"]
  meta = session.get_modelmeta().custom_metadata_map
  assert json.loads(meta["crnn_jax.charset"]) == "0123456789abcdefghijklmnopqrstuvwxyz"
  assert meta["crnn_jax.blank_index"] == "0"
  # BatchNorm is folded into the convolutions.
  import onnx  # pylint: disable=g-import-not-at-top
  ops = {n.op_type for n in onnx.load(str(path)).graph.node}
  assert "BatchNormalization" not in ops and "Conv" in ops
  assert "LSTM" in ops and not ops & {"Loop", "Scan"}  # Native LSTMs (see onnx_graph).
  for i, (width, widths) in enumerate(CASES):
    images, widths = _inputs(width, widths, 10 + i)
    logits, lengths = session.run(None, {"images": images, "widths": widths})
    _assert_close(logits, lengths, *_reference(tiny_workdir, images, widths))


def test_onnx_export_loads_in_onnxruntime_without_warnings(tiny_workdir, tmp_path, capfd):
  ort = pytest.importorskip("onnxruntime")
  path = tmp_path / "crnn.onnx"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx", "--output",
                   str(path)]) == 0
  capfd.readouterr()
  options = ort.SessionOptions()
  options.log_severity_level = 2  # onnxruntime's warnings (its default) on stderr.
  ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
  assert "[W:onnxruntime" not in capfd.readouterr().err


@pytest.mark.slow
def test_stablehlo_export_loads_without_crnn_jax(tiny_workdir, tmp_path):
  path = tmp_path / "crnn.stablehlo"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "stablehlo",
                   "--output", str(path)]) == 0
  meta = json.loads((tmp_path / "crnn.stablehlo.json").read_text())
  assert json.loads(meta["crnn_jax.charset"]) == "0123456789abcdefghijklmnopqrstuvwxyz"
  arrays = {}
  for i, (width, widths) in enumerate(CASES):
    arrays[f"images{i}"], arrays[f"widths{i}"] = _inputs(width, widths, 20 + i)
  np.savez(tmp_path / "inputs.npz", **arrays)
  script = textwrap.dedent(f"""
      import sys
      import jax, numpy as np
      exported = jax.export.deserialize(bytearray(open({str(path)!r}, "rb").read()))
      inputs = np.load({str(tmp_path / "inputs.npz")!r})
      out = {{}}
      for i in range({len(CASES)}):
        logits, lengths = exported.call(inputs[f"images{{i}}"], inputs[f"widths{{i}}"])
        out[f"logits{{i}}"], out[f"lengths{{i}}"] = np.asarray(logits), np.asarray(lengths)
      np.savez({str(tmp_path / "outputs.npz")!r}, **out)
      assert not any(m == "crnn_jax" or m.startswith("crnn_jax.") for m in sys.modules)
      print("in", exported.in_avals, "out", exported.out_avals)
  """)
  result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "float32[B,32,W,1]" in result.stdout  # Symbolic batch and width.
  outputs = np.load(tmp_path / "outputs.npz")
  for i in range(len(CASES)):
    ref = _reference(tiny_workdir, arrays[f"images{i}"], arrays[f"widths{i}"])
    _assert_close(outputs[f"logits{i}"], outputs[f"lengths{i}"], *ref)


def test_export_from_weights_directory_and_shipped_model(tiny_workdir, tmp_path, capsys):
  """`export --weights` (issue: the shipped model could not be exported)."""
  ort = pytest.importorskip("onnxruntime")
  weights = tmp_path / "weights"
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "weights", "--dtype",
                   "float32", "--output", str(weights)]) == 0
  path = tmp_path / "from_weights.onnx"
  assert cli.main(["export", "--weights", str(weights), "--format", "onnx", "--output",
                   str(path)]) == 0
  session = _onnx_session(ort, path)
  images, widths = _inputs(*CASES[1], seed=30)
  logits, lengths = session.run(None, {"images": images, "widths": widths})
  _assert_close(logits, lengths, *_reference(tiny_workdir, images, widths))
  # The shipped model, by name.
  shipped = tmp_path / "shipped.stablehlo"
  assert cli.main(["export", "--weights", "synth_en", "--format", "stablehlo", "--output",
                   str(shipped)]) == 0
  meta = json.loads((tmp_path / "shipped.stablehlo.json").read_text())
  assert len(json.loads(meta["crnn_jax.charset"])) == 62
  capsys.readouterr()
  with pytest.raises(SystemExit):  # --checkpoint and --weights exclude each other.
    cli.main(["export", "--checkpoint", str(tiny_workdir), "--weights", "synth_en", "--format",
              "onnx", "--output", str(path)])


def _readme_onnx_snippet() -> str:
  """The README's onnxruntime example (the first python block of its ONNX section)."""
  readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
  section = readme.split("### Exporting and running with onnxruntime alone", 1)[1]
  return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["fixed", "keep_ratio"])
def test_readme_onnxruntime_snippet_reads_what_predict_reads(resize, tmp_path):
  pytest.importorskip("onnxruntime")
  config = deploy_helpers.tiny_config(resize=resize)
  workdir = deploy_helpers.make_workdir(tmp_path / "run", seed=5, config=config)
  model_path = tmp_path / "crnn.onnx"
  assert cli.main(["export", "--checkpoint", str(workdir), "--format", "onnx", "--output",
                   str(model_path)]) == 0
  import crnn_jax  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  # The snippet decodes greedily: `predict --decoder greedy`.
  recognizer = crnn_jax.Recognizer.from_checkpoint(workdir, decoder="greedy")
  snippet = _readme_onnx_snippet()
  image_name = re.search(r'Image\.open\(("[^"]+")\)', snippet).group(1)  # The README's example.
  assert '"crnn.onnx"' in snippet
  texts = []
  for i, width in enumerate([60, 260]):  # 260 px at height 40: 208 columns kept, 100 fixed.
    image = deploy_helpers.text_images(40 + i, [width], height=40)[0]
    image_path = tmp_path / f"word{i}.png"
    Image.fromarray(image).save(image_path)
    code = snippet.replace('"crnn.onnx"', repr(str(model_path))).replace(
        image_name, repr(str(image_path)))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = recognizer.recognize([image_path])[0].text
    assert result.stdout.rstrip("\n") == expected, (resize, width)
    texts.append(expected)
  assert all(texts), texts  # The random model reads something.
  import onnx  # pylint: disable=g-import-not-at-top
  meta = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
  assert meta["crnn_jax.resize"] == resize
  assert meta["crnn_jax.fixed_width"] == ("100" if resize == "fixed" else "0")
