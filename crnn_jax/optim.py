"""Optimizers and learning-rate schedules from `config.optimizer`.

Step counts: `num_train_steps` counts batches (train-step calls). With gradient accumulation
(`grad_accum_steps` k > 1) the optimizer updates the parameters once every k batches, and the
schedule's own lengths (`warmup_steps`, `step_decay_every`) count those optimizer updates.
"""

from __future__ import annotations

import math

import optax


def grad_accum_steps(opt_config) -> int:
  k = int(opt_config.get("grad_accum_steps", 1) or 1)
  if k < 1:
    raise ValueError(f"optimizer.grad_accum_steps must be >= 1, got {k}")
  return k


def num_updates(opt_config, num_train_steps: int) -> int:
  """Optimizer updates in a run of `num_train_steps` batches."""
  return math.ceil(num_train_steps / grad_accum_steps(opt_config))


def base_learning_rate(opt_config, batch_size: int | None = None) -> float:
  """`learning_rate`, linearly scaled with the effective batch if `scale_lr_with_batch`.

  The effective batch is `batch_size * grad_accum_steps`; the scaled rate is
  `learning_rate * effective_batch / reference_batch_size` (Goyal et al., 2017).

  Args:
    opt_config: `config.optimizer`.
    batch_size: the global batch size (required when scaling).
  """
  lr = opt_config.learning_rate
  if not opt_config.get("scale_lr_with_batch", False):
    return lr
  if not batch_size:
    raise ValueError("optimizer.scale_lr_with_batch needs the global batch size")
  effective = batch_size * grad_accum_steps(opt_config)
  return lr * effective / opt_config.reference_batch_size


def learning_rate_schedule(opt_config, num_train_steps: int, batch_size: int | None = None
                           ) -> optax.Schedule:
  """Linear warm-up, then constant, cosine decay to 0, or step decay.

  Args:
    opt_config: `config.optimizer`.
    num_train_steps: batches in the run.
    batch_size: the global batch size (used when `scale_lr_with_batch`).

  Returns:
    The learning rate as a function of the optimizer-update count (0-based).
  """
  base = base_learning_rate(opt_config, batch_size)
  total = num_updates(opt_config, num_train_steps)
  warmup = min(opt_config.warmup_steps, max(total - 1, 0))
  name = opt_config.schedule
  if name == "constant":
    main = optax.constant_schedule(base)
  elif name == "cosine":
    main = optax.cosine_decay_schedule(base, max(total - warmup, 1))
  elif name == "step":
    main = optax.exponential_decay(base, opt_config.step_decay_every,
                                   opt_config.step_decay_rate, staircase=True)
  else:
    raise ValueError(f"optimizer.schedule must be 'constant', 'cosine' or 'step', got {name!r}")
  if not warmup:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def learning_rate_at(schedule: optax.Schedule, opt_config, step: int) -> float:
  """The learning rate applied by train step `step` (1-based batch count)."""
  return float(schedule((step - 1) // grad_accum_steps(opt_config)))


def make_optimizer(opt_config, num_train_steps: int, batch_size: int | None = None
                   ) -> optax.GradientTransformation:
  """Gradient clipping (if enabled), then SGD, Adadelta, Adam or AdamW, accumulated over k steps.

  Args:
    opt_config: `config.optimizer`.
    num_train_steps: batches in the run (sets the schedule's length).
    batch_size: the global batch size (used when `scale_lr_with_batch`).

  Returns:
    The optimizer; with `grad_accum_steps` k > 1 an `optax.MultiSteps` that averages the
    gradients of k consecutive batches and updates the parameters on every k-th call (returning
    zero updates on the others).
  """
  schedule = learning_rate_schedule(opt_config, num_train_steps, batch_size)
  name = opt_config.name
  if name == "adadelta":  # The paper: rho 0.9; learning rate 1 is Adadelta's own scale.
    opt = optax.adadelta(schedule, rho=opt_config.adadelta_rho, eps=1e-6)
  elif name == "adam":
    opt = optax.adam(schedule)
  elif name == "adamw":
    opt = optax.adamw(schedule, weight_decay=opt_config.weight_decay)
  elif name == "sgd":
    opt = optax.sgd(schedule, momentum=opt_config.get("momentum", 0.0) or None)
  else:
    raise ValueError("optimizer.name must be 'adadelta', 'adam', 'adamw' or 'sgd', "
                     f"got {name!r}")
  if opt_config.grad_clip_norm:
    opt = optax.chain(optax.clip_by_global_norm(opt_config.grad_clip_norm), opt)
  k = grad_accum_steps(opt_config)
  if k > 1:
    opt = optax.MultiSteps(opt, every_k_schedule=k).gradient_transformation()
  return opt
