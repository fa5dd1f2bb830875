"""The scan of the diagonal linear recurrence h_t = a_t h_{t-1} + b_t, which
the linear cells (minGRU, minLSTM, LRU, RG-LRU) reduce to: sequential, or
parallel (associative within blocks, sequential across them), with a
hand-written gradient. Time-major, like rnn_jax/recurrence.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _combine(earlier, later):
  """Composes two steps h -> a h + b: first `earlier`, then `later`."""
  a1, b1 = earlier
  a2, b2 = later
  return a1 * a2, a2 * b1 + b2


def _sequential(a, b, h0, reverse):
  """h_t = a_t h_{t-1} + b_t for every t, one step after another. Each h_t
  overwrites b_t, which XLA then does in place: no buffer for the states
  (a scan's outputs are zero-filled first, which at T in the thousands
  costs a tenth of the training step)."""
  last = a.shape[0] - 1

  def body(i, carry):
    h, out = carry
    t = last - i if reverse else i
    h = a[t] * h + out[t]
    return h, out.at[t].set(h)
  return jax.lax.fori_loop(0, last + 1, body, (h0, b))[1]


# The parallel scan's block: associative (log2 of it deep) within blocks of
# this many steps, all blocks at once; sequential across blocks. Its depth,
# and so its compile time, does not grow with T.
PARALLEL_BLOCK = 32


def _parallel(a, b, h0, reverse, block=PARALLEL_BLOCK):
  """`_sequential`'s result by blocks of `block` steps: each block's
  own prefix compositions (associative scan), the state entering each block
  (a sequential scan over the blocks' whole compositions), then both
  combined."""
  num_steps = a.shape[0]
  blocks = -(-num_steps // block)
  pad = blocks * block - num_steps  # identity steps at the end
  a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1), constant_values=1)
  b = jnp.pad(b, ((0, pad),) + ((0, 0),) * (b.ndim - 1))
  a, b = (x.reshape(blocks, block, *x.shape[1:]) for x in (a, b))
  a, b = jax.lax.associative_scan(_combine, (a, b), axis=1, reverse=reverse)
  whole = 0 if reverse else -1  # the prefix that spans a whole block
  ends = _sequential(a[:, whole], b[:, whole], h0, reverse)
  h0 = h0[None]
  starts = (jnp.concatenate([ends[1:], h0]) if reverse
            else jnp.concatenate([h0, ends[:-1]]))
  hs = b + a * starts[:, None]
  return hs.reshape(-1, *hs.shape[2:])[:num_steps]


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def linear_scan(a, b, h0, reverse: bool, scan: str, chunk_size: int = 64):
  """[T, B, H] states of h_t = a_t h_{t-1} + b_t from h0 [B, H] (t from T-1
  down with `reverse`), by the 'sequential' scan, or the 'parallel' one in
  blocks of `PARALLEL_BLOCK` steps ('chunkwise': of `chunk_size` steps); a,
  b and h0 of one dtype.

  Differentiated by hand: the gradient is the same recurrence run the other
  way, lam_t = g_t + a_{t+1} lam_{t+1} with g the states' cotangents, then
  db_t = lam_t, da_t = lam_t h_{t-1}, dh0 = a_1 lam_1 -- one more scan of
  the same kind, and only a and the states kept for it (autodiff of the
  scans keeps more and, measured on CPU, takes 1.5x as long).
  """
  return _linear_scan(a, b, h0, reverse, scan, chunk_size)


def _linear_scan(a, b, h0, reverse, scan, chunk_size):
  if scan == 'sequential':
    return _sequential(a, b, h0, reverse)
  return _parallel(a, b, h0, reverse,
                   chunk_size if scan == 'chunkwise' else PARALLEL_BLOCK)


def _linear_scan_fwd(a, b, h0, reverse, scan, chunk_size):
  hs = linear_scan(a, b, h0, reverse, scan, chunk_size)
  return hs, (a, hs, h0)


def _linear_scan_bwd(reverse, scan, chunk_size, residuals, g):
  a, hs, h0 = residuals
  # Time runs the other way; a step's successor is its predecessor there.
  shift = lambda x, edge: (jnp.concatenate([edge[None], x[:-1]]) if reverse
                           else jnp.concatenate([x[1:], edge[None]]))
  unshift = lambda x, edge: (jnp.concatenate([x[1:], edge[None]]) if reverse
                             else jnp.concatenate([edge[None], x[:-1]]))
  zeros = jnp.zeros_like(h0)
  lam = _linear_scan(shift(a, zeros), g, zeros, not reverse, scan, chunk_size)
  first = -1 if reverse else 0
  return lam * unshift(hs, h0), lam, a[first] * lam[first]


linear_scan.defvjp(_linear_scan_fwd, _linear_scan_bwd)
