"""The matrix-memory recurrences as functions: each head keeps a [d_k, d_v]
state written by outer products k_t v_t^T and read by a query, S_t^T q_t.
The cells of rnn_jax/cells/matrix.py (mLSTM, GLA, DeltaNet, Gated DeltaNet,
Mamba-2's SSD) compute their terms and call these.

A sequence is computed in three equal forms (`sequence`):

* 'sequential': a scan over the T steps of the recurrence (also `step`, the
  one-step function of generation and streaming);
* 'parallel': the whole sequence at once as a masked, decay-weighted T x T
  matrix, like attention (memory quadratic in T);
* 'chunkwise': the parallel form within chunks of L steps, the state passed
  from chunk to chunk by a scan (memory linear in T). The parallel form is
  the chunkwise one with a single chunk.

Three rules cover the five cells, each with a log-decay g_t per head
(per key channel for GLA):
  gated   S_t = exp(g_t) S_{t-1} + k_t v_t^T               (GLA, Mamba-2)
  mlstm   the gated rule with an exponential input gate, a normaliser
          state n_t and a stabiliser m_t                   (mLSTM)
  delta   S_t = exp(g_t) (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T
                                                  (DeltaNet, Gated DeltaNet)
The chunkwise delta rule uses the UT form of Yang et al. (2024): within a
chunk, (I + diag(b) tril(Gamma * K K^T, -1)) U = diag(b) (V - diag(gamma) K
S_0) is one triangular solve, the outputs are Q S_0 and (Q K^T * Gamma) U,
and the next state is gamma_L S_0 + K^T U, all decays taken from exp(g).

Padding (a False step of the mask) leaves the state as it is, and the
convolution (`causal_conv`) reads the real steps only. A reset (the first
step of a packed segment) restarts the state, and the convolution's
history, from zeros.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


RULES = ('gated', 'mlstm', 'delta')
FORMS = ('sequential', 'parallel', 'chunkwise')


class Terms(NamedTuple):
  """What the recurrence reads at each step, time-major, float32.

  q, k [T, B, heads, d_k]; v [T, B, heads, d_v]; g [T, B, heads] (or
  [T, B, heads, d_k], one decay per key channel) the log-decay; i [T, B,
  heads] mLSTM's input log-gate, b [T, B, heads] the delta rule's write
  strength (None where the rule has none)."""
  q: jax.Array
  k: jax.Array
  v: jax.Array
  g: jax.Array
  i: Any = None
  b: Any = None


def _masked_terms(rule, terms, mask):
  """A padded step (mask False) writes nothing and keeps the state."""
  keep = mask[:, :, None]
  g = jnp.where(keep if terms.g.ndim == 3 else keep[..., None], terms.g, 0.0)
  if rule == 'mlstm':
    return terms._replace(g=g, i=jnp.where(keep, terms.i, -jnp.inf))
  if rule == 'delta':
    return terms._replace(g=g, b=jnp.where(keep, terms.b, 0.0))
  return terms._replace(g=g, k=jnp.where(keep[..., None], terms.k, 0.0))


def zero_state(rule, batch, heads, d_k, d_v):
  s = jnp.zeros((batch, heads, d_k, d_v), jnp.float32)
  if rule == 'mlstm':
    return (s, jnp.zeros((batch, heads, d_k), jnp.float32),
            jnp.zeros((batch, heads), jnp.float32))
  return s


# ---------------------------------------------------------------------------
# The sequential form: one step of each rule.

def _decay(g):
  """exp(g) shaped to scale a [B, heads, d_k, d_v] state."""
  e = jnp.exp(g)
  return e[..., None] if e.ndim == 3 else e[..., None, None]


def update(rule, state, t: Terms):
  """One step of `rule` from `state` with the terms of that step ([B,
  heads, ...]); returns (new state, readout [B, heads, d_v])."""
  outer = lambda k, v: k[..., :, None] * v[..., None, :]
  if rule == 'gated':
    s = _decay(t.g) * state + outer(t.k, t.v)
    return s, jnp.einsum('bhk,bhkv->bhv', t.q, s)
  if rule == 'delta':  # u = b (v - a S^T k);  S = a S + k u^T
    a = _decay(t.g)
    u = t.b[..., None] * (t.v - jnp.einsum('bhk,bhkv->bhv', t.k, a * state))
    s = a * state + outer(t.k, u)
    return s, jnp.einsum('bhk,bhkv->bhv', t.q, s)
  c, n, m = state
  m_new = jax.lax.stop_gradient(jnp.maximum(t.g + m, t.i))
  f = jnp.exp(t.g + m - m_new)
  i = jnp.exp(t.i - m_new)
  c = f[..., None, None] * c + i[..., None, None] * outer(t.k, t.v)
  n = f[..., None] * n + i[..., None] * t.k
  den = jnp.maximum(jnp.abs(jnp.einsum('bhk,bhk->bh', t.q, n)),
                    jnp.exp(-m_new))
  return (c, n, m_new), jnp.einsum('bhk,bhkv->bhv', t.q, c) / den[..., None]


def _sequential(rule, terms, state):
  """The recurrence step by step."""
  return jax.lax.scan(lambda s, t: update(rule, s, t), state, terms)


# ---------------------------------------------------------------------------
# The chunkwise form: one chunk of L steps from the state at its start.

def _chunk(rule, state, terms, resets):
  """Outputs [L, B, heads, d_v] of one chunk and the state after it.

  Decays between steps s <= t of the chunk are exp(G_t - G_s), G the
  chunk's running sum of g, so that no factor exceeds one; a reset cuts the
  chunk into segments that do not see each other or the state before."""
  length, batch = terms.q.shape[:2]
  t_idx = jnp.arange(length)
  causal = (t_idx[:, None] >= t_idx[None, :])[:, :, None]  # [t, s, 1]
  if resets is None:
    seg = jnp.zeros((length, batch), jnp.int32)
  else:
    seg = jnp.cumsum(resets.astype(jnp.int32), 0)
  same = causal & (seg[:, None] == seg[None, :])  # [t, s, B]
  first = (seg == 0)[..., None]  # [L, B, 1]: steps the start state reaches
  tail = (seg == seg[-1])[..., None]  # steps that write the end state
  keep_start = first[-1]  # [B, 1]
  G = jnp.cumsum(terms.g, 0)
  q, k, v = terms.q, terms.k, terms.v

  def weights(diff, valid):
    """exp(diff) where `valid`, else 0 (diff [t, s, B, heads(, d_k)])."""
    while valid.ndim < diff.ndim:
      valid = valid[..., None]
    return jnp.exp(jnp.where(valid, diff, -jnp.inf))

  if rule == 'mlstm':
    c, n, m = state
    w = jnp.where(same[..., None], G[:, None] - G[None, :] + terms.i[None],
                  -jnp.inf)  # [t, s, B, h]
    w0 = jnp.where(first, G + m, -jnp.inf)  # [t, B, h]
    mt = jax.lax.stop_gradient(jnp.maximum(w.max(1), w0))
    mt = jnp.where(jnp.isfinite(mt), mt, 0.0)
    p = jnp.exp(w - mt[:, None]) * jnp.einsum('tbhd,sbhd->tsbh', q, k)
    p0 = jnp.exp(w0 - mt)
    num = (jnp.einsum('tsbh,sbhv->tbhv', p, v)
           + p0[..., None] * jnp.einsum('tbhd,bhdv->tbhv', q, c))
    den = p.sum(1) + p0 * jnp.einsum('tbhd,bhd->tbh', q, n)
    out = num / jnp.maximum(jnp.abs(den), jnp.exp(-mt))[..., None]
    e_last, e0 = jnp.exp(w[-1] - mt[-1]), p0[-1]  # [s, B, h], [B, h]
    c = (e0[..., None, None] * c
         + jnp.einsum('sbh,sbhd,sbhv->bhdv', e_last, k, v))
    n = e0[..., None] * n + jnp.einsum('sbh,sbhd->bhd', e_last, k)
    return (c, n, mt[-1]), out

  vector = G.ndim == 4
  g0 = jnp.exp(G) * (first[..., None] if vector else first)  # [L, B, h(, d)]
  g_end = jnp.exp(G[-1] - G) * (tail[..., None] if vector else tail)
  start = jnp.where(keep_start[..., None] if vector else keep_start,
                    jnp.exp(G[-1]), 0.0)  # [B, h(, d_k)]
  start = start[..., None] if vector else start[..., None, None]
  if rule == 'gated':
    if vector:
      a = jnp.where(same[..., None], _vector_scores(q, k, G), 0.0)
      q0, k_end = q * g0, k * g_end
    else:
      a = jnp.einsum('tbhd,sbhd->tsbh', q, k) * weights(
          G[:, None] - G[None, :], same)
      q0, k_end = q * g0[..., None], k * g_end[..., None]
    out = (jnp.einsum('tsbh,sbhv->tbhv', a, v)
           + jnp.einsum('tbhd,bhdv->tbhv', q0, state))
    return start * state + jnp.einsum('sbhd,sbhv->bhdv', k_end, v), out
  # The delta rule (scalar decay): the UT transform of the chunk.
  diff = G[:, None] - G[None, :]  # [t, s, B, h]
  decay_ts = weights(diff, same)
  strict = weights(diff, same & ~jnp.eye(length, dtype=bool)[:, :, None])
  kk = jnp.einsum('tbhd,sbhd->bhts', k, k) * jnp.moveaxis(strict, (0, 1),
                                                          (2, 3))
  beta = jnp.moveaxis(terms.b, 0, 2)  # [B, h, L]
  rhs = jnp.concatenate([terms.v, (g0[..., None] * k)], -1)
  rhs = beta[..., None] * jnp.moveaxis(rhs, 0, 2)  # [B, h, L, d_v + d_k]
  x = unit_lower_solve(beta[..., None] * kk, rhs)
  d_v = v.shape[-1]
  u = x[..., :d_v] - jnp.einsum('bhld,bhdv->bhlv', x[..., d_v:], state)
  qk = jnp.einsum('tbhd,sbhd->bhts', q, k) * jnp.moveaxis(decay_ts, (0, 1),
                                                          (2, 3))
  out = (jnp.einsum('bhts,bhsv->tbhv', qk, u)
         + jnp.einsum('tbhd,bhdv->tbhv', q * g0[..., None], state))
  new = start * state + jnp.einsum('sbh,sbhd,bhsv->bhdv', g_end, k, u)
  return new, out


# A chunk's scores under one decay per key channel are computed by blocks of
# this many steps (GLA's secondary chunking, Yang et al. 2024, Sec. 4.2).
SUB_BLOCK = 16
# GLA's per-step log-decay is kept above this, so that over a sub-block the
# factors exp(-G) below stay finite in float32 (exp(16 * 5) < 3.4e38). Only a
# gate pre-activation below -80 reaches it.
MIN_LOG_DECAY = -5.0


def _vector_scores(q, k, G):
  """sum_d q_t[d] k_s[d] exp(G_t[d] - G_s[d]) for every t, s of a chunk
  ([L, B, h, d_k] each -> [t, s, B, h]; meaningful where s <= t) as
  matmuls: each query block of `SUB_BLOCK` steps factors the decay at the
  end of the block before it, G_r, into exp(G_t - G_r) <= 1 and exp(G_r -
  G_s), which is <= 1 for earlier keys and at most exp(-16 MIN_LOG_DECAY)
  within the block."""
  length = q.shape[0]
  sub = min(SUB_BLOCK, length)
  blocks = -(-length // sub)
  starts = jnp.arange(blocks) * sub
  ref = jnp.where((starts > 0)[:, None, None, None],
                  G[jnp.maximum(starts - 1, 0)], 0.0)  # [n, B, h, d]
  block = jnp.arange(length) // sub
  qf = q * jnp.exp(G - ref[block])
  qf = jnp.pad(qf, [(0, blocks * sub - length)] + [(0, 0)] * 3)
  qf = qf.reshape(blocks, sub, *qf.shape[1:])
  seen = (jnp.arange(length)[None, :] < (starts + sub)[:, None])
  kf = k[None] * jnp.exp(jnp.where(seen[..., None, None, None],
                                   ref[:, None] - G[None], -jnp.inf))
  scores = jnp.einsum('nibhd,nsbhd->nisbh', qf, kf)
  return scores.reshape(blocks * sub, *scores.shape[2:])[:length]


def _substitute(a, r, backward=False):
  """X with (I + a) X = r (or (I + a)^T X = r with `backward`), a [..., L, L]
  strictly lower triangular, r [..., L, n]: one row after another."""
  last = a.shape[-1] - 1

  def body(i, x):
    t = last - i if backward else i
    row = a[..., :, t] if backward else a[..., t, :]  # zero beyond the solved
    x_t = r[..., t, :] - jnp.einsum('...s,...sn->...n', row, x)
    return x.at[..., t, :].set(x_t)
  return jax.lax.fori_loop(0, last + 1, body, jnp.zeros_like(r))


@jax.custom_vjp
def unit_lower_solve(a, r):
  """(I + a)^{-1} r for a strictly lower triangular a [..., L, L], by
  substitution (not LAPACK's batched solve, whose thread pool this CPU
  build can deadlock on inside a scan), with the gradient written by hand:
  g_r = (I + a)^{-T} g, g_a = -g_r x^T below the diagonal, so that the
  backward pass keeps a and x, not every row's intermediate."""
  return _substitute(a, r)


