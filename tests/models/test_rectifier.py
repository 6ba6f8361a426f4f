"""Tests of the TPS rectifier (crnn_jax/models/rectifier.py) and of the CRNN with it in front.

Identity at initialization, the TPS itself against an independent float64 implementation
(DTRB's formulas), padding invariance, training statistics, gradients, configs, warm starts,
and the exports (StableHLO, ONNX, int8) against the flax model.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deploy_helpers
from configs import default
from crnn_jax import export, onnx_graph, run_files
from crnn_jax.text.charset import Charset
from crnn_jax.models import crnn, rectifier, warm_start

CHANNELS = (8, 16, 16, 16, 32, 32, 32)
# (padded width, true widths): keep-ratio batches with padding, the narrowest input included.
CASES = [(100, [100, 77, 8]), (37, [37, 20]), (256, [256, 130, 64, 9])]
# Float32 noise of a rectifier far from the identity. Its fiducial points agree to ~1e-7
# between two computations of the same image (other batch shapes, other compilations,
# onnxruntime's kernels and logarithm), but evaluating the TPS (sums of K kernel terms that
# largely cancel) turns that into up to ~1e-4 pixel of difference in the sampling positions and
# ~1e-4 in the rectified pixels, which the random CRNN here (weights doubled, see
# deploy_helpers._randomize) amplifies to a few 1e-3 of its logits. Padding leaking in, or a
# wrong lowering, changes the rectified pixels by O(0.1).
RECTIFIED_TOL = 3e-4
LOGITS_TOL = 5e-3


@functools.lru_cache(maxsize=None)
def _apply(model):
  """The model's `apply`, jitted (eager flax runs op by op, far slower on a busy CPU)."""
  return jax.jit(model.apply, static_argnames=("train", "mutable"))


@functools.lru_cache(maxsize=None)
def _rectify(model):
  return jax.jit(model.rectify)


def _models(**kwargs):
  plain = crnn.CRNN(num_classes=13, conv_channels=CHANNELS, lstm_hidden=16, **kwargs)
  return plain, plain.clone(rectifier="tps", rectifier_channels=(4, 8, 8, 16),
                            rectifier_hidden=16)


def _init(model, width=64):
  return jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, width, 1)), jnp.array([width]))


def _without_rectifier(variables):
  return {c: {k: v for k, v in tree.items() if k != "rectifier"} for c, tree in variables.items()}


def _batch(rng, width, widths, garbage=1.0):
  """Images `[B, 32, width, 1]` in [-1, 1] on their true widths, `garbage` beyond."""
  images = rng.uniform(-1, 1, (len(widths), 32, width, 1)).astype(np.float32)
  for b, w in enumerate(widths):
    images[b, :, w:] = garbage * rng.uniform(-1, 1, (32, width - w, 1))
  return images, np.array(widths, np.int32)


def _trained_like(model, seed=0, displacement=0.15):
  """Variables with non-trivial BatchNorm statistics and a rectifier far from the identity."""
  variables = deploy_helpers._randomize(_init(model), seed)  # pylint: disable=protected-access
  return deploy_helpers.moderate_rectifier(model, variables, seed, displacement)


# --- The thin-plate spline ------------------------------------------------------------------


def test_canonical_points_and_solver():
  canon = rectifier.canonical_points(20)
  assert canon.shape == (20, 2)
  np.testing.assert_array_equal(canon[:10, 1], -1)
  np.testing.assert_array_equal(canon[10:, 1], 1)
  np.testing.assert_allclose(canon[:10, 0], np.linspace(-1, 1, 10))
  solver = rectifier.tps_solver(canon)
  assert solver.shape == (23, 20)
  # The TPS through the points themselves is the identity map: affine part I, no bending.
  coef = solver @ canon
  np.testing.assert_allclose(coef[:3], [[0, 0], [1, 0], [0, 1]], atol=1e-9)
  np.testing.assert_allclose(coef[3:], 0, atol=1e-9)
  # It interpolates arbitrary targets.
  values = np.random.default_rng(0).normal(size=(20, 2))
  coef = solver @ values
  r2 = ((canon[:, None] - canon[None]) ** 2).sum(-1)
  at_points = coef[0] + canon[:, :1] * coef[1] + canon[:, 1:] * coef[2] + (
      rectifier.tps_kernel(r2) @ coef[3:])
  np.testing.assert_allclose(at_points, values, atol=1e-9)
  for bad in (3, 7, 0):
    with pytest.raises(ValueError, match="even number"):
      rectifier.canonical_points(bad)


