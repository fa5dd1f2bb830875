"""Matrix-memory cells: mLSTM, GLA, DeltaNet, Gated DeltaNet and Mamba-2's
SSD. Each computes its terms (q, k, v, log-decays and, for the delta rule,
write strengths) from x_t; the recurrences themselves, in their sequential,
parallel and chunkwise forms, are rnn_jax/cells/matrix_forms.py.

A cell's readout r_t = S_t^T q_t (per head) becomes its output through a
per-head RMS norm with a learnt scale and an output gate computed from x_t:
y_t = gate(x_t) * norm(r_t), of width hidden_size = num_heads * head size.
The carry is (state, y): the state in float32, and the last output, which
is what the models read as the cell's hidden state.

With `short_conv` = K, q, k and v first pass through a causal depthwise
convolution over the last K steps, then SiLU (the short convolution of
Mamba, GLA's and DeltaNet's fla layers and xLSTM's blocks); the carry then
also holds the K - 1 projections before the next step.

Padding (a False step of the mask) leaves the state as it is, and the
convolution reads the real steps only. A reset (the first step of a packed
segment) restarts the state, and the convolution's history, from zeros.
"""


from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.cells.base import Cell
from rnn_jax.cells.matrix_forms import (MIN_LOG_DECAY, Terms, causal_conv,
                                        update, zero_state)


def _rms_norm(r, scale, eps=1e-6):
  """Per-head RMS norm of r [..., heads, d_v], then a per-channel scale."""
  r = r * jax.lax.rsqrt(jnp.mean(jnp.square(r), -1, keepdims=True) + eps)
  return r.reshape(*r.shape[:-2], -1) * scale


def _inverse_softplus(x):
  return x + jnp.log(-jnp.expm1(-x))


