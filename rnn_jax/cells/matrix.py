"""Matrix-memory recurrences: each head keeps a [d_k, d_v] state written by
outer products k_t v_t^T and read by a query, S_t^T q_t -- mLSTM, GLA,
DeltaNet, Gated DeltaNet and Mamba-2's SSD.

Every cell here computes a sequence in three equal forms (`sequence`):

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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax.cells.base import Cell

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
  final, outs = jax.lax.scan(
      lambda s, xs: _chunk(rule, s, *xs), state,
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
