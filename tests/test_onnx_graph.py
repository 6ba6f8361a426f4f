"""Tests for crnn_jax.onnx_graph: the native ONNX graph computes the flax model's logits."""

import jax
import numpy as np
import pytest

import deploy_helpers
from crnn_jax import onnx_graph
from crnn_jax.models import crnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# (padded width, true widths): full-width batches and mixed widths with padding.
CASES = [(100, [100]), (100, [100, 77, 8]), (37, [37, 20]), (256, [256, 255, 130, 64, 9])]


def _session(model, variables):
  proto = onnx.helper.make_model(onnx_graph.build_graph(model, variables),
                                 opset_imports=[onnx.helper.make_opsetid("", 21)])
  onnx.checker.check_model(proto, full_check=True)
  options = ort.SessionOptions()
  options.log_severity_level = 3
  return proto, ort.InferenceSession(proto.SerializeToString(), options,
                                     providers=["CPUExecutionProvider"])


def _random_variables(model, seed):
  images = np.zeros((1, 32, 64, 1), np.float32)
  variables = model.init(jax.random.key(seed), images, np.array([64], np.int32))
  # pylint: disable-next=protected-access
  return deploy_helpers._randomize(dict(variables), seed)  # Non-trivial BatchNorm statistics.


@pytest.mark.parametrize("layout,layers", [("torch", 2), ("paper", 1), ("torch", 3)])
def test_graph_equals_flax_model_with_padding(layout, layers):
  model = crnn.CRNN(num_classes=11, conv_channels=deploy_helpers.TINY_CHANNELS,
                    batch_norm_layout=layout, lstm_hidden=deploy_helpers.TINY_HIDDEN,
                    lstm_layers=layers)
  variables = _random_variables(model, seed=layers)
  proto, session = _session(model, variables)
  ops = [node.op_type for node in proto.graph.node]
  assert ops.count("LSTM") == layers and ops.count("Conv") == 7
  assert "BatchNormalization" not in ops and not {"Loop", "Scan"} & set(ops)
  rng = np.random.default_rng(0)
  # Every padding case for the default layout; one mixed batch for the others.
  for width, widths in CASES if (layout, layers) == ("torch", 2) else CASES[1:2]:
    images = rng.uniform(-1, 1, (len(widths), 32, width, 1)).astype(np.float32)
    widths = np.array(widths, np.int32)
    logits, lengths = session.run(None, {"images": images, "widths": widths})
    ref, ref_lengths = (np.asarray(a) for a in model.apply(variables, images, widths,
                                                            train=False))
    np.testing.assert_array_equal(lengths, ref_lengths)
    assert logits.shape == ref.shape
    for b, frames in enumerate(ref_lengths):
      scale = np.abs(ref[b, :frames]).max()
      assert scale > 0.01
      np.testing.assert_allclose(logits[b, :frames], ref[b, :frames], atol=1e-4 * scale)
      # Alone in a batch of its own width, a sample reads the same on its real frames.
      alone, _ = session.run(None, {"images": images[b:b + 1, :, :widths[b]],
                                    "widths": widths[b:b + 1]})
      np.testing.assert_allclose(alone[0], logits[b, :frames], atol=1e-5 * scale)


def test_lstm_weights_follow_onnx_gate_order():
  hidden, inputs = 3, 2
  rng = np.random.default_rng(1)
  cell = {}
  for gate in "ifgo":
    cell[f"i{gate}"] = {"kernel": rng.normal(size=(inputs, hidden)).astype(np.float32)}
    cell[f"h{gate}"] = {"kernel": rng.normal(size=(hidden, hidden)).astype(np.float32),
                        "bias": rng.normal(size=hidden).astype(np.float32)}
  w, r, b, h = onnx_graph._lstm_weights((cell, cell))  # pylint: disable=protected-access
  assert h == hidden and w.shape == (2, 4 * hidden, inputs) and r.shape == (2, 4 * hidden, hidden)
  for k, gate in enumerate("iofg"):  # ONNX: input, output, forget, cell.
    np.testing.assert_array_equal(w[0, k * hidden:(k + 1) * hidden], cell[f"i{gate}"]["kernel"].T)
    np.testing.assert_array_equal(r[1, k * hidden:(k + 1) * hidden], cell[f"h{gate}"]["kernel"].T)
    np.testing.assert_array_equal(b[0, 4 * hidden + k * hidden:4 * hidden + (k + 1) * hidden], 0)
    np.testing.assert_array_equal(b[0, k * hidden:(k + 1) * hidden], cell[f"h{gate}"]["bias"])


def test_fold_batch_norm_matches_formula():
  rng = np.random.default_rng(0)
  params = {f"conv{i}": {"kernel": rng.normal(size=(3, 3, 2, 2)), "bias": rng.normal(size=2)}
            for i in range(7)}
  params["bn2"] = {"scale": np.array([2.0, 0.5]), "bias": np.array([1.0, -1.0])}
  stats = {"bn2": {"mean": np.array([0.5, -0.5]), "var": np.array([3.0, 0.25])}}
  folded = onnx_graph.fold_batch_norm({"params": {"cnn": params}, "batch_stats": {"cnn": stats}},
                                      (2,))
  s = np.array([2.0 / np.sqrt(3.0 + 1e-5), 0.5 / np.sqrt(0.25 + 1e-5)])
  np.testing.assert_allclose(folded[2][0], params["conv2"]["kernel"] * s, rtol=1e-6)
  np.testing.assert_allclose(folded[2][1], (params["conv2"]["bias"] - [0.5, -0.5]) * s + [1, -1],
                             rtol=1e-6)
  np.testing.assert_allclose(folded[3][0], params["conv3"]["kernel"], rtol=1e-7)
