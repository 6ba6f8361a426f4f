"""Training: the train step learns, guards against non-finite values, and runs resume exactly."""

import json

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from crnn_jax import checkpointing, run_files, train_lib
from crnn_jax.data import pipeline
from crnn_jax.text.charset import Charset
from crnn_jax.decoding import greedy
from crnn_jax.evaluation import evaluators
from crnn_jax.models import crnn
from crnn_jax.ops import ctc


def _setup(config):
  charset = Charset.from_config(config.text)
  model = crnn.from_config(config.model, charset.num_classes)
  state = train_lib.create_train_state(config, model, jax.random.key(config.seed))
  return charset, model, state


def _device(batch):
  return {k: jnp.asarray(v) for k, v in batch.items() if k != "text"}


def _fixed_batch(config, charset, size):
  ds = pipeline.train_dataset(config, charset)
  batch = next(iter(ds))
  assert batch["image"].shape == (size, 32, 100, 1)
  return batch


def test_a_few_steps_lower_the_loss():
  config = tiny.get_config()
  config.optimizer.learning_rate = 3e-3
  charset, _, state = _setup(config)
  batches = [_device(b) for b, _ in zip(pipeline.train_dataset(config, charset), range(2))]
  step = jax.jit(train_lib.train_step)
  losses = []
  for i in range(30):
    state, metrics = step(state, batches[i % 2])
    losses.append(float(metrics["loss_sum"] / metrics["num_feasible"]))
  assert int(state.step) == 30
  assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses


def test_overfits_a_small_fixed_batch_to_full_accuracy():
  config = tiny.get_config()
  config.optimizer.learning_rate = 3e-3
  charset, _, state = _setup(config)
  host_batch = _fixed_batch(config, charset, config.batch_size)
  batch = _device(host_batch)
  step = jax.jit(train_lib.train_step)
  eval_step = jax.jit(evaluators.eval_step)
  for i in range(300):
    state, _ = step(state, batch)
    if i % 50 == 49:
      ids, _ = eval_step(state, batch)
      predictions = [charset.decode(s) for s in greedy.collapse(np.asarray(ids))]
      if predictions == list(host_batch["text"]):
        break
  assert predictions == list(host_batch["text"])


def test_non_finite_loss_does_not_update_parameters():
  config = tiny.get_config()
  charset, _, state = _setup(config)
  batch = _device(_fixed_batch(config, charset, config.batch_size))
  batch["image"] = batch["image"].at[0, 0, 0, 0].set(jnp.nan)
  new_state, metrics = jax.jit(train_lib.train_step)(state, batch)
  assert int(metrics["num_skipped_steps"]) == 1
  assert int(new_state.step) == 1
  jax.tree.map(np.testing.assert_array_equal, new_state.params, state.params)
  jax.tree.map(np.testing.assert_array_equal, new_state.opt_state, state.opt_state)
  jax.tree.map(np.testing.assert_array_equal, new_state.batch_stats, state.batch_stats)


def test_infeasible_and_dropped_labels_are_counted_not_averaged():
  config = tiny.get_config()
  charset, _, state = _setup(config)
  batch = _fixed_batch(config, charset, config.batch_size)
  batch["label"][0, :] = 1  # 26 identical characters need 51 frames > 26.
  batch["label_length"][0] = 26
  batch["mask"][1] = False
  batch["dropped"][1] = 1
  _, metrics = jax.jit(train_lib.train_step)(state, _device(batch))
  assert int(metrics["num_infeasible"]) == 1
  assert int(metrics["num_dropped"]) == 1
  assert int(metrics["num_feasible"]) == config.batch_size - 2
  assert float(metrics["loss_sum"]) / int(metrics["num_feasible"]) < 1000


