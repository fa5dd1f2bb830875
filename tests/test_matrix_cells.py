"""The matrix-memory cells (mLSTM, GLA, DeltaNet, Gated DeltaNet, Mamba-2)
against their papers' equations, written here again as float64 loops over
each sequence alone that share no code with rnn_jax/cells/matrix*.py; and
their three forms (sequential, parallel, chunkwise) against each other."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import cells
from rnn_jax import layers
from rnn_jax import recurrence
from rnn_jax.errors import InputError
from rnn_jax.experiments import lm
from rnn_jax.experiments import seq2seq
from rnn_jax.models import language_model

MATRIX = ('mlstm', 'gla', 'deltanet', 'gated_deltanet', 'mamba2')
T, B, D, H, HEADS = 10, 3, 4, 8, 2
LENGTHS = (10, 7, 1)
# Segments of packed rows start here (batch row, step).
RESETS = ((0, 4), (0, 7), (1, 3))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
  return np.log1p(np.exp(x))


def _silu(x):
  return x * _sigmoid(x)


def _unit(x):
  return x / np.sqrt((x * x).sum(-1, keepdims=True) + 1e-6)


def _rms(r, scale):
  """Per-head RMS norm [heads, d] -> [heads * d], times the scale."""
  r = r / np.sqrt((r * r).mean(-1, keepdims=True) + 1e-6)
  return r.reshape(-1) * scale


def _parts(cell, p, x):
  """x [D] -> the named parts of W_xh x + b_h, in the cell's layout, the
  ones of width H split into heads."""
  xp = x @ p['W_xh'] + p['b_h']
  out, start = {}, 0
  for name, n in cell.pieces().items():
    out[name] = xp[start:start + n]
    if n == H and name != 'o':
      out[name] = out[name].reshape(HEADS, -1)
    start += n
  return out


def _convolved(cell, p, zs):
  """The parts of a segment's steps zs (in the order run) with q, k and v
  through the short convolution and SiLU: each channel of step t mixes
  those of steps t-K+1..t, zeros before the segment."""
  if not cell.short_conv:
    return zs
  width, out = cell.short_conv, []
  for t, z in enumerate(zs):
    new = dict(z)
    for n, name in enumerate('qkv'):
      w = p['conv'][:, n * H:(n + 1) * H].reshape(width, HEADS, -1)
      acc = np.zeros((HEADS, H // HEADS))
      for j in range(width):
        if t - (width - 1) + j >= 0:
          acc += w[j] * zs[t - (width - 1) + j][name]
      new[name] = _silu(acc)
    out.append(new)
  return out


def _step(name, p, z, state):
  """One step of the paper's equations, per head, unstabilised, from the
  step's parts z; the state is the paper's (mLSTM: C [d_v, d_k] and n;
  delta rule: S [d_v, d_k]; GLA and Mamba-2: [d_k, d_v]). Returns (state, y
  [H])."""
  d = H // HEADS
  q, k, v = z['q'], z['k'], z['v']
  if name == 'mlstm':  # Beck et al. 2024, Eq. 19-27
    c, n = state
    f, i = _sigmoid(z['f']), np.exp(z['i'])
    k = k / np.sqrt(d)
    c = f[:, None, None] * c + i[:, None, None] * v[:, :, None] * k[:, None]
    n = f[:, None] * n + i[:, None] * k
    den = np.maximum(np.abs((n * q).sum(-1)), 1.0)
    h = np.einsum('hvk,hk->hv', c, q) / den[:, None]
    return (c, n), _sigmoid(z['o']) * _rms(h, p['norm_scale'])
  if name == 'gla':  # Yang et al. 2024, Eq. 3
    alpha = _sigmoid(z['a']) ** (1 / 16)
    s = alpha[:, :, None] * state + k[:, :, None] * v[:, None]
    o = np.einsum('hkv,hk->hv', s, q / np.sqrt(d))
    return s, _silu(z['o']) * _rms(o, p['norm_scale'])
  if name in ('deltanet', 'gated_deltanet'):  # S (a (I - b k k^T)) + b v k^T
    q, k, beta = _unit(q), _unit(k), _sigmoid(z['b'])
    a = (np.exp(-np.exp(p['A_log']) * _softplus(z['a']))
         if name == 'gated_deltanet' else np.ones(HEADS))
    eye = np.eye(d)
    s = np.stack([
        state[h] @ (a[h] * (eye - beta[h] * np.outer(k[h], k[h])))
        + beta[h] * np.outer(v[h], k[h]) for h in range(HEADS)])
    o = np.einsum('hvk,hk->hv', s, q)
    return s, _silu(z['o']) * _rms(o, p['norm_scale'])
  # Mamba-2: h = exp(Delta A) h + Delta B x^T, y = h^T C + D x.
  delta = _softplus(z['dt'])
  a = np.exp(-delta * np.exp(p['A_log']))
  write = delta[:, None, None] * k[:, :, None] * v[:, None]
  s = a[:, None, None] * state + write
  y = np.einsum('hkv,hk->hv', s, q) + p['D'][:, None] * v
  return s, _silu(z['o']) * _rms(y, p['norm_scale'])


def _zeros(name):
  d = H // HEADS
  s = np.zeros((HEADS, d, d))
  return (s, np.zeros((HEADS, d))) if name == 'mlstm' else s


def _reference(name, cell, p, x, starts, reverse):
  """One sequence x [L, D] alone: each segment (from each of `starts`)
  from the zero state, backwards with `reverse`. Returns the outputs [L, H]
  and the state after the last step run."""
  bounds = list(starts) + [len(x)]
  ys = np.zeros((len(x), H))
  finals = []
  for s, e in zip(bounds[:-1], bounds[1:]):
    state = _zeros(name)
    order = list(range(e - 1, s - 1, -1) if reverse else range(s, e))
    zs = _convolved(cell, p, [_parts(cell, p, x[t]) for t in order])
    for t, z in zip(order, zs):
      state, ys[t] = _step(name, p, z, state)
    finals.append(state)
  return ys, finals[0 if reverse else -1]


def _setup(name, seed=0, conv=0):
  cell = cells.make_cell(name, H, num_heads=HEADS, short_conv=conv)
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  params = cell.init(k1, D)
  # Non-zero biases so that padding bugs cannot hide behind zeros.
  params = {k: v + 0.1 if k == 'b_h' else v for k, v in params.items()}
  xs = jax.random.normal(k2, (T, B, D))
  mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
  resets = np.zeros((T, B), bool)
  for b, t in RESETS:
    resets[t, b] = True
  return cell, params, xs, mask, jnp.asarray(resets)


def _paper_state(name, state):
  """The cell's state [B, heads, d_k, d_v] in the paper's layout."""
  if name == 'mlstm':
    c, n, m = (np.asarray(x, np.float64) for x in state)
    scale = np.exp(m)  # the stabiliser: C = exp(m) C-bar
    return (np.swapaxes(c, -1, -2) * scale[..., None, None],
            n * scale[..., None])
  s = np.asarray(state, np.float64)
  return np.swapaxes(s, -1, -2) if name in ('deltanet', 'gated_deltanet') else s


@pytest.mark.parametrize('conv', [0, 3])
@pytest.mark.parametrize('name', MATRIX)
def test_sequential_form_follows_the_papers_equations(name, conv):
  """With padding and packed segments, both directions, with and without
  the short convolution: every output and the final state equal the
  paper's equations run on each sequence (each segment) alone, and a
  padded step's output is zero."""
  cell, params, xs, mask, resets = _setup(name, conv=conv)
  p64 = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
  for reverse in (False, True):
    (state, y_last, *_), ys = jax.jit(lambda p, x, r=reverse: recurrence.run(
        cell, p, x, mask=mask, resets=resets, reverse=r,
        scan='sequential'))(params, xs)
    for b, length in enumerate(LENGTHS):
      starts = [0] + [t for row, t in RESETS if row == b]
      want, final = _reference(name, cell, p64, np.asarray(xs[:length, b],
                                                          np.float64),
                               starts, reverse)
      np.testing.assert_allclose(ys[:length, b], want, rtol=1e-4, atol=1e-5,
                                 err_msg=f'{name} reverse={reverse}')
      np.testing.assert_array_equal(ys[length:, b], 0.0)
      np.testing.assert_allclose(y_last[b], want[0 if reverse else -1],
                                 rtol=1e-4, atol=1e-5)
      chex.assert_trees_all_close(
          jax.tree.map(lambda s: s[b], _paper_state(name, state)), final,
          rtol=1e-4, atol=1e-5)


