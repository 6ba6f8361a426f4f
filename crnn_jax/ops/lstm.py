"""A bidirectional LSTM layer whose time loop holds only the recurrent products.

Under autodiff, `flax.linen.RNN(OptimizedLSTMCell)` runs every matrix product of the layer inside
its `lax.scan`: per direction and frame, the input and hidden projections going forward, and
going backward the input and hidden gradients plus the weight-gradient updates, products that
contract over only B rows. Here the loop keeps what is sequential, one `[B, H] @ [H, 4H]`
product per direction and frame, forward and backward; the rest is a few large products over
all T * B frames, as cuDNN's LSTM does:

- the input projections `x @ W_i` (plus bias) of both directions, before the loop, which
  autodiff differentiates with large products too;
- the recurrent weight gradient `dW_h = sum_t h_{t-1}^T dz_t`, after the backward loop
  (`_recurrence_bwd`, a custom VJP).

All arrays are 2-D `[T * B, .]` or `[T, B, .]` per direction (4-D stacks of both directions made
XLA:CPU insert transposes and batched products), and the bias gradient is a
`fast_layers.channel_sum` (XLA:CPU's own column sum over `[T * B, 4H]` is slow).

The backward direction runs forward in time over the reversed sequence; a frame beyond a
sample's length holds the state at zero, so that direction starts fresh at each sample's last
real frame, as flax's `nn.RNN(..., seq_lengths=...)` does. Outputs on real frames equal flax's;
on padding frames they are zero.

Its speed against flax's `nn.Bidirectional(nn.RNN(OptimizedLSTMCell))` is in docs/benchmarks.md
(section "Speed on a 2-core CPU").
tests/ops/test_lstm.py compares values and gradients with flax's layer in float64.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from crnn_jax.ops import fast_layers

GATES = ("i", "f", "g", "o")  # flax's OptimizedLSTMCell order.


def _cell(z, c, real):
  """One LSTM update from pre-activations `z [B, 4H]`; returns (c, h, gate activations)."""
  i, f, g, o = jnp.split(z, 4, axis=-1)
  i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
  c = jnp.where(real, f * c + i * g, 0.0)
  h = jnp.where(real, o * jnp.tanh(c), 0.0)
  return c, h, jnp.concatenate([i, f, g, o], -1)


def _forward_scan(pres, w_hs, reals):
  """Both directions' loop; per direction (h `[T, B, H]`, c `[T, B, H]`, gates `[T, B, 4H]`)."""
  hidden = w_hs[0].shape[0]
  zeros = jnp.zeros(pres[0].shape[1:-1] + (hidden,), jnp.promote_types(pres[0].dtype,
                                                                       jnp.float32))

  def step(carry, inputs):
    new_carry, outputs = [], []
    for (c, h), z, w_h, real in zip(carry, inputs[0], w_hs, inputs[1]):
      c, h, gates = _cell(z + h.astype(w_h.dtype) @ w_h, c, real)
      new_carry.append((c, h))
      outputs.append((h, c, gates))
    return tuple(new_carry), tuple(outputs)

  _, outputs = lax.scan(step, ((zeros, zeros), (zeros, zeros)), (pres, reals))
  return outputs


@jax.custom_vjp
def recurrence(pres, w_hs, reals):
  """The LSTM recurrence of two directions in one loop.

  Args:
    pres: per direction, `[T, B, 4H]` input projections plus bias in that direction's time
      order, gates in (i, f, g, o) order.
    w_hs: per direction, the `[H, 4H]` recurrent kernel (the dtype the products run in).
    reals: per direction, `[T, B, 1]` bool, False on padding frames (the state is held at zero).

  Returns:
    Per direction, `[T, B, H]` hidden states (at least float32), zero on padding frames.
  """
  return tuple(h for h, _, _ in _forward_scan(pres, w_hs, reals))


def _recurrence_fwd(pres, w_hs, reals):
  outputs = _forward_scan(pres, w_hs, reals)
  return tuple(h for h, _, _ in outputs), (outputs, w_hs, reals)


def _shift(a):
  """`a[t - 1]` at t, zero at t = 0: `[T, ...]`."""
  return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]])