def _unit_lower_solve_fwd(a, r):
  x = _substitute(a, r)
  return x, (a, x)


def _unit_lower_solve_bwd(residuals, g):
  a, x = residuals
  g_r = _substitute(a, g, backward=True)
  below = jnp.tril(jnp.ones(a.shape[-2:], bool), -1)
  return jnp.where(below, -jnp.einsum('...tn,...sn->...ts', g_r, x), 0.0), g_r


unit_lower_solve.defvjp(_unit_lower_solve_fwd, _unit_lower_solve_bwd)


def sequence(rule, terms: Terms, state, *, mask=None, resets=None,
             form='chunkwise', chunk_size=64):
  """The readouts [T, B, heads, d_v] of a whole sequence and the final
  state, by `form` (see the module docstring)."""
  if form not in FORMS:
    raise ValueError(f'form must be one of {FORMS}, got {form!r}')
  if mask is not None:
    terms = _masked_terms(rule, terms, mask)
  if form == 'sequential':
    if resets is not None:  # the reset step starts from zeros: no decay
      r = resets if terms.g.ndim == 3 else resets[..., None]
      terms = terms._replace(g=jnp.where(r[..., None], -jnp.inf, terms.g))
    return _sequential(rule, terms, state)
  num_steps = terms.q.shape[0]
  if form == 'parallel' or num_steps <= chunk_size:
    return _chunk(rule, state, terms, resets)
  chunks = -(-num_steps // chunk_size)
  pad = chunks * chunk_size - num_steps
  if pad:  # steps that write nothing and keep the state
    terms = jax.tree.map(
        lambda x: jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)), terms)
    real = jnp.arange(chunks * chunk_size) < num_steps
    terms = _masked_terms(rule, terms, jnp.broadcast_to(
        real[:, None], terms.q.shape[:2]))
    if resets is not None:
      resets = jnp.pad(resets, ((0, pad), (0, 0)))
  split = lambda x: x.reshape(chunks, chunk_size, *x.shape[1:])
  # Each chunk is recomputed in the backward pass, which then keeps only
  # the state at each chunk's start, not the chunk's L x L scores and
  # decays: 14-42% less memory for a training step, at about the same speed.
  body = jax.checkpoint(lambda s, xs: _chunk(rule, s, *xs), prevent_cse=False)
  final, outs = jax.lax.scan(
      body, state,
      (jax.tree.map(split, terms), None if resets is None else split(resets)))
  return final, outs.reshape(-1, *outs.shape[2:])[:num_steps]


