"""Recurrent cells as pure functions over a params dict.

Every cell splits its work in two, as cuDNN does:

* ``input_projection(params, x)`` maps the inputs of *all* time steps,
  ``[T, B, D] -> [T, B, G*H]``, in one large matmul outside the scan;
* ``step(params, carry, xp_t)`` does what must be sequential: the recurrent
  matmul ``h_{t-1} @ W_hh`` and the gate nonlinearities.

All three cells share the parameter names of the lecture: ``W_xh`` (input to
hidden, gates stacked along the last axis), ``W_hh`` (hidden to hidden) and
``b_h``. The output layer ``o_t = W_ho h_t + b_o`` belongs to the model that
reads the hidden states (see ``models.py``), so that stacks can feed one cell's
``h`` into the next.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
Carry = Any


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def mixed_dot(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x [..., K] @ w [K, N] with `dtype` (say bfloat16) operands, accumulated
  and returned in float32; the two gradient matmuls get `dtype` operands too.

  (Differentiating jnp.dot(..., preferred_element_type=float32) would pair a
  float32 cotangent with a bfloat16 operand: float32 matmuls. XLA on CPU
  still runs some bfloat16 dots that contract a transposed operand in
  float32.)
  """
  return jnp.dot(x.astype(dtype), w.astype(dtype),
                 preferred_element_type=jnp.float32)


def _mixed_dot_fwd(x, w, dtype):
  return mixed_dot(x, w, dtype), (x, w)


def _mixed_dot_bwd(dtype, residuals, g):
  x, w = residuals
  g = g.astype(dtype)
  dx = jnp.dot(g, w.astype(dtype).T, preferred_element_type=jnp.float32)
  dw = jnp.dot(x.reshape(-1, x.shape[-1]).astype(dtype).T,
               g.reshape(-1, g.shape[-1]), preferred_element_type=jnp.float32)
  return dx.astype(x.dtype), dw.astype(w.dtype)


mixed_dot.defvjp(_mixed_dot_fwd, _mixed_dot_bwd)

ACTIVATIONS = {'tanh': jnp.tanh, 'relu': jax.nn.relu}


@dataclasses.dataclass(frozen=True)
class Cell:
  """Shared parameter layout: W_xh [D, G*H], W_hh [H, G*H], b_h [G*H].

  Attributes:
    hidden_size: H.
    init_scale: if set, every parameter is drawn from U(-s, s) (Zaremba et
      al. 2014); otherwise W_xh is Glorot-uniform, W_hh orthogonal per gate
      and biases zero.
    recurrent: False drops the W_hh term, which turns the cell into a
      position-wise feed-forward layer (the MLP of the lecture).
    compute_dtype: the dtype of the matmuls' operands (say jnp.bfloat16);
      they accumulate in float32, and the parameters, the carry and the gate
      math stay float32 (mixed precision). None: everything float32.
  """
  hidden_size: int
  init_scale: float | None = None
  recurrent: bool = True
  compute_dtype: Any = None

  num_gates = 1

  def init(self, rng: jax.Array, input_size: int) -> Params:
    h, g = self.hidden_size, self.num_gates
    k_x, k_h, k_b = jax.random.split(rng, 3)
    shapes = {'W_xh': (input_size, g * h), 'W_hh': (h, g * h), 'b_h': (g * h,)}
    if self.init_scale:
      s = self.init_scale
      params = {name: jax.random.uniform(k, shape, jnp.float32, -s, s)
                for (name, shape), k in zip(shapes.items(), (k_x, k_h, k_b))}
    else:
      orth = jax.nn.initializers.orthogonal()
      params = {
          'W_xh': jax.nn.initializers.glorot_uniform()(k_x, shapes['W_xh']),
          # One orthogonal block per gate keeps each gate's recurrence
          # norm-preserving at initialisation.
          'W_hh': jnp.concatenate(
              [orth(k, (h, h)) for k in jax.random.split(k_h, g)], axis=1),
          'b_h': jnp.zeros(shapes['b_h']),
      }
    if not self.recurrent:
      del params['W_hh']
    return params

  def input_projection(self, params: Params, x: jax.Array) -> jax.Array:
    """[..., D] -> [..., G*H]; called once on the whole sequence.

    Integer `x` [...] are the indices of one-hot inputs: the projection is
    then a row of W_xh, exactly the matmul with the one-hot vector, without
    building the vectors or multiplying by their zeros.
    """
    if jnp.issubdtype(x.dtype, jnp.integer):
      return params['W_xh'][x] + params['b_h']
    return self.dot(x, params['W_xh']) + params['b_h']

  def recurrent_projection(self, params: Params, h: jax.Array) -> jax.Array:
    if not self.recurrent:
      return jnp.zeros(h.shape[:-1] + (self.num_gates * self.hidden_size,),
                       h.dtype)
    return self.dot(h, params['W_hh'])

  def dot(self, x: jax.Array, w: jax.Array) -> jax.Array:
    """x @ w, in `compute_dtype` if set (see `mixed_dot`)."""
    if self.compute_dtype is None:
      return x @ w
    return mixed_dot(x, w, self.compute_dtype)

  def initial_carry(self, batch_size: int, dtype=jnp.float32) -> Carry:
    return jnp.zeros((batch_size, self.hidden_size), dtype)

  def hidden(self, carry: Carry) -> jax.Array:
    """The part of the carry that is the cell's output h [B, H]."""
    return carry

  def with_hidden(self, carry: Carry, h: jax.Array) -> Carry:
    """`carry` with its hidden part replaced by `h`."""
    del carry
    return h

  # Parameters the gate math reads besides the projections (GRU: b_hn).
  gate_params = ()
  # True where `gates` reads xp_t and hp_t only as their sum: the backward
  # pass of the scan then keeps that sum instead of both (recurrence.py).
  gates_read_sum = False

  def step(self, params: Params, carry: Carry,
           xp_t: jax.Array) -> tuple[Carry, jax.Array]:
    """One time step: the recurrent matmul, then the gate math."""
    return self.gates(params, carry, xp_t,
                      self.recurrent_projection(params, self.hidden(carry)))

  def gates(self, params: Params, carry: Carry, xp_t: jax.Array,
            hp_t: jax.Array) -> tuple[Carry, jax.Array]:
    """The step after its matmuls: xp_t = W_xh x_t + b_h, hp_t = W_hh h_{t-1}."""
    raise NotImplementedError


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


CELLS = {'rnn': RNN, 'irnn': IRNN, 'gru': GRU, 'lstm': LSTM, 'gru_ln': GRULN,
         'lstm_ln': LSTMLN, 'mingru': MinGRU, 'minlstm': MinLSTM,
         'lru': LRU, 'rglru': RGLRU}


def make_cell(name: str, hidden_size: int, *, activation: str = 'tanh',
              init_scale: float | None = None, recurrent: bool = True,
              compute_dtype: Any = None) -> Cell:
  """Builds a cell by its config name (`model.cell`)."""
  if name not in CELLS:
    raise ValueError(f'unknown cell {name!r}; choose one of {sorted(CELLS)}')
  kwargs = dict(hidden_size=hidden_size, init_scale=init_scale or None,
                recurrent=recurrent, compute_dtype=compute_dtype)
  if name == 'rnn':
    kwargs['activation'] = activation
  return CELLS[name](**kwargs)