FORMS = (('sequential', 64), ('parallel', 64), ('chunkwise', 4),
         ('chunkwise', 5))


@pytest.mark.parametrize('name', MATRIX)
def test_three_forms_agree_in_values_and_gradients(name):
  """sequential, parallel and chunkwise (chunks that do and do not divide
  T), from a non-zero initial state, with padding and packed segments, both
  directions: the outputs, the final state and the gradients with respect
  to the parameters and the initial state agree to 1e-5 of the largest."""
  cell, params, xs, mask, resets = _setup(name)
  keys = jax.random.split(jax.random.PRNGKey(7), 3)
  leaves, tree = jax.tree.flatten(cell.initial_carry(B))
  carry = jax.tree.unflatten(tree, [
      x + 0.3 * jax.random.normal(k, x.shape)
      for x, k in zip(leaves, jax.random.split(keys[0], len(leaves)))])
  if name == 'mlstm':  # the normaliser state stays positive along q
    (c, n, m), y = carry
    carry = ((c, jnp.abs(n), m), y)
  weights = jax.random.normal(keys[1], (T, B, H))

  def loss(p, c, reverse, form, size):
    (state, y), ys = recurrence.run(cell, p, xs, carry=c, mask=mask,
                                    resets=resets, reverse=reverse,
                                    scan=form, chunk_size=size)
    true = _true_state(state)
    return (jnp.sum(jnp.sin(ys) * weights) + jnp.sum(true ** 2) * 0.1
            + jnp.sum(y)), (ys, true)

  @jax.jit
  def everything(p, c):
    return {(reverse, form, size): jax.value_and_grad(
        loss, (0, 1), has_aux=True)(p, c, reverse, form, size)
            for reverse in (False, True) for form, size in FORMS}

  results = everything(params, carry)
  for reverse in (False, True):
    (_, want_aux), want_grad = results[(reverse, 'sequential', 64)]
    for form, size in FORMS[1:]:
      (_, aux), grad = results[(reverse, form, size)]
      message = f'{name} {form} {size} reverse={reverse}'
      _assert_close_to_largest(aux, want_aux, message)
      _assert_close_to_largest(grad, want_grad, message)


