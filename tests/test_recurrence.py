"""The scan core against plain loops, finite differences and padding."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from rnn_jax import cells
from rnn_jax import layers
from rnn_jax import recurrence

# (irnn is the relu rnn from another init: tested in test_memory.py; the
# matrix-memory cells in test_matrix_cells.py.)
CELL_NAMES = tuple(c for c, kind in cells.CELLS.items() if c != 'irnn'
                   and not issubclass(kind, cells.MatrixCell))
T, B, D, H = 6, 3, 4, 5
LENGTHS = np.array([6, 3, 1])


def _setup(name, seed=0, **kwargs):
  cell = cells.make_cell(name, H, **kwargs)
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  params = cell.init(k1, D)
  # Non-zero biases so that padding bugs cannot hide behind zeros.
  params = {k: v + 0.1 if k.startswith('b') else v for k, v in params.items()}
  xs = jax.random.normal(k2, (T, B, D))
  return cell, params, xs


def _loop(cell, params, x, reverse):
  """Reference: one unpadded sequence [L, D], a Python loop over time."""
  carry = cell.initial_carry(1)
  ys = [None] * len(x)
  order = range(len(x) - 1, -1, -1) if reverse else range(len(x))
  for t in order:
    xp = cell.input_projection(params, x[t][None])
    carry, y = cell.step(params, carry, xp)
    ys[t] = y[0]
  return carry, jnp.stack(ys)


class ScanTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_scan_equals_python_loop_with_padding(self):
    for name in CELL_NAMES:
      for reverse in (False, True):
        cell, params, xs = _setup(name)
        mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
        run = self.variant(lambda p, x, m, c=cell, r=reverse: recurrence.run(
            c, p, x, mask=m, reverse=r))
        carry, ys = run(params, xs, mask)
        chex.assert_shape(ys, (T, B, H))
        for b, length in enumerate(LENGTHS):
          ref_carry, ref_ys = _loop(cell, params, xs[:length, b], reverse)
          np.testing.assert_allclose(ys[:length, b], ref_ys, atol=1e-5,
                                     err_msg=f'{name} reverse={reverse}')
          np.testing.assert_array_equal(ys[length:, b], 0.0)
          chex.assert_trees_all_close(
              jax.tree.map(lambda c: c[b], carry),
              jax.tree.map(lambda c: c[0], ref_carry), atol=1e-5)

  @chex.variants(with_jit=True, without_jit=True)
  def test_unroll_does_not_change_results(self):
    cell, params, xs = _setup('lstm')
    _, ys1 = self.variant(lambda p, x: recurrence.run(cell, p, x))(params, xs)
    _, ys3 = self.variant(lambda p, x: recurrence.run(cell, p, x, unroll=3))(
        params, xs)
    np.testing.assert_allclose(ys1, ys3, atol=1e-6)

  @chex.variants(with_jit=True)
  def test_initial_carry_in_final_carry_out(self):
    """Running [0, T) equals running [0, k) then [k, T) from its carry."""
    for name in CELL_NAMES:
      cell, params, xs = _setup(name)
      run = self.variant(lambda p, x, c: recurrence.run(cell, p, x, carry=c))
      full_carry, full_ys = run(params, xs, cell.initial_carry(B))
      c1, ys1 = run(params, xs[:2], cell.initial_carry(B))
      c2, ys2 = run(params, xs[2:], c1)
      np.testing.assert_allclose(jnp.concatenate([ys1, ys2]), full_ys,
                                 atol=1e-5)
      chex.assert_trees_all_close(c2, full_carry, atol=1e-5)


# The classic cells; the others' gradients are checked against an
# independent loop of their equations in test_modern_cells.py.
@pytest.mark.parametrize('name', ('rnn', 'gru', 'lstm'))
@pytest.mark.parametrize('reverse,masked', [(False, True), (True, True),
                                            (False, False)])
def test_gradients_match_finite_differences(name, reverse, masked):
  # The recurrence has a hand-written backward pass (the W_hh gradient
  # hoisted out of the loop): every parameter, the inputs and the initial
  # carry against finite differences, with and without padding, both ways.
  with jax.enable_x64(True):
    cell, params, xs = _setup(name)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    xs = xs.astype(jnp.float64)
    mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T) if masked else None
    carry0 = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(B, jnp.float64))

    def loss(p, x, c0):
      carry, ys = recurrence.run(cell, p, x, carry=c0, mask=mask,
                                 reverse=reverse, unroll=2)
      return jnp.sum(ys ** 2) + jnp.sum(jnp.sin(cell.hidden(carry)))

    check_grads(loss, (params, xs, carry0), order=1, modes=['rev'], eps=1e-5,
                atol=1e-6, rtol=1e-5)


def test_rematerialised_chunks_give_the_same_values_and_gradients():
  # The chunking wraps the same scan for every cell; the LSTM's is the one
  # with a two-part carry.
  name = 'lstm'
  cell, params, xs = _setup(name)
  carry0 = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(B))
  full_mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)

  def loss(p, x, c0, mask, reverse, chunk):
    carry, ys = recurrence.run(cell, p, x, carry=c0, mask=mask,
                               reverse=reverse, remat_chunk=chunk)
    return jnp.sum(ys ** 2) + jnp.sum(jnp.sin(cell.hidden(carry))), ys

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                 static_argnums=(4, 5))
  for mask in (None, full_mask):
    for reverse in (False, True):
      (ref, ref_ys), ref_grads = grad(params, xs, carry0, mask, reverse, 0)
      # 3 divides T = 6; 4 does not (the last chunk is padded).
      for chunk in ((3, 4) if mask is None else (4,)):
        (value, ys), grads = grad(params, xs, carry0, mask, reverse, chunk)
        where = f'{name} mask={mask is not None} reverse={reverse} {chunk=}'
        np.testing.assert_allclose(value, ref, rtol=1e-6, err_msg=where)
        np.testing.assert_allclose(ys, ref_ys, atol=1e-6, err_msg=where)
        chex.assert_trees_all_close(grads, ref_grads, atol=1e-5, rtol=1e-5)


def test_cudnn_lstm_packing_gives_the_same_values_and_gradients():
  # Off a CUDA GPU, cudnn=True runs our parameters, packed into cuDNN's flat
  # weight layout, through jax.experimental.rnn's reference scan: this checks
  # the packing (gate order, transposes, biases), the per-length reversal of
  # the backward direction and the carries. The fused kernel itself needs a
  # GPU.
  cell, params, xs = _setup('lstm')
  carry0 = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(B))
  full_mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)

  def loss(p, x, c0, mask, reverse, cudnn):
    carry, ys = recurrence.run(cell, p, x, carry=c0, mask=mask,
                               reverse=reverse, cudnn=cudnn)
    return (jnp.sum(ys * jnp.cos(ys)) + jnp.sum(jnp.sin(carry[0]))
            + jnp.sum(carry[1] ** 2)), ys

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                 static_argnums=(4, 5))
  for mask in (None, full_mask):
    for reverse in (False, True):
      (ref, ref_ys), ref_grads = grad(params, xs, carry0, mask, reverse, False)
      (value, ys), grads = grad(params, xs, carry0, mask, reverse, True)
      where = f'mask={mask is not None} {reverse=}'
      np.testing.assert_allclose(value, ref, rtol=1e-5, err_msg=where)
      np.testing.assert_allclose(ys, ref_ys, atol=1e-5, err_msg=where)
      chex.assert_trees_all_close(grads, ref_grads, atol=1e-5, rtol=1e-4)
  # One-hot inputs given as ids.
  ids = jnp.arange(T * B).reshape(T, B) % D
  ref = recurrence.run(cell, params, ids)
  chex.assert_trees_all_close(recurrence.run(cell, params, ids, cudnn=True),
                              ref, atol=1e-5)
  with pytest.raises(ValueError, match='LSTM only'):
    recurrence.run(cells.make_cell('gru', H), params, xs, cudnn=True)


def test_rematerialisation_shrinks_the_backward_pass_memory():
  cell = cells.make_cell('lstm', 64)
  params = cell.init(jax.random.PRNGKey(0), 16)
  xs = jnp.ones((2048, 8, 16))

  def temp_bytes(chunk):
    grad = jax.jit(jax.grad(lambda p, x: recurrence.run(
        cell, p, x, remat_chunk=chunk)[1].sum()))
    return grad.lower(params, xs).compile().memory_analysis().temp_size_in_bytes

  # The stored carries and recurrent projections, 2048 x 8 x (2 + 4) x 64
  # floats = 25 MB, become one chunk's worth plus a carry per chunk.
  assert temp_bytes(0) - temp_bytes(32) > 20e6


@pytest.mark.parametrize('name,block', [
    *[(n, 'stack') for n in CELL_NAMES], ('mingru', 'residual')])
@pytest.mark.parametrize('bidirectional', [False, True])
def test_padded_batch_equals_each_sequence_alone(name, block, bidirectional):
  """The stack's batch-major API: a padded batch with its lengths gives each
  sequence's outputs and final carry alone; time-major with a mask is the
  same computation; with return_carries, each (layer, direction)'s carries
  end in its final carry at the sequence's last step."""
  stack = layers.RNNStack(cell=name, hidden_size=H, num_layers=2,
                          bidirectional=bidirectional, block=block)
  xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
  lengths = jnp.asarray(LENGTHS)
  # Jitted: one compilation per shape instead of one per operation.
  variables = jax.jit(stack.init)(jax.random.PRNGKey(2), xs, lengths=lengths)
  apply = jax.jit(stack.apply, static_argnames='return_carries')
  # Garbage in the padding must not matter.
  valid = (jnp.arange(T)[None, :] < lengths[:, None])[..., None]
  xs_noisy = jnp.where(valid, xs, 1e3)
  ys, carry = apply(variables, xs_noisy, lengths=lengths)
  for b, length in enumerate(LENGTHS):
    ys_b, carry_b = apply(variables, xs[b:b + 1, :length])
    np.testing.assert_allclose(ys[b, :length], ys_b[0], atol=1e-5)
    np.testing.assert_array_equal(ys[b, length:], 0.0)
    chex.assert_trees_all_close(jax.tree.map(lambda c: c[b:b + 1], carry),
                                carry_b, atol=1e-5)
  time_major = stack.clone(time_major=True)
  mask = recurrence.lengths_to_mask(lengths, T)
  ys_t, carry_t = jax.jit(time_major.apply)(
      variables, jnp.swapaxes(xs_noisy, 0, 1), mask=mask)
  np.testing.assert_array_equal(jnp.swapaxes(ys_t, 0, 1), ys)
  chex.assert_trees_all_equal(carry_t, carry)
  ys_c, carry_c, carries = apply(variables, xs_noisy, lengths=lengths,
                                 return_carries=True)
  np.testing.assert_array_equal(ys_c, ys)
  assert len(carries) == len(carry)
  for index, (final, steps) in enumerate(zip(carry_c, carries)):
    backward = bidirectional and index % 2
    for b, length in enumerate(LENGTHS):
      last = 0 if backward else length - 1
      chex.assert_trees_all_close(
          jax.tree.map(lambda c: c[b, last], steps),
          jax.tree.map(lambda c: c[b], final), atol=1e-6)