@dataclasses.dataclass(frozen=True)
class MatrixCell(Cell):
  """A multi-head matrix-memory cell (see the module docstring).

  Attributes (besides `Cell`'s):
    num_heads: heads; hidden_size must be a multiple of it, and each head
      has keys and values of hidden_size / num_heads channels.
    init_scale: if set, W_xh is drawn from U(-s, s) (the gates' biases keep
      their own initialisation).
    recurrent: False keeps no state between steps: every step reads only
      its own write (the position-wise layer).
    short_conv: 0, or the width K >= 2 of the causal depthwise convolution
      (then SiLU) on q, k and v (see the module docstring).
  """
  num_heads: int = 4
  short_conv: int = 0

  rule = 'gated'
  recurrent_matmul = False
  gate = staticmethod(jax.nn.silu)  # of the output gate's projection

  def __post_init__(self):
    if self.hidden_size % self.num_heads:
      raise ValueError(f'hidden_size {self.hidden_size} is not a multiple '
                       f'of num_heads {self.num_heads}')
    if self.short_conv == 1 or self.short_conv < 0:
      raise ValueError('short_conv must be 0 (none) or a width >= 2, got '
                       f'{self.short_conv}')

  @property
  def head_size(self) -> int:
    return self.hidden_size // self.num_heads

  def pieces(self) -> dict[str, int]:
    """The parts of the input projection, in order, with their widths."""
    h = self.hidden_size
    return {'q': h, 'k': h, 'v': h, 'o': h}

  def bias_init(self, rng, name: str, width: int) -> jax.Array:
    """The bias of one part of the input projection (zeros by default)."""
    del rng, name
    return jnp.zeros((width,))

  def init(self, rng, input_size):
    pieces = self.pieces()
    k_w, k_b, k_e = jax.random.split(rng, 3)
    width = sum(pieces.values())
    if self.init_scale:
      s = self.init_scale
      w = jax.random.uniform(k_w, (input_size, width), jnp.float32, -s, s)
    else:
      w = jax.nn.initializers.lecun_normal()(k_w, (input_size, width))
    keys = jax.random.split(k_b, len(pieces))
    params = {'W_xh': w,
              'b_h': jnp.concatenate([self.bias_init(key, name, n) for key,
                                      (name, n) in zip(keys, pieces.items())]),
              'norm_scale': jnp.ones((self.hidden_size,))}
    params.update(self.extra_params(k_e))
    if self.short_conv:  # PyTorch's Conv1d initialisation
      bound = self.short_conv ** -0.5
      params['conv'] = jax.random.uniform(
          jax.random.fold_in(k_e, 1), (self.short_conv, 3 * self.hidden_size),
          jnp.float32, -bound, bound)
    return params

  def extra_params(self, rng) -> dict[str, jax.Array]:
    del rng
    return {}

  def split(self, xp):
    """The named parts of projections xp [..., width] in float32, those of
    width hidden_size but the output gate's split into heads [..., heads,
    head_size]."""
    out, start = {}, 0
    for name, n in self.pieces().items():
      part = xp[..., start:start + n].astype(jnp.float32)
      out[name] = (part.reshape(*part.shape[:-1], self.num_heads, -1)
                   if n == self.hidden_size and name != 'o' else part)
      start += n
    return out

  def convolve(self, params, parts, history, mask=None, resets=None):
    """The parts with q, k and v through the short convolution and SiLU
    (over time, `causal_conv`'s arguments), and the history after them."""
    heads = lambda x: x.reshape(*x.shape[:-1], self.num_heads, -1)
    qkv = jnp.concatenate([parts[n].reshape(*parts[n].shape[:-2], -1)
                           for n in 'qkv'], -1)
    out, history = causal_conv(qkv, params['conv'], history, mask, resets)
    q, k, v = jnp.split(jax.nn.silu(out), 3, -1)
    return {**parts, 'q': heads(q), 'k': heads(k), 'v': heads(v)}, history

  def terms(self, params, parts) -> Terms:
    raise NotImplementedError

  def output(self, params, readout, parts):
    """y = gate(o) * norm(readout): [..., heads, d_v] -> [..., hidden]."""
    return self.gate(parts['o']) * _rms_norm(readout, params['norm_scale'])

  def initial_carry(self, batch_size, dtype=jnp.float32):
    """(state, y), and with short_conv the K - 1 projections of q, k and v
    before the next step [B, K - 1, 3 hidden_size]."""
    d = self.head_size
    carry = (zero_state(self.rule, batch_size, self.num_heads, d, d),
             jnp.zeros((batch_size, self.hidden_size), dtype))
    if self.short_conv:
      carry += (jnp.zeros((batch_size, self.short_conv - 1,
                           3 * self.hidden_size), jnp.float32),)
    return carry

  def state_size(self):
    """The matrices (with the mLSTM's normaliser and stabiliser) and the
    convolution's history; not the output y the carry also keeps."""
    carry = self.initial_carry(1)
    return sum(x.size for x in jax.tree.leaves((carry[0], carry[2:])))

  def hidden(self, carry):
    return carry[1]

  def with_hidden(self, carry, h):
    return (carry[0], h, *carry[2:])

  def step(self, params, carry, xp_t):
    parts = self.split(xp_t)
    history = carry[2:]
    if self.short_conv:
      seen = carry[2] if self.recurrent else jnp.zeros_like(carry[2])
      parts, seen = self.convolve(params, jax.tree.map(lambda x: x[None],
                                                       parts), seen)
      parts, history = jax.tree.map(lambda x: x[0], parts), (seen,)
    terms = self.terms(params, parts)
    if not self.recurrent:
      terms = terms._replace(g=jnp.full_like(terms.g, -jnp.inf))
    state, r = update(self.rule, carry[0], terms)
    y = self.output(params, r, parts).astype(carry[1].dtype)
    return (state, y, *history), y

  def gates(self, params, carry, xp_t, hp_t):
    del hp_t
    return self.step(params, carry, xp_t)


@dataclasses.dataclass(frozen=True)
class MLSTM(MatrixCell):
  """The mLSTM of xLSTM (Beck et al. 2024, Sec. 2.3), per head:
    C_t = f_t C_{t-1} + i_t v_t k_t^T,   n_t = f_t n_{t-1} + i_t k_t,
    h_t = o_t * C_t q_t / max(|n_t^T q_t|, 1),
  k_t scaled by 1/sqrt(d), the input gate exponential, i_t = exp(i~_t), the
  forget gate f_t = sigmoid(f~_t), o_t = sigmoid(W_o x_t + b_o), and the
  stabiliser m_t = max(log f_t + m_{t-1}, i~_t) of Eq. (15)-(17), which
  changes no output. The head's h is RMS-normed before the output gate (the
  paper's group norm). f~'s biases start spread over [3, 6] across heads, as
  in the paper's code."""
  rule = 'mlstm'
  gate = staticmethod(jax.nn.sigmoid)

  def pieces(self):
    return {**super().pieces(), 'i': self.num_heads, 'f': self.num_heads}

  def bias_init(self, rng, name, width):
    if name == 'f':
      return jnp.linspace(3.0, 6.0, width)
    return super().bias_init(rng, name, width)

  def terms(self, params, parts):
    return Terms(parts['q'], parts['k'] * self.head_size ** -0.5, parts['v'],
                 jax.nn.log_sigmoid(parts['f']), i=parts['i'])


