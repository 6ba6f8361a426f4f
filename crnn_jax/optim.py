"""Optimizers and learning-rate schedules from `config.optimizer`."""

from __future__ import annotations

import optax


def learning_rate_schedule(opt_config, num_train_steps: int) -> optax.Schedule:
  """Linear warm-up, then constant, cosine decay to 0, or step decay."""
  base = opt_config.learning_rate
  warmup = min(opt_config.warmup_steps, max(num_train_steps - 1, 0))
  name = opt_config.schedule
  if name == "constant":
    main = optax.constant_schedule(base)
  elif name == "cosine":
    main = optax.cosine_decay_schedule(base, max(num_train_steps - warmup, 1))
  elif name == "step":
    main = optax.exponential_decay(base, opt_config.step_decay_every,
                                   opt_config.step_decay_rate, staircase=True)
  else:
    raise ValueError(f"optimizer.schedule must be 'constant', 'cosine' or 'step', got {name!r}")
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def make_optimizer(opt_config, num_train_steps: int) -> optax.GradientTransformation:
  """Gradient clipping (if enabled) followed by Adadelta, Adam or AdamW."""
  schedule = learning_rate_schedule(opt_config, num_train_steps)
  name = opt_config.name
  if name == "adadelta":  # The paper: rho 0.9; learning rate 1 is Adadelta's own scale.
    opt = optax.adadelta(schedule, rho=opt_config.adadelta_rho, eps=1e-6)
  elif name == "adam":
    opt = optax.adam(schedule)
  elif name == "adamw":
    opt = optax.adamw(schedule, weight_decay=opt_config.weight_decay)
  else:
    raise ValueError(f"optimizer.name must be 'adadelta', 'adam' or 'adamw', got {name!r}")
  if opt_config.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(opt_config.grad_clip_norm), opt)
  return opt