def test_rnn_without_recurrence_is_the_mlp():
  cell, params, xs = _setup('rnn')
  _, ys = recurrence.run(cell, {**params, 'W_hh': jnp.zeros((H, H))}, xs)
  mlp = jnp.tanh(xs @ params['W_xh'] + params['b_h'])
  np.testing.assert_allclose(ys, mlp, atol=1e-6)
  # The same network built without W_hh at all (model.recurrent=False).
  flat = cells.make_cell('rnn', H, recurrent=False)
  flat_params = {k: v for k, v in params.items() if k != 'W_hh'}
  _, ys_flat = recurrence.run(flat, flat_params, xs)
  np.testing.assert_allclose(ys_flat, mlp, atol=1e-6)
  assert 'W_hh' not in flat.init(jax.random.PRNGKey(0), D)


def test_relu_rnn_follows_the_lecture_equation():
  cell, params, xs = _setup('rnn', activation='relu')
  _, ys = recurrence.run(cell, params, xs)
  h = jnp.zeros((B, H))
  for t in range(T):
    h = jax.nn.relu(h @ params['W_hh'] + xs[t] @ params['W_xh'] + params['b_h'])
    np.testing.assert_allclose(ys[t], h, atol=1e-5)


@pytest.mark.parametrize('name', CELL_NAMES)
def test_one_hot_ids_equal_one_hot_vectors_and_their_gradients(name):
  cell, params, _ = _setup(name)
  ids = jax.random.randint(jax.random.PRNGKey(3), (T, B), 0, D)

  def loss(p, x):
    carry, ys = recurrence.run(cell, p, x)
    return jnp.sum(ys ** 2) + jnp.sum(cell.hidden(carry))

  grad = jax.jit(jax.value_and_grad(loss))
  want, want_grad = grad(params, jax.nn.one_hot(ids, D))
  got, got_grad = grad(params, ids)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  chex.assert_trees_all_close(got_grad, want_grad, rtol=1e-5, atol=1e-6)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def test_gru_follows_the_pytorch_equations():
  """An independent numpy loop of PyTorch's documented GRU:
  r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
  n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 - z) ⊙ n + z ⊙ h."""
  cell, params, xs = _setup('gru')
  params = {**params, 'b_hn': params['b_hn'] - 0.3}
  _, ys = recurrence.run(cell, params, xs)
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  w_ir, w_iz, w_in = np.split(p['W_xh'], 3, axis=1)
  w_hr, w_hz, w_hn = np.split(p['W_hh'], 3, axis=1)
  b_r, b_z, b_in = np.split(p['b_h'], 3)
  h = np.zeros((B, H))
  for t in range(T):
    x = np.asarray(xs[t], np.float64)
    r = _sigmoid(x @ w_ir + h @ w_hr + b_r)
    z = _sigmoid(x @ w_iz + h @ w_hz + b_z)
    n = np.tanh(x @ w_in + b_in + r * (h @ w_hn + p['b_hn']))
    h = (1 - z) * n + z * h
    np.testing.assert_allclose(ys[t], h, atol=1e-5)