@dataclasses.dataclass(frozen=True)
class GLA(MatrixCell):
  """Gated linear attention (Yang et al. 2024, Eq. 3 and Sec. 4.4), per
  head: S_t = Diag(alpha_t) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t, with one
  decay per key channel, alpha_t = sigmoid(W_a x_t + b_a)^(1/16) (kept above
  exp(MIN_LOG_DECAY) = 0.0067), queries scaled by 1/sqrt(d), and the output
  gate swish(W_r x_t + b_r) after a per-head norm."""
  normalizer = 16.0

  def pieces(self):
    return {**super().pieces(), 'a': self.hidden_size}

  def terms(self, params, parts):
    log_alpha = jax.nn.log_sigmoid(parts['a']) / self.normalizer
    return Terms(parts['q'] * self.head_size ** -0.5, parts['k'], parts['v'],
                 jnp.maximum(log_alpha, MIN_LOG_DECAY))


def _ssm_decay(params, dt):
  """Mamba-2's step size and log-decay per head: Delta = softplus(dt) (the
  bias carries dt_bias) and log a = -exp(A_log) Delta."""
  delta = jax.nn.softplus(dt)
  return delta, -jnp.exp(params['A_log']) * delta


def _ssm_params(rng, heads):
  """A in [1, 16] per head, as Mamba-2 starts it."""
  return {'A_log': jnp.log(jax.random.uniform(rng, (heads,), jnp.float32,
                                              1.0, 16.0))}


def _dt_bias(rng, width):
  """dt's bias: softplus(bias) log-uniform in [0.001, 0.1] (Mamba-2)."""
  dt = jnp.exp(jax.random.uniform(rng, (width,), jnp.float32,
                                  np.log(1e-3), np.log(1e-1)))
  return _inverse_softplus(dt)


@dataclasses.dataclass(frozen=True)
class DeltaNet(MatrixCell):
  """DeltaNet, the delta rule (Schlag et al. 2021; chunkwise by Yang et al.
  2024), per head: S_t = S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T,
  o_t = S_t q_t, with q_t and k_t L2-normalised, beta_t = sigmoid(W_b x_t +
  b_b), and the output gate swish(W_r x_t + b_r) after a per-head norm.
  (The state is stored transposed, [d_k, d_v].)"""
  rule = 'delta'

  def pieces(self):
    return {**super().pieces(), 'b': self.num_heads}

  def terms(self, params, parts):
    unit = lambda x: x * jax.lax.rsqrt(jnp.sum(x * x, -1, keepdims=True)
                                       + 1e-6)
    return Terms(unit(parts['q']), unit(parts['k']), parts['v'],
                 self.log_decay(params, parts), b=jax.nn.sigmoid(parts['b']))

  def log_decay(self, params, parts):
    del params
    return jnp.zeros_like(parts['b'])


@dataclasses.dataclass(frozen=True)
class GatedDeltaNet(DeltaNet):
  """Gated DeltaNet (Yang et al. 2025, Eq. 10): the delta rule with a decay,
  S_t = S_{t-1} (alpha_t (I - beta_t k_t k_t^T)) + beta_t v_t k_t^T, where
  alpha_t = exp(-exp(A_log) softplus(W_a x_t + b_a)) per head, parametrised
  as Mamba-2's step size."""

  def pieces(self):
    return {**super().pieces(), 'a': self.num_heads}

  def bias_init(self, rng, name, width):
    return (_dt_bias(rng, width) if name == 'a'
            else super().bias_init(rng, name, width))

  def extra_params(self, rng):
    return _ssm_params(rng, self.num_heads)

  def log_decay(self, params, parts):
    return _ssm_decay(params, parts['a'])[1]


@dataclasses.dataclass(frozen=True)
class Mamba2(MatrixCell):
  """Mamba-2's state-space dual layer (Dao & Gu 2024, Sec. 7-8), per head
  with its own B_t, C_t of head-size channels: a scalar decay a_t =
  exp(Delta_t A), h_t = a_t h_{t-1} + Delta_t B_t x_t^T, y_t = h_t^T C_t +
  D x_t, Delta_t = softplus(W_dt x_t + b_dt), A < 0 and D learnt per head;
  in the gated rule's terms q = C, k = Delta B, v = x. The output gate is
  silu(z_t) after a per-head norm, as in the paper's block."""

  def pieces(self):
    return {**super().pieces(), 'dt': self.num_heads}

  def bias_init(self, rng, name, width):
    return (_dt_bias(rng, width) if name == 'dt'
            else super().bias_init(rng, name, width))

  def extra_params(self, rng):
    return {**_ssm_params(rng, self.num_heads),
            'D': jnp.ones((self.num_heads,))}

  def terms(self, params, parts):
    delta, log_a = _ssm_decay(params, parts['dt'])
    return Terms(parts['q'], parts['k'] * delta[..., None], parts['v'], log_a)

  def output(self, params, readout, parts):
    readout = readout + params['D'][:, None] * parts['v']
    return super().output(params, readout, parts)