def _dtrb_grid(points, width, height):
  """Source pixel positions by DTRB's `TPS_SpatialTransformerNetwork` formulas, in float64.

  DTRB builds the TPS on the targets C' themselves (not their displacements) with the kernel
  r^2 log r, on its output grid of pixel centres ((2j + 1) / W - 1), and samples with
  align_corners=False: source pixel = ((x + 1) W - 1) / 2.
  """
  canon = rectifier.canonical_points(len(points))
  k = len(canon)
  hat_c = np.linalg.norm(canon[:, None] - canon[None], axis=-1)
  np.fill_diagonal(hat_c, 1)
  hat_c = hat_c ** 2 * np.log(hat_c)
  delta_c = np.concatenate([
      np.concatenate([np.ones((k, 1)), canon, hat_c], axis=1),
      np.concatenate([np.zeros((2, 3)), canon.T], axis=1),
      np.concatenate([np.zeros((1, 3)), np.ones((1, k))], axis=1)])
  xs = (2 * np.arange(width) + 1.0) / width - 1
  ys = (2 * np.arange(height) + 1.0) / height - 1
  grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)  # (x, y), rows of x first.
  norm = np.linalg.norm(grid[:, None] - canon[None], axis=-1)
  p_hat = np.concatenate([np.ones((len(grid), 1)), grid, norm ** 2 * np.log(norm + 1e-12)], 1)
  mapped = p_hat @ (np.linalg.inv(delta_c) @ np.concatenate([points, np.zeros((3, 2))]))
  px = ((mapped[:, 0] + 1) * width - 1) / 2
  py = ((mapped[:, 1] + 1) * height - 1) / 2
  return px.reshape(height, width), py.reshape(height, width)


def test_sampling_grid_is_dtrbs_tps_on_each_images_own_width():
  rng = np.random.default_rng(1)
  canon = rectifier.canonical_points(20)
  points = canon[None] + rng.normal(0, 0.1, (2, 20, 2))
  widths = np.array([90, 41], np.int32)
  px, py = rectifier.sampling_grid(jnp.asarray(points, jnp.float32), widths, 32, 96, 20)
  for b, w in enumerate(widths):
    ref_x, ref_y = _dtrb_grid(points[b], int(w), 32)
    np.testing.assert_allclose(px[b, :, :w], ref_x, atol=2e-3)
    np.testing.assert_allclose(py[b, :, :w], ref_y, atol=2e-3)
  # The canonical points give the pixel centres exactly.
  px, py = rectifier.sampling_grid(jnp.asarray(canon[None], jnp.float32), widths[:1], 32, 96, 20)
  np.testing.assert_array_equal(px[0], np.broadcast_to(np.arange(96.0), (32, 96)))
  np.testing.assert_array_equal(py[0], np.broadcast_to(np.arange(32.0)[:, None], (32, 96)))


