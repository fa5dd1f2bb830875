"""Diagonal linear recurrences h_t = a_t * h_{t-1} + b_t, with (a_t, b_t)
from x_t alone: minGRU, minLSTM, RG-LRU, LRU."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rnn_jax.cells.base import Cell


# ----------------------------------------------------------------------------
# Linear recurrences: h_t = a_t * h_{t-1} + b_t, element-wise, with a_t and
# b_t computed from x_t alone. No W_hh: the whole sequence is one
# associative scan (parallel over time) or a sequential scan of
# multiply-adds; `recurrence.run` chooses.


@dataclasses.dataclass(frozen=True)
class LinearCell(Cell):
  """A cell whose state follows h_t = a_t * h_{t-1} + b_t.

  `coefficients(params, xp)` maps input projections of any leading shape to
  (a, b); `outputs(params, hs, xp)` maps states to the cell's outputs (the
  states themselves by default). A padded step is a = 1, b = 0.
  """
  recurrent_matmul = False

  def init(self, rng, input_size):
    k_x, k_b = jax.random.split(rng)
    shape = (input_size, self.num_gates * self.hidden_size)
    if self.init_scale:
      s = self.init_scale
      return {'W_xh': jax.random.uniform(k_x, shape, jnp.float32, -s, s),
              'b_h': jax.random.uniform(k_b, shape[1:], jnp.float32, -s, s)}
    return {'W_xh': jax.nn.initializers.glorot_uniform()(k_x, shape),
            'b_h': jnp.zeros(shape[1:])}

  def coefficients(self, params, xp):
    raise NotImplementedError

  def state(self, carry):
    """The part of the carry the recurrence runs on."""
    return carry

  def state_size(self):
    """The recurrence's state (not an output the carry also keeps), a
    complex number counted as two floats."""
    state = self.state(self.initial_carry(1))
    return state.size * (2 if jnp.iscomplexobj(state) else 1)

  def outputs(self, params, hs, xp):
    del params, xp
    return hs

  def to_carry(self, h, y):
    del y
    return h

  def step(self, params, carry, xp_t):
    a, b = self.coefficients(params, xp_t)
    h = a * self.state(carry) + b
    y = self.outputs(params, h, xp_t)
    return self.to_carry(h, y), y

  def gates(self, params, carry, xp_t, hp_t):
    del hp_t
    return self.step(params, carry, xp_t)

  def _decay(self, a):
    """a, or zeros without recurrence (the position-wise layer)."""
    return a if self.recurrent else jnp.zeros_like(a)


@dataclasses.dataclass(frozen=True)
class MinGRU(LinearCell):
  """minGRU (Feng et al. 2024, "Were RNNs All We Needed?", Sec. 3.1): the
  GRU with its gates read from x_t only and no tanh on the candidate,
  z_t = sigmoid(W_z x_t + b_z), h~_t = W_h x_t + b_h,
  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t."""
  num_gates = 2

  def coefficients(self, params, xp):
    k, candidate = jnp.split(xp, 2, axis=-1)
    z = jax.nn.sigmoid(k)
    return self._decay(1.0 - z), z * candidate


@dataclasses.dataclass(frozen=True)
class MinLSTM(LinearCell):
  """minLSTM (Feng et al. 2024, Sec. 3.2): forget and input gates from x_t
  only, normalised to sum to one, no output gate, h_t = c_t:
  f_t = sigmoid(W_f x_t + b_f), i_t = sigmoid(W_i x_t + b_i),
  h~_t = W_h x_t + b_h, h_t = f_t/(f_t+i_t) * h_{t-1} + i_t/(f_t+i_t) * h~_t.
  (sigmoid(f)/(sigmoid(f)+sigmoid(i)) is computed as the stable
  sigmoid(log sigmoid(f) - log sigmoid(i)).)"""
  num_gates = 3

  def coefficients(self, params, xp):
    kf, ki, candidate = jnp.split(xp, 3, axis=-1)
    f = jax.nn.sigmoid(jax.nn.log_sigmoid(kf) - jax.nn.log_sigmoid(ki))
    return self._decay(f), (1.0 - f) * candidate


@dataclasses.dataclass(frozen=True)
class RGLRU(LinearCell):
  """The Real-Gated Linear Recurrent Unit of Hawk/Griffin (De et al. 2024,
  Sec. 2.4): with v_t = W_v x_t + b_v the value the recurrence reads,
  r_t = sigmoid(W_a x_t + b_a) (recurrence gate),
  i_t = sigmoid(W_x x_t + b_x) (input gate),
  a_t = a^(c r_t) with a = sigmoid(Lambda), c = 8,
  h_t = a_t * h_{t-1} + sqrt(1 - a_t^2) * (i_t * v_t).
  Lambda starts where a^c is uniform in [0.9, 0.999], as in the paper. (The
  paper's block around it -- a convolution and a GeLU-gated branch -- is
  not part of the cell.)"""
  num_gates = 3
  c = 8.0
  a_min = 0.9
  a_max = 0.999

  def init(self, rng, input_size):
    k_p, k_a = jax.random.split(rng)
    params = super().init(k_p, input_size)
    a_c = jax.random.uniform(k_a, (self.hidden_size,), jnp.float32,
                             self.a_min, self.a_max)
    a = a_c ** (1.0 / self.c)
    params['Lambda'] = jnp.log(a) - jnp.log1p(-a)  # sigmoid(Lambda) = a
    return params

  def coefficients(self, params, xp):
    kr, ki, v = jnp.split(xp, 3, axis=-1)
    log_a = -self.c * jax.nn.sigmoid(kr) * jax.nn.softplus(-params['Lambda'])
    a = jnp.exp(log_a)
    # sqrt(1 - a^2) = sqrt(-expm1(2 log a)), accurate for a near 1; kept off
    # 0 (r_t -> 0 makes a_t = 1), where the square root's slope is infinite.
    scale = jnp.sqrt(jnp.maximum(-jnp.expm1(2.0 * log_a), 1e-12))
    return self._decay(a), scale * jax.nn.sigmoid(ki) * v


@dataclasses.dataclass(frozen=True)
class LRU(LinearCell):
  """The Linear Recurrent Unit (Orvieto et al. 2023), N = hidden_size
  complex states, outputs of width hidden_size:
    x_k = Lambda x_{k-1} + gamma * (B u_k),   y_k = Re(C x_k) + D u_k,
  Lambda diagonal with the exponential parametrisation of Sec. 3.3,
  lambda_j = exp(-exp(nu_j) + i exp(theta_j)), initialised uniformly on the
  ring r_min <= |lambda| <= r_max with phases in [0, max_phase] (Lemma 3.2),
  and gamma_j = sqrt(1 - |lambda_j|^2) (Sec. 3.4), kept as log gamma and
  trained. B (complex, N(0, 1/(2 D)) parts), C (complex, N(0, 1/N) parts) and
  D as in the paper, except that D is a full matrix here (a layer's input
  width need not equal its output width) and B u_k and D u_k share the
  cell's bias b_h (zeros at start; the paper has none).

  The carry is (state, y): the state as [B, 2N] real (real parts, then
  imaginary parts) and the last output y, which is what the models read.
  """
  num_gates = 3  # W_xh = [B_re | B_im | D]
  r_min = 0.9
  r_max = 0.999
  max_phase = 2 * jnp.pi

  def init(self, rng, input_size):
    n = self.hidden_size
    k_re, k_im, k_d, k_c, k_r, k_th = jax.random.split(rng, 6)
    b_std = (2.0 * input_size) ** -0.5
    u = jax.random.uniform(k_r, (n,))
    nu = jnp.log(-0.5 * jnp.log(u * (self.r_max**2 - self.r_min**2)
                                + self.r_min**2))
    theta = jnp.log(self.max_phase * jax.random.uniform(k_th, (n,)))
    modulus = jnp.exp(-jnp.exp(nu))
    return {
        'W_xh': jnp.concatenate([
            jax.random.normal(k_re, (input_size, n)) * b_std,
            jax.random.normal(k_im, (input_size, n)) * b_std,
            jax.nn.initializers.glorot_uniform()(k_d, (input_size, n))], 1),
        'b_h': jnp.zeros((3 * n,)),
        # [C_re^T; -C_im^T], so that Re(C x) = [x_re, x_im] @ W_hy.
        'W_hy': jax.random.normal(k_c, (2 * n, n)) * n ** -0.5,
        'nu_log': nu,
        'theta_log': theta,
        'gamma_log': 0.5 * jnp.log1p(-modulus**2),
    }

  def initial_carry(self, batch_size, dtype=jnp.float32):
    return (jnp.zeros((batch_size, 2 * self.hidden_size), dtype),
            jnp.zeros((batch_size, self.hidden_size), dtype))

  def hidden(self, carry):
    return carry[1]

  def with_hidden(self, carry, h):
    return (carry[0], h)

  def coefficients(self, params, xp):
    b_re, b_im, _ = jnp.split(xp, 3, axis=-1)
    lam = jnp.exp(-jnp.exp(params['nu_log'])
                  + 1j * jnp.exp(params['theta_log']))
    gamma = jnp.exp(params['gamma_log'])
    a = jnp.broadcast_to(self._decay(lam), b_re.shape)
    return a, gamma * jax.lax.complex(b_re, b_im)

  def state(self, carry):
    n = self.hidden_size
    return jax.lax.complex(carry[0][..., :n], carry[0][..., n:])

  def outputs(self, params, hs, xp):
    parts = jnp.concatenate([hs.real, hs.imag], -1)
    return self.dot(parts, params['W_hy']) + xp[..., 2 * self.hidden_size:]

  def to_carry(self, h, y):
    return (jnp.concatenate([h.real, h.imag], -1), y)