def test_lstm_follows_the_published_equations():
  """An independent numpy loop: i, f, o = σ(...), g = tanh(...),
  c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c')."""
  cell, params, xs = _setup('lstm')
  (c_out, h_out), ys = recurrence.run(cell, params, xs)
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  h, c = np.zeros((B, H)), np.zeros((B, H))
  for t in range(T):
    pre = np.asarray(xs[t], np.float64) @ p['W_xh'] + h @ p['W_hh'] + p['b_h']
    i, f, g, o = np.split(pre, 4, axis=1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    np.testing.assert_allclose(ys[t], h, atol=1e-5)
  np.testing.assert_allclose(c_out, c, atol=1e-5)
  np.testing.assert_allclose(h_out, h, atol=1e-5)


# Segments per row (their first steps) and each row's length: row 2 is
# padded after its one segment.
STARTS = ([0, 3, 5], [0, 2], [0])
SEG_LENGTHS = (T, T, 4)


@pytest.mark.parametrize('name', ('rnn', 'gru', 'lstm', 'mingru', 'lru'))
@pytest.mark.parametrize('reverse', [False, True])
def test_resets_run_each_segment_alone(name, reverse):
  cell, params, xs = _setup(name)
  carry0 = jax.tree.map(lambda c: c + 0.3 * jnp.arange(1, B + 1)[:, None],
                        cell.initial_carry(B))
  resets = np.zeros((T, B), bool)
  for b, starts in enumerate(STARTS):
    resets[starts, b] = True
  mask = recurrence.lengths_to_mask(jnp.asarray(SEG_LENGTHS), T)
  w = jax.random.normal(jax.random.PRNGKey(5), (T, B, H))

  def loss(p, x, c0, chunk):
    carry, ys = recurrence.run(cell, p, x, carry=c0, mask=mask,
                               resets=jnp.asarray(resets), reverse=reverse,
                               remat_chunk=chunk)
    return jnp.sum(ys * w) + jnp.sum(jnp.sin(cell.hidden(carry))), ys

  def reference(p, x, c0):
    """Each segment of each row run alone from that row's initial carry."""
    total, rows = 0.0, []
    for b, starts in enumerate(STARTS):
      bounds = list(starts) + [SEG_LENGTHS[b]]
      c0_b = jax.tree.map(lambda c: c[b:b + 1], c0)
      ys, finals = [], []
      for s, e in zip(bounds[:-1], bounds[1:]):
        final, ys_s = recurrence.run(cell, p, x[s:e, b:b + 1], carry=c0_b,
                                     reverse=reverse)
        ys.append(ys_s[:, 0])
        finals.append(final)
      ys = jnp.concatenate(ys + [jnp.zeros((T - bounds[-1], H))])
      # The run ends in the last segment (the first, going backwards).
      final = finals[0 if reverse else -1]
      total += jnp.sum(ys * w[:, b]) + jnp.sum(jnp.sin(cell.hidden(final)))
      rows.append(ys)
    return total, jnp.stack(rows, 1)

  grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                 static_argnums=3)
  # The segments' loop jitted too: one compilation instead of one per
  # operation.
  (want, want_ys), want_grads = jax.jit(jax.value_and_grad(
      reference, argnums=(0, 1, 2), has_aux=True))(params, xs, carry0)
  # The rematerialised chunks (4 does not divide T) restart from the run's
  # initial carry too.
  for chunk in (0, 4) if name == 'lstm' else (0,):
    (value, ys), grads = grad(params, xs, carry0, chunk)
    np.testing.assert_allclose(ys, want_ys, atol=1e-5)
    np.testing.assert_allclose(value, want, rtol=1e-5)
    chex.assert_trees_all_close(grads, want_grads, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('name', ('rnn', 'gru', 'lstm', 'mingru', 'lru'))
def test_perturbing_the_states_gives_their_gradients(name):
  """d loss / d perturb_t, where perturb_t is added to the state h_t after
  step t, against a plain loop that adds it by hand; padded steps get none."""
  cell, params, xs = _setup(name)
  mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
  width = cell.state(cell.initial_carry(1)).shape[-1] if isinstance(
      cell, cells.LinearCell) else H
  w = jax.random.normal(jax.random.PRNGKey(6), (T, B, H))
  eps = jnp.zeros((T, B, width))

  def loss(e):
    carry, ys = recurrence.run(cell, params, xs, mask=mask, perturb=e)
    return jnp.sum(ys * w) + jnp.sum(jnp.cos(cell.hidden(carry)))

  def loop(e):
    total = 0.0
    for b, length in enumerate(LENGTHS):
      x, carry = xs[:length, b:b + 1], cell.initial_carry(1)
      xp = cell.input_projection(params, x)
      if isinstance(cell, cells.LinearCell):
        a, bias = cell.coefficients(params, xp)
        h, hs = cell.state(carry), []
        for t in range(length):
          h = a[t] * h + bias[t] + e[t, b:b + 1]
          hs.append(h)
        ys = cell.outputs(params, jnp.stack(hs), xp)[:, 0]
        carry = cell.to_carry(hs[-1], ys[-1:])
      else:
        ys = []
        for t in range(length):
          carry, _ = cell.step(params, carry, xp[t])
          carry = cell.with_hidden(carry, cell.hidden(carry) + e[t, b:b + 1])
          ys.append(cell.hidden(carry)[0])
        ys = jnp.stack(ys)
      total += (jnp.sum(ys * w[:length, b])
                + jnp.sum(jnp.cos(cell.hidden(carry))))
    return total

  value, got = jax.jit(jax.value_and_grad(loss))(eps)
  want_value, want = jax.value_and_grad(loop)(eps)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  np.testing.assert_allclose(got, want, atol=1e-5)
  np.testing.assert_array_equal(got[LENGTHS[2]:, 2], 0.0)
  # A zero perturbation changes nothing.
  np.testing.assert_allclose(recurrence.run(cell, params, xs, mask=mask)[1],
                             recurrence.run(cell, params, xs, mask=mask,
                                            perturb=eps)[1], atol=1e-6)


@pytest.mark.parametrize('name', CELL_NAMES)
@pytest.mark.parametrize('reverse', [False, True])
def test_returned_carries_are_the_loops_carry_after_each_step(name, reverse):
  """`return_carries`: the carry after every step (an LSTM's c_t and h_t)
  equals a step-by-step loop's; a padded step holds it; outputs and final
  carry are as without it."""
  cell, params, xs = _setup(name)
  mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
  final, ys, carries = jax.jit(lambda p, x: recurrence.run(
      cell, p, x, mask=mask, reverse=reverse, return_carries=True))(params, xs)
  plain = recurrence.run(cell, params, xs, mask=mask, reverse=reverse)
  chex.assert_trees_all_close((final, ys), plain, atol=1e-6)
  for b, length in enumerate(LENGTHS):
    carry = cell.initial_carry(1)
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
      carry, _ = cell.step(params, carry,
                           cell.input_projection(params, xs[t, b][None]))
      chex.assert_trees_all_close(
          jax.tree.map(lambda c: c[t, b], carries),
          jax.tree.map(lambda c: c[0], carry), atol=1e-5)
    # Padding comes after the sequence: going forwards it holds the last
    # carry; going backwards the carry before the first real step is the
    # initial one.
    held = carry if not reverse else cell.initial_carry(1)
    for t in range(length, T):
      chex.assert_trees_all_close(
          jax.tree.map(lambda c: c[t, b], carries),
          jax.tree.map(lambda c: c[0], held), atol=1e-5)