def test_bilinear_sample_stays_in_each_real_region():
  rng = np.random.default_rng(2)
  images, widths = _batch(rng, 64, [64, 30], garbage=1e6)
  # A translation by 3 columns to the right and 1.5 rows down, as source positions.
  cols = np.arange(64.0)[None, None, :] + 3.0
  rows = np.arange(32.0)[None, :, None] + 1.5
  px = np.broadcast_to(cols, (2, 32, 64)).astype(np.float32)
  py = np.broadcast_to(rows, (2, 32, 64)).astype(np.float32)
  out = np.asarray(rectifier.bilinear_sample(images, widths, px, py))[..., 0]
  for b, w in enumerate(widths):
    img = images[b, :, :w, 0]
    xs = np.minimum(np.arange(w) + 3, w - 1)  # Clamped to the last real column.
    y0 = np.minimum(np.arange(32) + 1, 31)
    y1 = np.minimum(np.arange(32) + 2, 31)
    expected = 0.5 * img[y0][:, xs] + 0.5 * img[y1][:, xs]
    np.testing.assert_allclose(out[b, :, :w], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[b, :, w:], 0)
  assert np.abs(out).max() <= 1  # The 1e6 padding was never read.


# --- The model ----------------------------------------------------------------------------


def test_identity_at_initialization_reads_like_the_plain_crnn():
  plain, tps = _models()
  variables = _init(tps)
  assert set(variables["params"]) == set(_init(plain)["params"]) | {"rectifier"}
  # The same CRNN weights, with non-trivial BatchNorm statistics; the rectifier fresh.
  trained = deploy_helpers._randomize(_without_rectifier(variables), 0)  # pylint: disable=protected-access
  variables = {c: dict(trained[c], rectifier=variables[c]["rectifier"]) for c in variables}
  rng = np.random.default_rng(3)
  for width, widths in CASES:
    images, widths = _batch(rng, width, widths)
    rectified, points = _rectify(tps)(variables, images, widths)
    np.testing.assert_array_equal(
        points, np.broadcast_to(rectifier.canonical_points(20), points.shape).astype(np.float32))
    for b, w in enumerate(widths):  # Bit for bit on the real columns, zero beyond.
      np.testing.assert_array_equal(rectified[b, :, :w], images[b, :, :w])
      np.testing.assert_array_equal(rectified[b, :, w:], 0)
    ref, ref_lengths = _apply(plain)(trained, images, widths)
    logits, lengths = _apply(tps)(variables, images, widths)
    np.testing.assert_array_equal(lengths, ref_lengths)
    assert float(jnp.std(ref[0], axis=0).mean()) > 1e-3
    for b, frames in enumerate(np.asarray(lengths)):
      np.testing.assert_allclose(logits[b, :frames], ref[b, :frames], rtol=1e-6, atol=1e-6)
  assert plain.rectify(trained, images, widths) is None


