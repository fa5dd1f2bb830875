"""The cell interface (`Cell`) and what every cell shares: the hoisted
input projection, mixed-precision matmuls, the activations."""

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
  # True where a step multiplies the previous state by W_hh (the classic
  # cells); the linear and matrix-memory cells have no W_hh.
  recurrent_matmul = True

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

  def state_size(self) -> int:
    """The floats a sequence's state holds between steps (recall's
    measure of capacity): the whole carry here (an LSTM's c and h)."""
    return sum(x.size for x in jax.tree.leaves(self.initial_carry(1)))

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