def _recurrence_bwd(residuals, dhs):
  outputs, w_hs, reals = residuals
  w_h_ts = tuple(w.T for w in w_hs)

  def step(carry, inputs):
    new_carry, dzs = [], []
    for (dh_next, dc_next), (dh, gates, c, c_prev, real), w_h_t in zip(carry, inputs, w_h_ts):
      dh = jnp.where(real, dh + dh_next, 0.0)
      i, f, g, o = jnp.split(gates, 4, axis=-1)
      tanh_c = jnp.tanh(c)
      dc = jnp.where(real, dc_next + dh * o * (1.0 - tanh_c * tanh_c), 0.0)
      dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                            dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)], -1)
      new_carry.append(((dz.astype(w_h_t.dtype) @ w_h_t).astype(dh.dtype), dc * f))
      dzs.append(dz)
    return tuple(new_carry), tuple(dzs)

  sequences = tuple((dh, gates, c, _shift(c), real)
                    for dh, (_, c, gates), real in zip(dhs, outputs, reals))
  zeros = jnp.zeros_like(outputs[0][0][0])
  _, dzs = lax.scan(step, ((zeros, zeros), (zeros, zeros)), sequences, reverse=True)
  dw_hs = []
  for (h, _, _), dz, w_h in zip(outputs, dzs, w_hs):
    # One product over all T * B frames: sum_t h_{t-1}^T dz_t.
    h_prev = _shift(h).reshape(-1, h.shape[-1]).astype(w_h.dtype)
    dw_hs.append(jnp.dot(h_prev.T, dz.reshape(-1, dz.shape[-1]).astype(w_h.dtype),
                         preferred_element_type=h.dtype).astype(w_h.dtype))
  dpres = tuple(dz.astype(gates.dtype) for dz, (_, _, gates) in zip(dzs, outputs))
  return dpres, tuple(dw_hs), None


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def gate_kernels(cell: dict, dtype) -> tuple[jax.Array, jax.Array, jax.Array]:
  """An OptimizedLSTMCell's kernels with the gates side by side, in `dtype`.

  Returns:
    `W_i [D, 4H]`, `W_h [H, 4H]` and the bias `[4H]`, gates in (i, f, g, o) order.
  """
  join = lambda name, key: jnp.concatenate(
      [jnp.asarray(cell[f"{name}{g}"][key], dtype) for g in GATES], -1)
  return join("i", "kernel"), join("h", "kernel"), join("h", "bias")


def bidirectional_lstm(x: jax.Array, lengths: jax.Array, forward_cell: dict, backward_cell: dict,
                       dtype=None) -> jax.Array:
  """Both directions of a bidirectional LSTM with flax OptimizedLSTMCell parameters.

  Args:
    x: `[B, T, D]` inputs.
    lengths: `[B]` real frames per sample.
    forward_cell, backward_cell: OptimizedLSTMCell parameters: `i{gate}` `{kernel [D, H]}` and
      `h{gate}` `{kernel [H, H], bias [H]}` for gate in i, f, g, o.
    dtype: dtype of the matrix products (default: x's); the cell and hidden states carried
      from frame to frame are at least float32.

  Returns:
    `[B, T, 2H]` forward and backward hidden states (at least float32), zero on padding frames.
  """
  dtype = dtype or x.dtype
  batch, frames, _ = x.shape
  x_tm = jnp.transpose(x.astype(dtype), (1, 0, 2)).reshape(frames * batch, -1)  # [T * B, D]
  steps = jnp.arange(frames)
  pres, w_hs, reals = [], [], []
  for cell, reverse in ((forward_cell, False), (backward_cell, True)):
    w_i, w_h, b_h = gate_kernels(cell, dtype)
    pre = x_tm @ w_i
    pre = (pre + fast_layers.channel_broadcast(b_h, pre.shape)).reshape(frames, batch, -1)
    t = steps[::-1] if reverse else steps
    pres.append(lax.rev(pre, (0,)) if reverse else pre)
    w_hs.append(w_h)
    reals.append((t[:, None] < lengths[None, :])[..., None])
  h_forward, h_backward = recurrence(tuple(pres), tuple(w_hs), tuple(reals))
  y = jnp.concatenate([h_forward, lax.rev(h_backward, (0,))], -1)  # [T, B, 2H]
  return jnp.transpose(y, (1, 0, 2))


class LSTMCellParams(nn.Module):
  """The parameters of a `flax.linen.OptimizedLSTMCell` (same names, shapes, initializers).

  Attributes:
    hidden: H, units.
  """

  hidden: int

  @nn.compact
  def __call__(self, in_features: int) -> dict:
    """Returns `{'i{gate}': {'kernel' [D, H]}, 'h{gate}': {'kernel' [H, H], 'bias' [H]}}`."""
    out = {}
    for gate in GATES:
      kernel, _ = nn.recurrent.DenseParams(
          self.hidden, use_bias=False, kernel_init=nn.initializers.lecun_normal(),
          name=f"i{gate}")(jax.ShapeDtypeStruct((in_features,), jnp.float32))
      out[f"i{gate}"] = {"kernel": kernel}
      kernel, bias = nn.recurrent.DenseParams(
          self.hidden, kernel_init=nn.initializers.orthogonal(),
          name=f"h{gate}")(jax.ShapeDtypeStruct((self.hidden,), jnp.float32))
      out[f"h{gate}"] = {"kernel": kernel, "bias": bias}
    return out