@pytest.mark.parametrize('name', ['mlstm', 'gated_deltanet'])
def test_layer_recomputed_in_blocks_gives_the_same_values_and_gradients(name):
  """`remat_chunk`: the layer run block by block, each block recomputed in
  the backward pass, equals the layer run whole (blocks that do and do not
  divide T, a short convolution whose history crosses the blocks, padding,
  packed segments, both directions), in values and gradients; and the
  backward pass then keeps only a block's activations (XLA's count)."""
  cell, params, xs, mask, resets = _setup(name, conv=4)
  weights = jax.random.normal(jax.random.PRNGKey(3), (T, B, H))

  def loss(p, x, reverse, block):
    carry, ys = recurrence.run(cell, p, x, mask=mask, resets=resets,
                               reverse=reverse, chunk_size=2,
                               remat_chunk=block)
    return jnp.sum(jnp.sin(ys) * weights) + 0.1 * sum(
        jnp.sum(jnp.sin(c)) for c in jax.tree.leaves(carry))

  grad = jax.jit(jax.value_and_grad(loss, (0, 1)), static_argnums=(2, 3))
  for reverse in (False, True):
    want = grad(params, xs, reverse, 0)
    for block in (3, 5):
      _assert_close_to_largest(grad(params, xs, reverse, block), want,
                               f'{name} blocks of {block} reverse={reverse}')
  long = jnp.tile(xs, (64, 1, 1))
  temp = lambda block: jax.jit(lambda p: jax.grad(lambda p: jnp.sum(
      recurrence.run(cell, p, long, chunk_size=16, remat_chunk=block)[1])
  )(p)).lower(params).compile().memory_analysis().temp_size_in_bytes
  assert temp(64) < temp(0) / 3, (temp(64), temp(0))


