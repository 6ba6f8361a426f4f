"""`crnn-jax export` without the optional `export` extra: one line that says what to install."""

import sys

import pytest

from crnn_jax import cli


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_missing_export_extra_is_one_line(tiny_workdir, tmp_path, capsys, monkeypatch, quantize):
  monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError.
  monkeypatch.setitem(sys.modules, "onnxruntime", None)
  assert cli.main(["export", "--checkpoint", str(tiny_workdir), "--format", "onnx",
                   "--quantize", quantize, "--output", str(tmp_path / "m.onnx")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "Traceback" not in err, err
  assert err.startswith("error: ") and "pip install 'crnn-jax[export]'" in err
  assert not (tmp_path / "m.onnx").exists()