@pytest.mark.slow
def test_resumed_run_equals_unbroken_run(tmp_path):
  config = tiny.get_config()
  straight = train_lib.train_and_evaluate(config, str(tmp_path / "straight"))
  assert straight["count"] == config.data.eval_size

  # Train 2 steps, stop, then run again with the full length: it resumes from step 2.
  half = tiny.get_config()
  half.num_train_steps = 2
  train_lib.train_and_evaluate(half, str(tmp_path / "resumed"))
  resumed = train_lib.train_and_evaluate(config, str(tmp_path / "resumed"))

  step_a, vars_a = checkpointing.restore_variables(tmp_path / "straight")
  step_b, vars_b = checkpointing.restore_variables(tmp_path / "resumed")
  assert step_a == step_b == 4
  jax.tree.map(np.testing.assert_array_equal, vars_a, vars_b)
  assert resumed == straight
  assert (tmp_path / "straight" / "config.json").is_file()
  assert run_files.load_config(tmp_path / "straight").model.lstm_hidden == 32


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
  """A weights directory (float32) of a tiny model trained for 2 steps."""
  root = tmp_path_factory.mktemp("init_weights")
  config = tiny.get_config()
  config.num_train_steps = 2
  train_lib.train_and_evaluate(config, str(root / "run"))
  return run_files.export_checkpoint(root / "run", root / "weights", dtype="float32")


@pytest.mark.slow
def test_init_weights_start_a_fresh_run_from_trained_weights(tmp_path, tiny_weights):
  from crnn_jax import pretrained  # pylint: disable=g-import-not-at-top
  _, trained = pretrained.load(tiny_weights)
  config = tiny.get_config()
  config.num_train_steps = 1
  config.optimizer.learning_rate = 0.0  # The one step leaves the parameters as loaded.
  config.init_weights = str(tiny_weights)
  train_lib.train_and_evaluate(config, str(tmp_path / "finetune"))
  step, variables = checkpointing.restore_variables(tmp_path / "finetune")
  assert step == 1  # A new run: the step count starts at 0, not at the weights' step.
  jax.tree.map(np.testing.assert_array_equal, variables["params"], trained["params"])

  config.init_weights = ""  # Control: the seed's initialization is something else.
  train_lib.train_and_evaluate(config, str(tmp_path / "scratch"))
  _, scratch = checkpointing.restore_variables(tmp_path / "scratch")
  differ = jax.tree.map(lambda a, b: not np.array_equal(a, b), scratch["params"],
                        trained["params"])
  assert all(jax.tree.leaves(differ))


@pytest.mark.slow
def test_init_weights_may_name_a_training_workdir(tmp_path, tiny_weights):
  run = tiny_weights.parent / "run"  # The workdir the weights were exported from.
  _, trained = checkpointing.restore_variables(run)
  config = tiny.get_config()
  config.num_train_steps = 1
  config.optimizer.learning_rate = 0.0
  config.init_weights = str(run)
  train_lib.train_and_evaluate(config, str(tmp_path / "from_run"))
  _, variables = checkpointing.restore_variables(tmp_path / "from_run")
  jax.tree.map(np.testing.assert_array_equal, variables["params"], trained["params"])
  with pytest.raises(FileNotFoundError, match="no weights"):
    train_lib.load_initial_weights(None, str(tmp_path / "missing"), None)


def test_shape_mismatches_name_each_differing_or_missing_array():
  run = {"params": {"dense": {"kernel": np.zeros((4, 3)), "bias": np.zeros(3)}}}
  assert train_lib.shape_mismatches(run, jax.tree.map(np.ones_like, run)) == []
  weights = {"params": {"dense": {"kernel": np.zeros((4, 5))}, "extra": np.zeros(2)}}
  assert train_lib.shape_mismatches(run, weights, names=("run", "weights")) == [
      "['params']['dense']['bias']: run (3,), weights absent",
      "['params']['dense']['kernel']: run (4, 3), weights (4, 5)",
      "['params']['extra']: run absent, weights (2,)",
  ]


@pytest.mark.slow
def test_init_weights_must_match_the_alphabet_and_model(tiny_weights):
  config = tiny.get_config()
  config.text.charset = config.text.charset.replace("z", "")
  _, _, state = _setup(config)
  with pytest.raises(ValueError, match=r"another alphabet.*only in the weights: 'z'"):
    train_lib.load_initial_weights(state, str(tiny_weights), Charset.from_config(config.text))

  config = tiny.get_config()
  config.model.lstm_hidden = 16
  charset, _, state = _setup(config)
  with pytest.raises(ValueError, match=(r"do not fit this run's model .*\['rnn0'\]"
                                       r".*run \(16,\), weights \(32,\)")):
    train_lib.load_initial_weights(state, str(tiny_weights), charset)


