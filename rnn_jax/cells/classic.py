"""The lecture's cells: the RNN (and the IRNN), GRU and LSTM, and their
layer-normalised forms."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rnn_jax.cells.base import ACTIVATIONS, Cell


@dataclasses.dataclass(frozen=True)
class RNN(Cell):
  """The lecture's cell: h_t = phi(W_hh h_{t-1} + W_hx x_t + b_h)."""
  activation: str = 'tanh'
  gates_read_sum = True

  def __post_init__(self):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f'activation must be one of {sorted(ACTIVATIONS)}, '
                       f'got {self.activation!r}')

  def gates(self, params, carry, xp_t, hp_t):
    h = ACTIVATIONS[self.activation](xp_t + hp_t)
    return h, h


@dataclasses.dataclass(frozen=True)
class IRNN(RNN):
  """The lecture's cell with ReLU and W_hh started at the identity, biases
  at zero and W_xh ~ N(0, 0.001^2) (Le, Jaitly & Hinton 2015, "A Simple
  Way to Initialize Recurrent Networks of Rectified Linear Units", Sec. 2):
  at initialisation h_t = h_{t-1} + relu-part of the input, so gradients
  neither vanish nor explode through the identity."""
  activation: str = 'relu'
  input_std = 0.001

  def init(self, rng, input_size):
    if self.init_scale:  # an explicit U(-s, s) init replaces the IRNN one
      return super().init(rng, input_size)
    h = self.hidden_size
    params = {'W_xh': self.input_std * jax.random.normal(
                  rng, (input_size, h), jnp.float32),
              'W_hh': jnp.eye(h, dtype=jnp.float32),
              'b_h': jnp.zeros((h,), jnp.float32)}
    if not self.recurrent:
      del params['W_hh']
    return params


@dataclasses.dataclass(frozen=True)
class GRU(Cell):
  """GRU in the cuDNN/PyTorch form: the reset gate scales (W_hn h + b_hn).

  This keeps a single fused recurrent matmul per step (d2l applies the reset
  gate before the matmul, which needs a second, dependent matmul).
  """
  num_gates = 3
  gate_params = ('b_hn',)

  def init(self, rng, input_size):
    params = super().init(rng, input_size)
    params['b_hn'] = jnp.zeros((self.hidden_size,))
    return params

  def gates(self, params, carry, xp_t, hp_t):
    xr, xz, xn = jnp.split(xp_t, 3, axis=-1)
    hr, hz, hn = jnp.split(hp_t, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * (hn + params['b_hn']))
    h = (1.0 - z) * n + z * carry
    return h, h


@dataclasses.dataclass(frozen=True)
class LSTM(Cell):
  """LSTM with gates (i, f, g, o); the carry is (c, h)."""
  num_gates = 4
  gates_read_sum = True

  def initial_carry(self, batch_size, dtype=jnp.float32):
    shape = (batch_size, self.hidden_size)
    # Two buffers, not one twice: the train step donates its carry.
    return (jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))

  def hidden(self, carry):
    return carry[1]

  def with_hidden(self, carry, h):
    return (carry[0], h)

  def gates(self, params, carry, xp_t, hp_t):
    c, _ = carry
    i, f, g, o = jnp.split(xp_t + hp_t, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


def _layer_norm(x, gain, bias=None, eps=1e-5):
  """Normalises the last axis to zero mean and unit variance, then
  x * gain (+ bias): the LN(z; alpha, beta) of Ba et al. (2016)."""
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  x = (x - mean) * jax.lax.rsqrt(var + eps) * gain
  return x if bias is None else x + bias


class _LayerNormed(Cell):
  """Ba et al. (2016)'s layer normalisation of a gated cell: the input
  projection and the recurrent projection are each normalised over all
  their G*H units (one gain per unit; the cell's bias b_h stands for both
  shifts), LN(W_xh x_t) + LN(W_hh h_{t-1}) + b_h. The input half stays
  hoisted out of the scan: it is normalised per step, independently."""
  gates_read_sum = False

  def init(self, rng, input_size):
    params = super().init(rng, input_size)
    width = self.num_gates * self.hidden_size
    params['ln_x_gain'] = jnp.ones((width,))
    params['ln_h_gain'] = jnp.ones((width,))
    return params

  def input_projection(self, params, x):
    if jnp.issubdtype(x.dtype, jnp.integer):
      xw = params['W_xh'][x]
    else:
      xw = self.dot(x, params['W_xh'])
    return _layer_norm(xw, params['ln_x_gain']) + params['b_h']

  def gates(self, params, carry, xp_t, hp_t):
    return super().gates(params, carry, xp_t,
                         _layer_norm(hp_t, params['ln_h_gain']))


@dataclasses.dataclass(frozen=True)
class GRULN(_LayerNormed, GRU):
  """`gru` with layer-normalised projections (see `_LayerNormed`):
  r, z = sigmoid(LN(W_x x) + LN(W_h h) + b), n = tanh(LN(W_xn x) + b_n +
  r * (LN(W_hn h) + b_hn)), h_t = (1 - z) n + z h_{t-1}."""
  gate_params = ('b_hn', 'ln_h_gain')


@dataclasses.dataclass(frozen=True)
class LSTMLN(_LayerNormed, LSTM):
  """The layer-normalised LSTM of Ba et al. (2016):
  (i, f, g, o) = LN(W_x x_t) + LN(W_h h_{t-1}) + b,
  c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),
  h_t = sigmoid(o) tanh(LN(c_t; alpha_c, beta_c))."""
  gate_params = ('ln_h_gain', 'ln_c_gain', 'ln_c_bias')

  def init(self, rng, input_size):
    params = super().init(rng, input_size)
    params['ln_c_gain'] = jnp.ones((self.hidden_size,))
    params['ln_c_bias'] = jnp.zeros((self.hidden_size,))
    return params

  def gates(self, params, carry, xp_t, hp_t):
    c, _ = carry
    i, f, g, o = jnp.split(xp_t + _layer_norm(hp_t, params['ln_h_gain']), 4,
                           axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(
        _layer_norm(c, params['ln_c_gain'], params['ln_c_bias']))
    return (c, h), h