@pytest.mark.parametrize("width", [57, 40, 43, 8])
def test_padding_does_not_change_a_samples_logits(width):
  _, tps = _models()
  variables = _trained_like(tps)
  rng = np.random.default_rng(4)
  alone = rng.uniform(-1, 1, (1, 32, width, 1)).astype(np.float32)
  logits_alone, _ = _apply(tps)(variables, alone, np.array([width]))
  rect_alone, points_alone = _rectify(tps)(variables, alone, np.array([width]))
  # The rectifier is far from the identity here.
  assert np.abs(points_alone - rectifier.canonical_points(20)).max() > 0.02
  assert np.abs(rect_alone - alone).mean() > 0.05

  batch = rng.uniform(-3, 3, (3, 32, 131, 1)).astype(np.float32)
  batch[1, :, :width] = alone[0]
  widths = np.array([131, width, 90])
  logits_batch, _ = _apply(tps)(variables, batch, widths)
  rect_batch, points_batch = _rectify(tps)(variables, batch, widths)
  frames = width // 4 + 1
  assert float(jnp.std(logits_alone[0], axis=0).mean()) > 1e-3
  np.testing.assert_allclose(points_batch[1], points_alone[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(rect_batch[1, :, :width], rect_alone[0], atol=RECTIFIED_TOL)
  np.testing.assert_array_equal(rect_batch[1, :, width:], 0)
  np.testing.assert_allclose(logits_batch[1, :frames], logits_alone[0], rtol=LOGITS_TOL,
                             atol=LOGITS_TOL)


def test_training_statistics_ignore_padding():
  _, tps = _models()
  variables = _init(tps, width=40)
  rng = np.random.default_rng(5)
  image = rng.uniform(-1, 1, (2, 32, 40, 1)).astype(np.float32)
  _, tight = _apply(tps)(variables, image, np.array([40, 33]), train=True, mutable="batch_stats")
  padded = np.concatenate([image, rng.uniform(-5, 5, (2, 32, 24, 1)).astype(np.float32)], 2)
  padded[1, :, 33:] = 7.0
  _, loose = _apply(tps)(variables, padded, np.array([40, 33]), train=True,
                       mutable="batch_stats")
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               tight["batch_stats"]["rectifier"], loose["batch_stats"]["rectifier"])


def test_gradients_reach_the_rectifier_at_identity():
  _, tps = _models()
  variables = _init(tps)
  rng = np.random.default_rng(6)
  images, widths = _batch(rng, 48, [48, 30])

  def loss(params):
    logits, _ = tps.apply(dict(variables, params=params), images, widths)
    return jnp.sum(jax.nn.log_softmax(logits)[:, :, 1])

  grads = jax.grad(loss)(variables["params"])["rectifier"]
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  assert np.abs(grads["fiducials"]["kernel"]).max() > 1e-6
  assert np.abs(grads["fiducials"]["bias"]).max() > 1e-6


def test_config_option():
  config = default.get_config()
  assert config.model.rectifier == "none"
  num_classes = Charset.from_config(config.text).num_classes
  model = crnn.from_config(config.model, num_classes)
  assert model.rectifier == "none" and model.rectifier_module() is None
  # A config written before the option existed (shipped weights' config.json) builds the same.
  old = default.get_config()
  for key in ("rectifier", "rectifier_points", "rectifier_channels", "rectifier_hidden"):
    del old.model[key]
  assert crnn.from_config(old.model, num_classes) == model
  config.model.rectifier = "tps"
  config.model.rectifier_points = 16
  tps = run_files.build_module(config)
  assert (tps.rectifier, tps.rectifier_points) == ("tps", 16)
  shapes = jax.eval_shape(lambda: tps.init(jax.random.key(0), jnp.zeros((1, 32, 100, 1)),
                                           jnp.array([100])))
  assert shapes["params"]["rectifier"]["fiducials"]["bias"].shape == (32,)
  assert set(shapes["batch_stats"]) == {"cnn", "rectifier"}
  config.model.rectifier = "stn"
  with pytest.raises(ValueError, match="rectifier must be one of"):
    run_files.build_module(config).init(jax.random.key(0), jnp.zeros((1, 32, 40, 1)),
                                        jnp.array([40]))


def test_warm_start_from_weights_without_a_rectifier():
  """A CRNN's trained weights start a rectifier model that reads exactly as the CRNN."""
  plain, tps = _models()
  trained = deploy_helpers._randomize(_init(plain), 1)  # pylint: disable=protected-access
  fresh = _init(tps)
  variables, report = warm_start.transfer(fresh, trained, mode="partial",
                                          run_chars="abcdefghijkl", weights_chars="abcdefghijkl")
  assert report.fresh and all("rectifier" in entry for entry in report.fresh)
  assert not report.unused
  images, widths = _batch(np.random.default_rng(7), 64, [64, 50])
  ref, _ = _apply(plain)(trained, images, widths)
  logits, _ = _apply(tps)(variables, images, widths)
  np.testing.assert_allclose(logits[0], ref[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(logits[1, :13], ref[1, :13], rtol=1e-6, atol=1e-6)


# --- Exports ------------------------------------------------------------------------------


def _assert_logits_close(logits, lengths, ref, ref_lengths, rel=LOGITS_TOL):
  np.testing.assert_array_equal(lengths, ref_lengths)
  assert logits.shape == ref.shape
  for b, frames in enumerate(ref_lengths):
    scale = np.abs(ref[b, :frames]).max()
    assert scale > 0.01
    err = np.abs(logits[b, :frames] - ref[b, :frames]).max()
    assert err <= rel * scale, (b, err, scale)


def test_stablehlo_export_equals_flax():
  _, tps = _models()
  variables = _trained_like(tps, seed=2)
  exported = jax.export.deserialize(bytearray(export.export_stablehlo(tps, variables)))
  rng = np.random.default_rng(8)
  for width, widths in CASES:
    images, widths = _batch(rng, width, widths)
    ref = [np.asarray(a) for a in _apply(tps)(variables, images, widths)]
    _assert_logits_close(*(np.asarray(a) for a in exported.call(images, widths)), *ref)


def _onnx_session(proto):
  ort = pytest.importorskip("onnxruntime")
  options = ort.SessionOptions()
  options.log_severity_level = 3
  return ort.InferenceSession(proto.SerializeToString(), options,
                              providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("identity", [False, True])
def test_onnx_graph_equals_flax(identity):
  onnx = pytest.importorskip("onnx")
  plain, tps = _models()
  variables = _init(tps) if identity else _trained_like(tps, seed=3)
  if identity:
    trained = deploy_helpers._randomize(_without_rectifier(variables), 3)  # pylint: disable=protected-access
    variables = {c: dict(trained[c], rectifier=variables[c]["rectifier"]) for c in variables}
  proto = onnx_graph.build_model(tps, variables)
  onnx.checker.check_model(proto, full_check=True)
  # The rectified images as a second output, to compare them with the flax module's.
  [rectified_name] = [n.output[0] for n in proto.graph.node
                      if n.name.startswith("rectifier_output")]
  proto.graph.output.append(onnx.helper.make_tensor_value_info(rectified_name,
                                                               onnx.TensorProto.FLOAT, None))
  ops = [n.op_type for n in proto.graph.node]
  assert ops.count("GatherElements") == 4 and ops.count("Conv") == 7 + 4
  assert not {"Loop", "Scan", "BatchNormalization"} & set(ops)
  assert all(n.name.startswith("rectifier_") for n in proto.graph.node
             if n.op_type == "Conv" and "rectifier" in n.input[1])
  session = _onnx_session(proto)
  plain_session = _onnx_session(onnx_graph.build_model(plain, _without_rectifier(variables)))
  rng = np.random.default_rng(9)
  for width, widths in CASES:
    images, widths = _batch(rng, width, widths)
    logits, lengths, rectified = session.run(None, {"images": images, "widths": widths})
    ref = [np.asarray(a) for a in _apply(tps)(variables, images, widths)]
    _assert_logits_close(logits, lengths, *ref)
    ref_rectified, _ = _rectify(tps)(variables, images, widths)
    for b, w in enumerate(widths):  # The graph leaves the padding to the CRNN's masks.
      np.testing.assert_allclose(rectified[b, 0, :, :w], ref_rectified[b, :, :w, 0],
                                 atol=0 if identity else RECTIFIED_TOL)
    if identity:  # The graph with a fresh rectifier computes what the plain graph does.
      plain_logits, _ = plain_session.run(None, {"images": images, "widths": widths})
      for b, frames in enumerate(lengths):
        np.testing.assert_allclose(logits[b, :frames], plain_logits[b, :frames], atol=1e-6)
    # Alone in a batch of its own width, a sample reads the same.
    for b, w in enumerate(widths):
      alone = session.run(None, {"images": images[b:b + 1, :, :w], "widths": widths[b:b + 1]})[0]
      frames = w // 4 + 1
      np.testing.assert_allclose(alone[0, :frames], logits[b, :frames],
                                 atol=LOGITS_TOL * np.abs(logits[b, :frames]).max())


def test_int8_keeps_the_rectifier_in_float32():
  onnx = pytest.importorskip("onnx")
  pytest.importorskip("onnxruntime")
  from crnn_jax import quantize  # pylint: disable=g-import-not-at-top
  plain, tps = _models()
  rng = np.random.default_rng(10)
  batches = []
  for width in (40, 64, 100):
    images, widths = _batch(rng, width, [width, width - 7, max(8, width // 2)], garbage=0)
    batches.append({"images": images, "widths": widths})
  test_images, test_widths = _batch(rng, 96, [96, 71, 33], garbage=0)
  feed = {"images": test_images, "widths": test_widths}

  # A fresh rectifier: the int8 model reads exactly as the plain CRNN's int8 model (the same
  # calibration ranges, the same quantized convolutions, the identity in front).
  fresh = _init(tps)
  trained = deploy_helpers._randomize(_without_rectifier(fresh), 4)  # pylint: disable=protected-access
  fresh = {c: dict(trained[c], rectifier=fresh[c]["rectifier"]) for c in fresh}
  int8_tps = quantize.quantize_int8(onnx_graph.build_model(tps, fresh), batches)
  int8_plain = quantize.quantize_int8(onnx_graph.build_model(plain, trained), batches)
  a, lengths = _onnx_session(int8_tps).run(None, feed)
  b, _ = _onnx_session(int8_plain).run(None, feed)
  for row, frames in enumerate(lengths):
    np.testing.assert_allclose(a[row, :frames], b[row, :frames], atol=1e-5)

  # A rectifier far from the identity: its convolutions stay float32, the CRNN's are int8.
  variables = _trained_like(tps, seed=4, displacement=0.1)
  proto = onnx_graph.build_model(tps, variables)
  quantized = quantize.quantize_int8(proto, batches)
  nodes = list(quantized.graph.node)
  dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
  rect_convs = [n for n in nodes if n.op_type == "Conv" and n.name.startswith("rectifier_")]
  crnn_convs = [n for n in nodes if n.op_type == "Conv" and not n.name.startswith("rectifier_")]
  assert len(rect_convs) == 4 and len(crnn_convs) == 7
  assert not any(set(n.input) & dequantized for n in rect_convs)  # Float32 in and out.
  assert sum(bool(set(n.input) & dequantized) for n in crnn_convs) == 6  # All but conv0.
  assert "GatherElements" in {n.op_type for n in nodes}
  a, lengths = _onnx_session(proto).run(None, feed)
  b, _ = _onnx_session(quantized).run(None, feed)
  real = np.arange(a.shape[1])[None, :] < lengths[:, None]
  assert np.isfinite(b).all()
  error = np.abs(a - b)[real].mean() / np.abs(a)[real].mean()
  # A random tiny model on noise images quantizes poorly (tests/test_quantize.py); the bound
  # only catches a broken graph (errors of O(1)).
  assert error < 0.6, error


def test_recognizer_reads_a_rectifier_workdir_with_both_backends(tmp_path):
  pytest.importorskip("onnxruntime")
  from crnn_jax import inference  # pylint: disable=g-import-not-at-top
  workdir = deploy_helpers.make_workdir(tmp_path / "run", seed=5,
                                        config=deploy_helpers.tps_config())
  loaded = run_files.load_model(workdir)
  assert loaded.module.rectifier == "tps" and "rectifier" in loaded.variables["params"]
  images = deploy_helpers.text_images(11, [100, 48, 23])
  jax_reader = inference.Recognizer.from_checkpoint(workdir, decoder="greedy",
                                                    compilation_cache=False)
  ort_reader = inference.Recognizer.from_checkpoint(workdir, decoder="greedy",
                                                    backend="onnxruntime",
                                                    compilation_cache=False)
  arrays = [jax_reader.preprocess(i) for i in images]
  a = jax_reader.frame_log_probs(arrays)
  b = ort_reader.frame_log_probs(arrays)
  for x, y in zip(a, b):  # Log-probabilities of magnitude ~5 (see LOGITS_TOL).
    np.testing.assert_allclose(x, y, atol=2e-2)
  _, points = _rectify(loaded.module)(loaded.variables, arrays[0][None, :, :, None],
                                    np.array([arrays[0].shape[1]]))
  assert np.abs(points - rectifier.canonical_points(20)).max() > 0.02