@pytest.mark.slow
def test_partial_init_weights_fine_tune_another_alphabet(tmp_path, tiny_weights):
  """An English model's weights start a run on another alphabet: every array but the class
  scores is copied, and the classes of the characters both alphabets hold keep their rows."""
  from crnn_jax import pretrained  # pylint: disable=g-import-not-at-top
  _, trained = pretrained.load(tiny_weights)
  weights_chars = Charset.from_config(tiny.get_config().text).chars
  config = tiny.get_config()
  config.text.charset = "xyz0123456789#"  # Shares x, y, z and the digits with the weights.
  charset, _, state = _setup(config)
  with pytest.raises(ValueError, match="init_weights_mode='partial'"):
    train_lib.load_initial_weights(state, str(tiny_weights), charset)
  loaded = train_lib.load_initial_weights(state, str(tiny_weights), charset, mode="partial")
  np.testing.assert_array_equal(loaded.params["cnn"]["conv0"]["kernel"],
                                trained["params"]["cnn"]["conv0"]["kernel"])
  scores = np.asarray(loaded.params["rnn1"]["projection"]["kernel"])
  trained_scores = trained["params"]["rnn1"]["projection"]["kernel"]
  for char in "xyz0":
    np.testing.assert_array_equal(scores[:, charset.encode(char)[0]],
                                  trained_scores[:, weights_chars.index(char) + 1])
  np.testing.assert_array_equal(scores[:, charset.encode("#")[0]],  # Only in the run: fresh.
                                state.params["rnn1"]["projection"]["kernel"][:, -1])
  with pytest.raises(ValueError, match="init_weights_mode must be one of"):
    train_lib.load_initial_weights(state, str(tiny_weights), charset, mode="loose")

  # Through the config, a run trains from the loaded state.
  config.num_train_steps = 1
  config.optimizer.learning_rate = 0.0
  config.init_weights = str(tiny_weights)
  config.init_weights_mode = "partial"
  train_lib.train_and_evaluate(config, str(tmp_path / "zh"))
  _, variables = checkpointing.restore_variables(tmp_path / "zh")
  np.testing.assert_array_equal(variables["params"]["rnn0"]["projection"]["kernel"],
                                trained["params"]["rnn0"]["projection"]["kernel"])


def test_batch_size_must_divide_over_devices():
  from crnn_jax import sharding  # pylint: disable=g-import-not-at-top
  mesh = sharding.make_mesh()
  sharding.check_batch_size(8 * mesh.devices.size, mesh)
  if mesh.devices.size > 1:
    with pytest.raises(ValueError, match="does not divide"):
      sharding.check_batch_size(mesh.devices.size + 1, mesh)


def test_step_reports_gradient_update_and_parameter_norms():
  config = tiny.get_config()
  charset, _, state = _setup(config)
  batch = _device(_fixed_batch(config, charset, config.batch_size))
  old_params = jax.device_get(state.params)
  new_state, metrics = jax.jit(train_lib.train_step)(state, batch)
  norm = lambda tree: np.sqrt(sum(np.sum(np.square(x, dtype=np.float64))
                                  for x in jax.tree.leaves(tree)))
  new_params = jax.device_get(new_state.params)
  update = jax.tree.map(lambda a, b: a - b, new_params, old_params)
  np.testing.assert_allclose(metrics["param_norm"], norm(new_params), rtol=1e-5)
  np.testing.assert_allclose(metrics["update_norm"], norm(update), rtol=1e-3)
  assert 0 < float(metrics["update_norm"]) < float(metrics["param_norm"])
  assert float(metrics["grad_norm"]) > 0
  assert int(metrics["num_skipped_steps"]) == 0