def _assert_close_to_largest(got_tree, want_tree, message=''):
  """Equal within 1e-5 of the largest magnitude in `want_tree`."""
  scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(want_tree))
  for got, want in zip(jax.tree.leaves(got_tree), jax.tree.leaves(want_tree)):
    np.testing.assert_allclose(got / scale, want / scale, atol=1e-5,
                               err_msg=message)


def _true_state(state):
  """The state without the mLSTM's stabiliser (C exp(m))."""
  if isinstance(state, tuple):
    c, _, m = state
    return c * jnp.exp(m)[..., None, None]
  return state


@pytest.mark.parametrize('name,conv', [(name, 0) for name in MATRIX]
                         + [('mlstm', 4), ('mamba2', 4)])
def test_step_function_and_carried_state_equal_the_whole_sequence(name, conv):
  """The one-step function run T times (generation, streaming) equals the
  chunkwise form over the sequence, and two halves with the carry passed
  between them equal the whole (with the short convolution, its history
  carried too)."""
  cell, params, xs, _, _ = _setup(name, conv=conv)
  run = jax.jit(lambda p, x, c: recurrence.run(cell, p, x, carry=c,
                                               scan='chunkwise', chunk_size=4))
  whole, ys = run(params, xs, cell.initial_carry(B))
  carry = cell.initial_carry(B)
  step = jax.jit(lambda c, x: cell.step(params, c,
                                        cell.input_projection(params, x)))
  for t in range(T):
    carry, y_t = step(carry, xs[t])
    np.testing.assert_allclose(y_t, ys[t], rtol=1e-5, atol=1e-5)
  first, ys1 = run(params, xs[:T // 2 + 1], cell.initial_carry(B))
  second, ys2 = run(params, xs[T // 2 + 1:], first)
  np.testing.assert_allclose(jnp.concatenate([ys1, ys2]), ys, rtol=1e-5,
                             atol=1e-5)
  for got in (carry, second):  # the state, the output (and the history)
    chex.assert_trees_all_close(
        (_true_state(got[0]), *got[1:]), (_true_state(whole[0]), *whole[1:]),
        rtol=1e-5, atol=1e-5)
  assert len(whole) == (3 if conv else 2)


@pytest.mark.parametrize('name', MATRIX)
def test_bfloat16_stays_within_1e_2_of_float32_over_1024_steps(name):
  """bfloat16 inputs and matmul operands (8 mantissa bits), float32 state
  and accumulation: over 1024 steps the outputs stay within 1e-2 of
  float32's (relative L2 error), and the state is float32."""
  steps, width = 1024, 16
  f32 = cells.make_cell(name, width, num_heads=HEADS)
  bf16 = cells.make_cell(name, width, num_heads=HEADS,
                         compute_dtype=jnp.bfloat16)
  params = f32.init(jax.random.PRNGKey(0), D)
  xs = jax.random.normal(jax.random.PRNGKey(1), (steps, 2, D))
  want = jax.jit(lambda p, x: recurrence.run(f32, p, x)[1])(params, xs)
  (state, _), got = jax.jit(lambda p, x: recurrence.run(bf16, p, x))(
      params, xs.astype(jnp.bfloat16))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state))
  assert bool(jnp.all(jnp.isfinite(want)))
  error = jnp.linalg.norm(got.astype(jnp.float32) - want)
  assert float(error / jnp.linalg.norm(want)) <= 1e-2


def test_gla_scores_by_sub_blocks_equal_the_sequential_form():
  """GLA's chunk scores, computed by sub-blocks that factor the per-channel
  decay, over chunks of several sub-blocks and a partial one, with strong
  decays (about e^-2 per step): values and gradients equal the sequential
  form's."""
  cell = cells.make_cell('gla', H, num_heads=HEADS)
  params = cell.init(jax.random.PRNGKey(0), D)
  gate = slice(4 * H, 5 * H)  # the decay's part of the projection
  params['b_h'] = params['b_h'].at[gate].set(-30.0)
  xs = jax.random.normal(jax.random.PRNGKey(1), (50, 2, D))

  def loss(p, form, size):
    return jnp.sum(jnp.sin(recurrence.run(cell, p, xs, scan=form,
                                          chunk_size=size)[1]))
  grads = jax.jit(lambda p: [jax.value_and_grad(loss)(p, form, size) for
                             form, size in (('sequential', 1), ('parallel', 1),
                                            ('chunkwise', 40))])(params)
  for got in grads[1:]:
    _assert_close_to_largest(got[0], grads[0][0])
    _assert_close_to_largest(got[1], grads[0][1])


@pytest.mark.parametrize('name,conv', [('mlstm', 0), ('gated_deltanet', 4)])
def test_bidirectional_residual_stack_padded_batch_equals_each_alone(name,
                                                                     conv):
  """The stack's batch-major API with a matrix cell: a padded batch (garbage
  in the padding) gives each sequence's outputs and final carry (with the
  short convolution's history) alone."""
  stack = layers.RNNStack(cell=name, hidden_size=H, num_heads=HEADS,
                          num_layers=2, bidirectional=True, block='residual',
                          chunk_size=4, short_conv=conv)
  xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
  lengths = jnp.asarray(LENGTHS)
  variables = jax.jit(stack.init)(jax.random.PRNGKey(2), xs, lengths=lengths)
  apply = jax.jit(stack.apply)
  valid = (jnp.arange(T)[None, :] < lengths[:, None])[..., None]
  ys, carry = apply(variables, jnp.where(valid, xs, 1e3), lengths=lengths)
  for b, length in enumerate(LENGTHS):
    ys_b, carry_b = apply(variables, xs[b:b + 1, :length])
    np.testing.assert_allclose(ys[b, :length], ys_b[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ys[b, length:], 0.0)
    chex.assert_trees_all_close(jax.tree.map(lambda c: c[b:b + 1], carry),
                                carry_b, rtol=1e-5, atol=1e-5)


def test_heads_must_divide_the_width_of_a_cell():
  with pytest.raises(ValueError, match='multiple of num_heads 3'):
    cells.make_cell('gla', 8, num_heads=3)


def test_config_checks_name_the_field():
  """A width the heads do not divide, and what a matrix state cannot do,
  are refused naming the field (the launcher prints it as one line)."""
  config = lm.LanguageModelling().get_config()
  config.model.update(cell='mlstm', hidden_size=30, num_heads=4)
  with pytest.raises(InputError, match='model.num_heads: model.cell=mlstm '
                     'splits model.hidden_size=30 into 4 heads'):
    layers.check_fields(config)
  config.model.update(hidden_size=32, recurrent_dropout=0.1)
  with pytest.raises(InputError, match='model.recurrent_dropout: not '
                     'available for the matrix-memory cell'):
    layers.check_fields(config)
  config.model.recurrent_dropout = 0.0
  layers.check_fields(config)
  config = seq2seq.Seq2Seq().get_config()
  config.model.update(decoder_cell='gla', hidden_size=30)
  with pytest.raises(InputError, match='model.decoder_cell=gla splits '
                     'model.hidden_size=30'):
    layers.check_fields(config)
  config.model.update(hidden_size=32, short_conv=4)
  layers.check_fields(config)  # the decoder's cell takes it
  config = lm.LanguageModelling().get_config()
  config.model.update(cell='lstm', short_conv=4)
  with pytest.raises(InputError, match='model.short_conv: .* model.cell=lstm '
                     'has none'):
    layers.check_fields(config)
  config.model.update(cell='gla', short_conv=1)
  with pytest.raises(InputError, match='model.short_conv: 0 .* got 1'):
    layers.check_fields(config)
  config.model.update(short_conv=4, remat_chunk=8)
  language_model.check_fields(config.model)  # the whole layer, in blocks
  config.model.cell = 'mingru'
  with pytest.raises(InputError, match='model.remat_chunk: .* not '
                     'model.cell=mingru'):
    language_model.check_fields(config.model)