def causal_conv(x, w, history, mask=None, resets=None):
  """A depthwise causal convolution over the real steps of x [T, B, C]:
  y_t = sum_j w[j] x_(t-K+1+j) with w [K, C], the steps counted among the
  real ones (mask True) of the row, the K - 1 before the first taken from
  `history` [B, K - 1, C] and those before a reset read as zeros. Returns y
  [T, B, C] (meaningless on padded steps) and the history after the last
  real step."""
  width, num_steps = w.shape[0], x.shape[0]
  steps = jnp.arange(num_steps)[:, None]
  if mask is not None:  # the real steps of each row first, in order
    order = jnp.argsort(jnp.where(mask, steps, num_steps + steps), axis=0)
    x = jnp.take_along_axis(x, order[..., None], 0)
    if resets is not None:
      resets = jnp.take_along_axis(resets, order, 0)
  full = jnp.concatenate([jnp.moveaxis(history, 1, 0).astype(x.dtype), x])
  if resets is None:
    seg = jnp.zeros(full.shape[:2], jnp.int32)
  else:  # segment 0 is the history's
    seg = jnp.concatenate([jnp.zeros((width - 1,) + resets.shape[1:],
                                     jnp.int32),
                           jnp.cumsum(resets.astype(jnp.int32), 0)])
  now = seg[width - 1:]
  window = ((lambda j: full[j:j + num_steps]) if resets is None else
            (lambda j: jnp.where((seg[j:j + num_steps] == now)[..., None],
                                 full[j:j + num_steps], 0.0)))
  y = sum(w[j] * window(j) for j in range(width))
  real = (jnp.full(x.shape[1:2], num_steps) if mask is None
          else mask.sum(0))
  ends = real[None] + jnp.arange(width - 1)[:, None]  # [K - 1, B] in full
  new = jnp.take_along_axis(full, ends[..., None], 0)
  last_seg = jnp.take_along_axis(seg, ends[-1:], 0)
  new = jnp.where((jnp.take_along_axis(seg, ends, 0) == last_seg)[..., None],
                  new, 0.0)
  if mask is not None:  # back to each real step's place
    rank = jnp.clip(jnp.cumsum(mask.astype(jnp.int32), 0) - 1, 0)
    y = jnp.take_along_axis(y, rank[..., None], 0)
  return y, jnp.moveaxis(new, 0, 1)


# ---------------------------------------------------------------------------
# The cells.