def test_bfloat16_activations_keep_float32_params_optimizer_and_lstm_state():
  config = tiny.get_config()
  config.model.dtype = "bfloat16"
  charset, model, state = _setup(config)
  batch = _device(_fixed_batch(config, charset, config.batch_size))
  for tree in (state.params, state.opt_state, state.batch_stats):
    for x in jax.tree.leaves(tree):
      if jnp.issubdtype(x.dtype, jnp.floating):
        assert x.dtype == jnp.float32

  # The recurrences (LSTM cell and hidden state) carry float32, the activations are bf16.
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  jaxpr = jax.make_jaxpr(lambda v: model.apply(v, batch["image"], batch["width"]))(variables)

  def scan_carries(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "scan":
        first = eqn.params["num_consts"]
        yield [v.aval.dtype for v in eqn.invars[first:first + eqn.params["num_carry"]]
               if jnp.issubdtype(v.aval.dtype, jnp.floating)]
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        yield from scan_carries(sub)

  carries = list(scan_carries(jaxpr.jaxpr))
  assert carries and all(c and all(d == jnp.float32 for d in c) for c in carries), carries
  dtypes = {eqn.outvars[0].aval.dtype for eqn in _all_eqns(jaxpr.jaxpr)
            if eqn.primitive.name in ("conv_general_dilated", "dot_general")}
  assert dtypes == {jnp.dtype(jnp.bfloat16)}, dtypes
  logits, _ = jax.eval_shape(lambda v: model.apply(v, batch["image"], batch["width"]),
                             variables)
  assert logits.dtype == jnp.float32

  new_state, metrics = jax.jit(train_lib.train_step)(state, batch)
  assert int(metrics["num_skipped_steps"]) == 0
  for x in jax.tree.leaves((new_state.params, new_state.opt_state)):
    if jnp.issubdtype(x.dtype, jnp.floating):
      assert x.dtype == jnp.float32
  # The same weights in float32 give nearly the same loss.
  f32_model = crnn.from_config(tiny.get_config().model, charset.num_classes)

  @jax.jit
  def f32_loss(variables):
    (logits, lengths), _ = f32_model.apply(variables, batch["image"], batch["width"],
                                           train=True, mutable=["batch_stats"])
    return ctc.ctc_loss(logits, lengths, batch["label"], batch["label_length"],
                        batch["mask"])["loss"]

  loss = float(metrics["loss_sum"]) / int(metrics["num_feasible"])
  reference = float(f32_loss(variables))
  assert abs(loss - reference) < 0.02 * reference, (loss, reference)


def _all_eqns(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      yield from _all_eqns(sub)


class _PoisonFrom:
  """Batch transform: NaN images from the `first`-th batch (1-based) on."""

  def __init__(self, first: int):
    self.first = first
    self.seen = 0

  def __call__(self, batch):
    self.seen += 1
    if self.seen >= self.first:
      batch = dict(batch, image=np.full_like(batch["image"], np.nan))
    return batch


@pytest.mark.slow
def test_consecutive_bad_steps_stop_the_run_with_the_last_good_state(tmp_path, monkeypatch):
  config = tiny.get_config()
  config.num_train_steps = 20
  config.log_every_steps = 1
  config.checkpoint_every_steps = 3
  config.eval_every_steps = 100
  config.max_consecutive_bad_steps = 3
  config.optimizer.grad_accum_steps = 2  # Also exercises optax.MultiSteps in the train step.
  original = pipeline.train_dataset
  monkeypatch.setattr(pipeline, "train_dataset",
                      lambda *a, **k: original(*a, **k).map(_PoisonFrom(4)))
  with pytest.raises(train_lib.TooManyBadSteps, match=r"steps 4-6: 3 consecutive steps"):
    train_lib.train_and_evaluate(config, str(tmp_path))
  log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").open()]
  assert [r["skipped"] for r in log] == [False] * 3 + [True] * 3
  assert log[-1]["loss"] is None and log[-1]["update_norm"] is None
  assert log[2]["loss"] > 0
  # Accumulating 2 batches per update: parameters move on the second step only.
  assert [r["update_norm"] > 0 for r in log[:3]] == [False, True, False]
  # The checkpoint saved on stopping holds the state of the last good step.
  step, stopped = checkpointing.restore_variables(tmp_path)
  assert step == 6
  _, good = checkpointing.restore_variables(tmp_path, step=3)
  jax.tree.map(np.testing.assert_array_equal, stopped, good)


def test_eta_and_durations():
  assert train_lib.eta_seconds(100, 0, 1000, 50.0) == pytest.approx(450.0)
  assert train_lib.eta_seconds(300, 200, 400, 20.0) == pytest.approx(20.0)  # Resumed at 200.
  assert train_lib.eta_seconds(200, 200, 400, 5.0) is None
  assert [train_lib.format_duration(s) for s in (None, 45, 750, 3900, 7260.4)] == [
      "?", "45s", "12m30s", "1h05m", "2h01m"]
