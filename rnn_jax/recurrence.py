"""The lax.scan core: one cell over a whole sequence.

Convention: everything here is time-major, ``[T, B, ...]``; the models
transpose at their public, batch-major edge.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib


def lengths_to_mask(lengths: jax.Array, num_steps: int) -> jax.Array:
  """[B] lengths -> [T, B] bool mask, True on real (non-padded) steps."""
  return jnp.arange(num_steps)[:, None] < lengths[None, :]


def run(cell: cells_lib.Cell, params, xs: jax.Array, *, carry=None,
        mask: jax.Array | None = None, reverse: bool = False,
        unroll: int = 1):
  """Runs `cell` over `xs` and returns (final_carry, ys).

  Args:
    cell: a `cells.Cell`.
    params: the cell's params.
    xs: [T, B, D] inputs.
    carry: initial carry (zeros when None).
    mask: optional [T, B] bool, False on padding. A padded step keeps the
      carry and emits zeros, so with trailing padding and `reverse=True` each
      sequence's backward pass starts from its own last real token, and the
      final carry is the state after each sequence's last real token.
    reverse: scan from t = T-1 down to 0 (ys keep their time positions).
    unroll: passed to lax.scan; >1 trades compile time for fewer loop trips.

  Returns:
    final carry, and ys [T, B, H].
  """
  chex.assert_rank(xs, 3)
  num_steps, batch = xs.shape[:2]
  if carry is None:
    carry = cell.initial_carry(batch, xs.dtype)
  # Hoisted: one [T*B, D] x [D, G*H] matmul instead of T small ones.
  xp = cell.input_projection(params, xs)

  if mask is None:
    def body(c, xp_t):
      return cell.step(params, c, xp_t)
    return jax.lax.scan(body, carry, xp, reverse=reverse, unroll=unroll)

  chex.assert_shape(mask, (num_steps, batch))

  def masked_body(c, inputs):
    xp_t, m_t = inputs
    new_c, y = cell.step(params, c, xp_t)
    keep = m_t[:, None]
    new_c = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_c, c)
    return new_c, jnp.where(keep, y, jnp.zeros_like(y))

  return jax.lax.scan(masked_body, carry, (xp, mask), reverse=reverse,
                      unroll=unroll)
