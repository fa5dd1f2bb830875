"""The lax.scan core: one cell over a whole sequence.

Convention: everything here is time-major, ``[T, B, ...]``; the models
transpose at their public, batch-major edge.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.extend
from jax.experimental import rnn as jax_rnn
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax.linear_scan import linear_scan


def lengths_to_mask(lengths: jax.Array, num_steps: int) -> jax.Array:
  """[B] lengths -> [T, B] bool mask, True on real (non-padded) steps."""
  return jnp.arange(num_steps)[:, None] < lengths[None, :]


SCANS = ('auto', 'sequential', 'parallel', 'chunkwise')


def run(cell: cells_lib.Cell, params, xs: jax.Array, *, carry=None,
        mask: jax.Array | None = None, reverse: bool = False,
        unroll: int = 1, remat_chunk: int = 0, cudnn: bool = False,
        scan: str = 'auto', chunk_size: int = 64,
        resets: jax.Array | None = None,
        perturb: jax.Array | None = None, return_carries: bool = False,
        state_mask: jax.Array | None = None):
  """Runs `cell` over `xs` and returns (final_carry, ys).

  Args:
    cell: a `cells.Cell`.
    params: the cell's params.
    xs: [T, B, D] inputs, or [T, B] integer indices of one-hot inputs.
    carry: initial carry (zeros when None).
    mask: optional [T, B] bool, False on padding. A padded step keeps the
      carry and emits zeros, so with trailing padding and `reverse=True` each
      sequence's backward pass starts from its own last real token, and the
      final carry is the state after each sequence's last real token.
    reverse: scan from t = T-1 down to 0 (ys keep their time positions).
    unroll: passed to lax.scan; >1 trades compile time for fewer loop trips.
    remat_chunk: if > 0 and shorter than the sequence, rematerialise: the
      backward pass keeps only the carry at the start of every chunk of this
      many steps and recomputes each chunk's forward pass when it needs it
      (about one more forward pass of compute, and the memory of the
      recurrence's intermediates shrinks from the whole sequence to one
      chunk). The gradients are the same. A `cells.MatrixCell` recomputes
      its whole layer so (projections, convolution, recurrence, outputs);
      a `cells.LinearCell` takes none.
    cudnn: an LSTM through cuDNN's fused kernel (`jax.experimental.rnn`) on
      CUDA GPUs; elsewhere the same packed weights run through that module's
      scan reference (for checking, not for speed). Needs float32, no
      remat_chunk, and a mask that is padding at the end only.
    scan: the form in which a cell without W_hh runs over time (cells with
      a recurrent matmul always run sequentially): 'sequential' (a scan over
      the steps), 'parallel' (a `cells.LinearCell`: associative scans within
      blocks of `linear_scan.PARALLEL_BLOCK` steps; a `cells.MatrixCell`:
      the T x T form),
      'chunkwise' (parallel within chunks of `chunk_size` steps, the state
      passed from chunk to chunk) or 'auto' (`default_scan()`).
    chunk_size: the chunks of scan='chunkwise'.
    resets: optional [T, B] bool, True at the first step of each segment
      of a sequence (several statements, documents, ... packed into one
      row): the carry restarts from the initial `carry` there, so each
      segment is run as if alone (going backwards with `reverse`, each
      segment starts from it at its own last step). A `cells.MatrixCell`'s
      segments start from the zero state.
    perturb: optional [T, B, S] added to the state after every step (S the
      width of `cell.hidden`, or of `cell.state` for a linear cell), where
      it feeds both the output and the next step; the gradient with respect
      to it is the gradient with respect to each step's state, through the
      recurrence (`training.grad_flow`). A cell with a recurrent matmul then
      runs under plain autodiff, without the hand-written backward.
    return_carries: also return the carry after every step (an LSTM's c_t
      and h_t, not only its outputs), for analysis; a padded step holds the
      carry. A cell with a recurrent matmul then runs under plain autodiff.
    state_mask: optional [B, S] multiplying the state each step reads in its
      recurrence (S as in `perturb`): h_{t-1} in W_hh h_{t-1}, or h_{t-1} in
      a_t h_{t-1} for a linear cell. One mask for every step of a sequence:
      Gal & Ghahramani's variational dropout on the recurrent state, with
      the mask drawn by the caller (`layers.RNNStack.recurrent_dropout`).
      The carry itself and the outputs are not masked.

  Returns:
    final carry, and ys [T, B, H]; with `return_carries`, also the carries,
    the carry's structure with a leading [T] axis.
  """
  ids = jnp.issubdtype(xs.dtype, jnp.integer)
  chex.assert_rank(xs, 2 if ids else 3)
  num_steps, batch = xs.shape[:2]
  if carry is None:
    carry = cell.initial_carry(batch, jnp.float32 if ids else xs.dtype)
  if mask is not None:
    chex.assert_shape(mask, (num_steps, batch))
  if resets is not None:
    chex.assert_shape(resets, (num_steps, batch))
    if mask is not None:
      resets = resets & mask
    if reverse:  # backwards, a segment starts after its successor's start
      resets = jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])])
  if cudnn:
    if (resets is not None or perturb is not None or return_carries
        or state_mask is not None):
      raise ValueError('cudnn=True takes no resets, perturb, return_carries '
                       'or state_mask')
    return _cudnn_lstm(cell, params, xs, carry, mask, reverse)
  scan = default_scan(cell) if scan == 'auto' else scan
  if scan not in SCANS:
    raise ValueError(f'scan must be one of {SCANS}, got {scan!r}')
  if isinstance(cell, cells_lib.MatrixCell):
    if perturb is not None or return_carries or state_mask is not None:
      raise ValueError('a matrix-memory cell takes no perturb, '
                       'return_carries or state_mask')
    return _matrix_run(cell, params, xs, carry, mask, reverse, scan,
                       chunk_size, resets, remat_chunk)
  if isinstance(cell, cells_lib.LinearCell):
    if remat_chunk:
      raise ValueError('remat_chunk applies to cells with a recurrent matmul '
                       f'or a matrix memory, not {type(cell).__name__}')
    out = _linear_run(cell, params, xs, carry, mask, reverse, scan,
                      chunk_size, resets, perturb, return_carries, state_mask)
    return out if return_carries else out[:2]
  # Hoisted: one [T*B, D] x [D, G*H] matmul instead of T small ones.
  xp = cell.input_projection(params, xs)
  if not cell.recurrent or perturb is not None or return_carries:
    final, ys, carries, _ = _scan(cell, params, xp, carry, mask, reverse,
                                  unroll, resets, perturb, after=True,
                                  state_mask=state_mask)
    return (final, ys, carries) if return_carries else (final, ys)
  if 0 < remat_chunk < num_steps:
    return _chunked_scan(cell, params, xp, carry, mask, reverse, unroll,
                         remat_chunk, resets, state_mask)
  return _recurrent_scan(cell, reverse, unroll, params, xp, carry, mask,
                         resets, None if resets is None else carry, state_mask)


def default_scan(cell: cells_lib.Cell) -> str:
  """How `scan='auto'` runs `cell` on the default backend.

  A linear recurrence on CPU: the sequential scan (README, Speed: 1.7-1.9x
  the parallel scan's training step on 2 cores, T = 256 to 4096): the
  associative scan does about twice the multiply-adds in strided slices,
  and a CPU has no idle lanes for its parallelism to fill. On accelerators,
  where a step of T dependent multiply-adds leaves the device idle, the
  parallel scan. A matrix-memory cell: the chunkwise form everywhere (its
  sequential form does a step's small outer products one after another and
  keeps every step's state for the backward pass; docs/cells.md, Speed).
  """
  if isinstance(cell, cells_lib.MatrixCell):
    return 'chunkwise'
  return 'sequential' if jax.default_backend() == 'cpu' else 'parallel'


def _linear_run(cell, params, xs, carry, mask, reverse, scan, chunk_size,
                resets, perturb, carries=False, state_mask=None):
  """`run` for h_t = a_t h_{t-1} + b_t: the coefficients of every step at
  once, then the recurrence as an associative or a sequential scan, then the
  outputs of every step at once. Returns (final carry, ys, the carry after
  every step if `carries`, else None)."""
  xp = cell.input_projection(params, xs)
  a, b = cell.coefficients(params, xp)
  if state_mask is not None:  # a_t (m * h_{t-1})
    a = a * state_mask.astype(a.dtype)
  if mask is not None:  # a padded step is the identity: a = 1, b = 0
    keep = mask[:, :, None]
    a = jnp.where(keep, a, jnp.ones_like(a))
    b = jnp.where(keep, b, jnp.zeros_like(b))
  h0 = cell.state(carry)  # the state's dtype: float32 under bfloat16 too
  a, b = a.astype(h0.dtype), b.astype(h0.dtype)
  if resets is not None:  # a restart is h_t = a_t h0 + b_t
    restart = resets[:, :, None]
    b = jnp.where(restart, b + a * h0, b)
    a = jnp.where(restart, jnp.zeros_like(a), a)
  if perturb is not None:
    b = b + (perturb if mask is None else
             jnp.where(mask[:, :, None], perturb, jnp.zeros_like(perturb)))
  hs = linear_scan(a, b, h0, reverse, scan, chunk_size)
  ys = cell.outputs(params, hs, xp)
  if mask is None:
    held = ys
  else:
    ys = jnp.where(mask[:, :, None], ys, jnp.zeros_like(ys))
    held = _held_outputs(ys, mask, reverse, cell.hidden(carry),
                         every=carries)
  last = 0 if reverse else -1
  final = cell.to_carry(hs[last], held[last] if mask is None or carries
                        else held)
  return final, ys, cell.to_carry(hs, held) if carries else None


def _held_outputs(ys, mask, reverse, initial, every=False):
  """The output a carry holds after each step (`every`), else after the
  last: on a padded step, the output after the sequence's latest real step
  so far (going backwards, its earliest from t on), or `initial` before
  any."""
  num_steps = ys.shape[0]
  steps = jnp.arange(num_steps)[:, None]
  if reverse:
    index = jax.lax.cummin(jnp.where(mask, steps, num_steps), 0, reverse=True)
  else:
    index = jax.lax.cummax(jnp.where(mask, steps, -1), 0)
  if not every:
    index = index[0 if reverse else -1][None]
  y = jnp.take_along_axis(ys, jnp.clip(index, 0, num_steps - 1)[..., None], 0)
  seen = (index >= 0) & (index < num_steps)
  held = jnp.where(seen[..., None], y, initial)
  return held if every else held[0]


def _matrix_run(cell, params, xs, carry, mask, reverse, scan, chunk_size,
                resets, remat_chunk=0):
  """`run` for a `cells.MatrixCell`: the terms of every step at once, the
  recurrence in the form `scan` (`cells.matrix_forms.sequence`), then the
  outputs of every step at once. Going backwards, the steps are reversed (a
  sequence's trailing padding becomes leading, which keeps the state). With
  `remat_chunk` shorter than the sequence, all of it (projections,
  convolution, recurrence, outputs) runs block by block of that many steps,
  each block recomputed in the backward pass from the state at its start."""
  num_steps = xs.shape[0]
  if not isinstance(num_steps, int):  # a symbolic length (jax.export)
    scan, remat_chunk = 'sequential', 0  # the form that needs no chunks
  if not cell.recurrent:  # no state between steps: every step a segment
    resets = jnp.ones(xs.shape[:2], bool)
  flip = lambda x: jnp.flip(x, 0) if reverse and x is not None else x
  run_mask, resets = flip(mask), flip(resets)

  def steps(carry, xs, mask, resets):
    state, conv = carry
    parts = cell.split(cell.input_projection(params, xs))
    if cell.short_conv:
      parts, conv = cell.convolve(params, parts, conv, mask, resets)
    state, readout = cells_lib.matrix_forms.sequence(
        cell.rule, cell.terms(params, parts), state, form=scan,
        chunk_size=chunk_size, mask=mask, resets=resets)
    return (state, conv), cell.output(params, readout, parts)

  conv = carry[2] if cell.short_conv else None
  if 0 < remat_chunk < num_steps:
    (state, conv), ys = _blocks(steps, (carry[0], conv), flip(xs), run_mask,
                                resets, remat_chunk)
  else:
    (state, conv), ys = steps((carry[0], conv), flip(xs), run_mask, resets)
  ys = flip(ys.astype(carry[1].dtype))
  history = (conv,) if cell.short_conv else ()
  if mask is None:
    return (state, ys[0 if reverse else -1], *history), ys
  ys = jnp.where(mask[:, :, None], ys, jnp.zeros_like(ys))
  return (state, _held_outputs(ys, mask, reverse, carry[1]), *history), ys


def _blocks(steps, carry, xs, mask, resets, size, reverse=False):
  """`steps(carry, xs, mask, resets) -> (carry, ys)` over blocks of `size`
  steps of the sequence (the last block first with `reverse`), each
  checkpointed: a scan carries the state from block to block and the
  backward pass keeps only that. Padded steps at the end (mask False) keep
  the carry and emit zeros."""
  num_steps, batch = xs.shape[:2]
  num_blocks = -(-num_steps // size)
  pad = num_blocks * size - num_steps
  if pad:
    if mask is None:
      mask = jnp.ones((num_steps, batch), bool)
    widths = lambda x: [(0, pad)] + [(0, 0)] * (x.ndim - 1)
    xs, mask = (jnp.pad(x, widths(x)) for x in (xs, mask))
    if resets is not None:
      resets = jnp.pad(resets, widths(resets))
  split = lambda x: None if x is None else x.reshape(num_blocks, size,
                                                     *x.shape[1:])
  body = jax.checkpoint(lambda c, inputs: steps(c, *inputs))
  carry, ys = jax.lax.scan(body, carry, (split(xs), split(mask),
                                         split(resets)), reverse=reverse)
  return carry, ys.reshape(num_blocks * size, *ys.shape[2:])[:num_steps]


def _chunked_scan(cell, params, xp, carry, mask, reverse, unroll, chunk,
                  resets, state_mask):
  """`_recurrent_scan` over chunks of `chunk` steps, each checkpointed
  (`_blocks`)."""
  initial = carry

  def steps(c, xp_c, mask_c, resets_c):
    # A segment restarts from the run's initial carry, not the chunk's.
    return _recurrent_scan(cell, reverse, unroll, params, xp_c, c, mask_c,
                           resets_c, None if resets_c is None else initial,
                           state_mask)

  return _blocks(steps, carry, xp, mask, resets, chunk, reverse)


def _cudnn_lstm(cell, params, xs, carry, mask, reverse):
  """`run` for an LSTM as one `jax.experimental.rnn.lstm` call."""
  if not (type(cell) is cells_lib.LSTM and cell.recurrent
          and cell.compute_dtype is None):
    raise ValueError('cudnn=True runs a float32, recurrent LSTM only; '
                     f'got {cell}')
  num_steps, batch = xs.shape[:2]
  if jnp.issubdtype(xs.dtype, jnp.integer):
    xs = jax.nn.one_hot(xs, params['W_xh'].shape[0])
  lengths = (jnp.full((batch,), num_steps, jnp.int32) if mask is None
             else mask.sum(0, dtype=jnp.int32))
  x = jnp.swapaxes(xs, 0, 1)  # cuDNN is batch-major here
  if reverse:  # each sequence reversed within its length, padding kept last
    x = _reverse_within_lengths(x, lengths)
  # cuDNN's layout: W_ih [4H, D], W_hh [4H, H] (gates i, f, g, o, the order of
  # cells.LSTM), then an input and a recurrent bias; ours is the one bias.
  weights = jnp.concatenate([params['W_xh'].T.ravel(), params['W_hh'].T.ravel(),
                             params['b_h'], jnp.zeros_like(params['b_h'])])
  c_0, h_0 = carry
  # input_size, hidden_size, num_layers, dropout, bidirectional
  sizes = (xs.shape[-1], cell.hidden_size, 1, 0.0, False)
  if _on_cuda():
    y, h_n, c_n = jax_rnn.lstm(x, h_0[None], c_0[None], weights, lengths,
                               *sizes)
  else:
    unpacked = jax_rnn.unpack_lstm_weights(weights, *sizes[:3], False)
    y, h_n, c_n = jax_rnn.lstm_ref(x, h_0[None], c_0[None], *unpacked,
                                   lengths, *sizes)
  if reverse:
    y = _reverse_within_lengths(y, lengths)
  return (c_n[0], h_n[0]), jnp.swapaxes(y, 0, 1)


def _on_cuda() -> bool:
  backend = jax.extend.backend.get_backend()
  return backend.platform == 'gpu' and 'cuda' in backend.platform_version.lower()


def _reverse_within_lengths(x, lengths):
  """x [B, T, ...]: steps 0..len-1 of each row reversed, the rest in place."""
  t = jnp.arange(x.shape[1])[None, :]
  index = jnp.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
  return jnp.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)),
                             axis=1)


def _scan(cell, params, xp, carry, mask, reverse, unroll, resets=None,
          perturb=None, initial=None, after=False, state_mask=None):
  """The forward scan; also returns, per step, what the backward pass needs:
  the carry the step started from (`after`: the one it ends with) and the
  recurrent projection W_hh h_{t-1}, or, for a cell whose gates read only
  the sum of the projections (`Cell.gates_read_sum`), that sum (then the
  backward pass needs no xp). `resets` restart from `initial` (default:
  `carry`); `perturb` is added to each step's new state and `state_mask`
  multiplies the state W_hh reads (see `run`)."""
  if cell.recurrent and cell.compute_dtype is not None:  # cast once, not per step
    params = {**params, 'W_hh': params['W_hh'].astype(cell.compute_dtype)}
  initial = carry if initial is None else initial

  def body(c, inputs):
    xp_t, m_t, r_t, e_t = inputs
    if r_t is not None:
      c = _restart(r_t, initial, c)
    h = cell.hidden(c)
    hp_t = cell.recurrent_projection(
        params, h if state_mask is None else h * state_mask)
    new_c, y = _masked_gates(cell, params, c, xp_t, hp_t, m_t)
    if e_t is not None:
      if m_t is not None:
        e_t = jnp.where(m_t[:, None], e_t, jnp.zeros_like(e_t))
      new_c = cell.with_hidden(new_c, cell.hidden(new_c) + e_t)
      y = y + e_t
    return new_c, (y, new_c if after else c,
                   xp_t + hp_t if cell.gates_read_sum else hp_t)
  final, (ys, carries, hps) = jax.lax.scan(
      body, carry, (xp, mask, resets, perturb), reverse=reverse,
      unroll=unroll)
  return final, ys, carries, hps


def _restart(r_t, initial, c):
  """The carry `initial` where r_t [B] is True, else `c`."""
  return jax.tree.map(lambda i, o: jnp.where(r_t[:, None], i, o), initial, c)


def _masked_gates(cell, params, c, xp_t, hp_t, m_t):
  new_c, y = cell.gates(params, c, xp_t, hp_t)
  if m_t is None:
    return new_c, y
  keep = m_t[:, None]
  new_c = jax.tree.map(lambda n, o: jnp.where(keep, n, o), new_c, c)
  return new_c, jnp.where(keep, y, jnp.zeros_like(y))


# The backward pass of the recurrence, written by hand for one reason: the
# gradient of W_hh. Differentiating the scan accumulates h_{t-1}^T dz_t into
# it at every step, a [H, B] x [B, G*H] matmul inside the sequential loop;
# here the loop only carries dh back through W_hh^T, and the weight gradient
# is one [H, T*B] x [T*B, G*H] matmul after it, as cuDNN does. Everything
# else (the gate math of each cell) is differentiated by JAX, step by step.
@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _recurrent_scan(cell, reverse, unroll, params, xp, carry, mask, resets,
                    initial, state_mask):
  return _scan(cell, params, xp, carry, mask, reverse, unroll, resets,
               initial=initial, state_mask=state_mask)[:2]


def _recurrent_scan_fwd(cell, reverse, unroll, params, xp, carry, mask,
                        resets, initial, state_mask):
  final, ys, carries, hps = _scan(cell, params, xp, carry, mask, reverse,
                                  unroll, resets, initial=initial,
                                  state_mask=state_mask)
  # (For gates_read_sum cells `hps` holds xp + hp, and xp is not kept.)
  return (final, ys), (params, None if cell.gates_read_sum else xp, carries,
                       hps, mask, resets, initial, state_mask)


def _recurrent_scan_bwd(cell, reverse, unroll, residuals, cotangents):
  params, xp, carries, hps, mask, resets, initial, state_mask = residuals
  masked = (lambda h: h) if state_mask is None else (lambda h: h * state_mask)
  d_final, d_ys = cotangents
  small = {k: params[k] for k in cell.gate_params}
  w_hh_t = params['W_hh'].T
  if cell.compute_dtype is not None:
    w_hh_t = w_hh_t.astype(cell.compute_dtype)

  def body(state, inputs):
    d_c, d_small, d_initial = state
    c, xp_t, hp_t, m_t, r_t, dy_t = inputs
    if cell.gates_read_sum:  # hp_t is xp_t + hp_t: one gradient for both
      _, vjp = jax.vjp(
          lambda c_, sum_, s_: _masked_gates(
              cell, {**params, **s_}, c_, sum_, 0.0, m_t), c, hp_t, small)
      d_c_prev, d_hp, d_s = vjp((d_c, dy_t))
      d_xp = None
    else:
      _, vjp = jax.vjp(
          lambda c_, xp_, hp_, s_: _masked_gates(
              cell, {**params, **s_}, c_, xp_, hp_, m_t), c, xp_t, hp_t, small)
      d_c_prev, d_xp, d_hp, d_s = vjp((d_c, dy_t))
    # h_{t-1} also fed hp_t = (m * h_{t-1}) W_hh.
    d_h = cell.hidden(d_c_prev) + masked(cell.dot(d_hp, w_hh_t))
    d_c_prev = cell.with_hidden(d_c_prev, d_h)
    if r_t is not None:  # a restarted step read the initial carry instead
      zeros = jax.tree.map(jnp.zeros_like, d_c_prev)
      d_initial = jax.tree.map(jnp.add, d_initial,
                               _restart(r_t, d_c_prev, zeros))
      d_c_prev = _restart(r_t, zeros, d_c_prev)
    d_small = jax.tree.map(jnp.add, d_small, d_s)
    return (d_c_prev, d_small, d_initial), (d_xp, d_hp)

  d_small = jax.tree.map(jnp.zeros_like, small)
  d_initial = None if initial is None else jax.tree.map(jnp.zeros_like,
                                                         initial)
  (d_carry, d_small, d_initial), (d_xp, d_hp) = jax.lax.scan(
      body, (d_final, d_small, d_initial),
      (carries, xp, hps, mask, resets, d_ys), reverse=not reverse,
      unroll=unroll)
  h_prev = masked(cell.hidden(carries))
  if cell.gates_read_sum:
    d_xp = d_hp
  d_params = jax.tree.map(jnp.zeros_like, params)
  d_params.update(d_small)
  if cell.compute_dtype is None:
    d_params['W_hh'] = jnp.einsum('tbh,tbg->hg', h_prev, d_hp)
  else:
    d_params['W_hh'] = jnp.einsum(
        'tbh,tbg->hg', h_prev.astype(cell.compute_dtype),
        d_hp.astype(cell.compute_dtype), preferred_element_type=jnp.float32)
  return d_params, d_xp, d_carry, None, None, d_initial, None


_recurrent_scan.defvjp(_recurrent_scan_fwd, _recurrent_scan_bwd)
