"""Optimizers and schedules: warm-up, cosine and step decay, batch scaling, accumulation, clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import default
from crnn_jax import optim


def _opt_config(**overrides):
  config = default.get_config().optimizer
  for key, value in overrides.items():
    config[key] = value
  return config


def _lrs(schedule, steps):
  return np.array([float(schedule(i)) for i in steps])


def test_warmup_then_cosine_reaches_zero():
  config = _opt_config(learning_rate=0.5, warmup_steps=10, schedule="cosine")
  schedule = optim.learning_rate_schedule(config, num_train_steps=110)
  np.testing.assert_allclose(_lrs(schedule, [0, 5, 10]), [0.0, 0.25, 0.5], rtol=1e-6)
  np.testing.assert_allclose(float(schedule(60)), 0.25, rtol=1e-5)  # Half-way down the cosine.
  np.testing.assert_allclose(float(schedule(110)), 0.0, atol=1e-7)
  lrs = _lrs(schedule, range(10, 111))
  assert np.all(np.diff(lrs) <= 1e-9)  # Monotone decay after warm-up.


def test_step_schedule_and_constant():
  config = _opt_config(learning_rate=1.0, warmup_steps=0, schedule="step", step_decay_every=5,
                       step_decay_rate=0.1)
  schedule = optim.learning_rate_schedule(config, num_train_steps=100)
  np.testing.assert_allclose(_lrs(schedule, [0, 4, 5, 9, 10]), [1, 1, 0.1, 0.1, 0.01],
                             rtol=1e-6)
  config = _opt_config(learning_rate=0.3, warmup_steps=4, schedule="constant")
  schedule = optim.learning_rate_schedule(config, num_train_steps=100)
  np.testing.assert_allclose(_lrs(schedule, [0, 2, 4, 50]), [0, 0.15, 0.3, 0.3], rtol=1e-6)
  with pytest.raises(ValueError, match="schedule"):
    optim.learning_rate_schedule(_opt_config(schedule="linear"), 10)


def test_learning_rate_scaled_with_the_effective_batch():
  config = _opt_config(learning_rate=0.1, warmup_steps=0, schedule="constant",
                       scale_lr_with_batch=True, reference_batch_size=64)
  assert optim.base_learning_rate(config, 256) == pytest.approx(0.4)
  config.grad_accum_steps = 2
  assert optim.base_learning_rate(config, 256) == pytest.approx(0.8)
  schedule = optim.learning_rate_schedule(config, 10, batch_size=32)
  assert float(schedule(3)) == pytest.approx(0.1)
  with pytest.raises(ValueError, match="batch size"):
    optim.base_learning_rate(config)
  config.scale_lr_with_batch = False
  assert optim.base_learning_rate(config, 256) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["adadelta", "adam", "adamw", "sgd"])
def test_each_optimizer_descends_a_quadratic(name):
  lr = {"adadelta": 1.0, "adam": 0.1, "adamw": 0.1, "sgd": 0.1}[name]
  config = _opt_config(name=name, learning_rate=lr, warmup_steps=0, schedule="constant",
                       momentum=0.0, grad_clip_norm=0.0)
  tx = optim.make_optimizer(config, 100)
  params = {"w": jnp.array([3.0, -2.0])}
  loss = lambda p: jnp.sum(p["w"] ** 2)
  state = tx.init(params)
  for _ in range(20):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    params = optax.apply_updates(params, updates)
  assert float(loss(params)) < 0.95 * 13.0  # Adadelta starts slowly (its own step scale).
  with pytest.raises(ValueError, match="optimizer.name"):
    optim.make_optimizer(_opt_config(name="lamb"), 10)


def test_clipping_bounds_the_update():
  config = _opt_config(name="sgd", learning_rate=1.0, warmup_steps=0, schedule="constant",
                       momentum=0.0, grad_clip_norm=2.0)
  tx = optim.make_optimizer(config, 10)
  params = {"w": jnp.zeros(2)}
  updates, _ = tx.update({"w": jnp.array([30.0, 40.0])}, tx.init(params), params)
  np.testing.assert_allclose(updates["w"], [-1.2, -1.6], rtol=1e-6)  # Norm 50 clipped to 2.


def test_gradient_accumulation_equals_one_big_batch():
  """k accumulated micro-batches give the update of their mean gradient, once every k calls."""
  k = 3
  base = dict(name="adam", learning_rate=0.1, warmup_steps=2, schedule="cosine",
              grad_clip_norm=1.0)
  accumulated = optim.make_optimizer(_opt_config(**base, grad_accum_steps=k), 4 * k)
  single = optim.make_optimizer(_opt_config(**base), 4)
  rng = np.random.default_rng(0)
  p_acc = p_one = {"w": jnp.asarray(rng.normal(size=5), jnp.float32)}
  s_acc, s_one = accumulated.init(p_acc), single.init(p_one)
  for _ in range(4):
    micro = [{"w": jnp.asarray(rng.normal(size=5), jnp.float32)} for _ in range(k)]
    for i, g in enumerate(micro):
      updates, s_acc = accumulated.update(g, s_acc, p_acc)
      if i < k - 1:
        assert float(jnp.abs(updates["w"]).max()) == 0.0  # No update mid-accumulation.
      p_acc = optax.apply_updates(p_acc, updates)
    mean = jax.tree.map(lambda *g: sum(g) / k, *micro)
    updates, s_one = single.update(mean, s_one, p_one)
    p_one = optax.apply_updates(p_one, updates)
    np.testing.assert_allclose(p_acc["w"], p_one["w"], rtol=1e-5, atol=1e-7)
  # The schedule counts updates: 4 updates of a 12-batch run span the whole cosine.
  assert optim.num_updates(_opt_config(grad_accum_steps=k), 4 * k) == 4
  schedule = optim.learning_rate_schedule(_opt_config(**base, grad_accum_steps=k), 4 * k)
  assert optim.learning_rate_at(schedule, _opt_config(grad_accum_steps=k), 1) == 0.0
  assert optim.learning_rate_at(schedule, _opt_config(grad_accum_steps=k), 4) == pytest.approx(
      0.05)  # Update 1 (batches 4-6): half-way through the 2-update warm-up.
