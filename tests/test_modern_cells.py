"""The linear recurrences (minGRU, minLSTM, LRU, RG-LRU) and the
layer-normalised cells against their papers' equations, written here again
as plain per-sequence loops that share no code with rnn_jax/cells/."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import cells
from rnn_jax import linear_scan
from rnn_jax import recurrence

T, B, D, H = 7, 3, 4, 5
LENGTHS = (7, 3, 1)
LINEAR = ('mingru', 'minlstm', 'lru', 'rglru')


def _split(w, n):
  return jnp.split(w, n, axis=-1)


def _ln(v, gain, bias=0.0, eps=1e-5):
  mean = v.mean(-1, keepdims=True)
  return (v - mean) / jnp.sqrt(((v - mean) ** 2).mean(-1, keepdims=True)
                               + eps) * gain + bias


def _mingru(p, x, h):
  """Feng et al. 2024: z = σ(W_z x), h~ = W_h x, h' = (1 - z) h + z h~."""
  kz, kh = _split(x @ p['W_xh'] + p['b_h'], 2)
  z = jax.nn.sigmoid(kz)
  h = (1 - z) * h + z * kh
  return h, h


def _minlstm(p, x, h):
  """f, i = σ(W x), f' = f / (f + i), i' = i / (f + i), h' = f' h + i' h~."""
  kf, ki, kh = _split(x @ p['W_xh'] + p['b_h'], 3)
  f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
  h = f / (f + i) * h + i / (f + i) * kh
  return h, h


def _rglru(p, x, h):
  """De et al. 2024: r, i = σ(W x), a_t = σ(Λ)^(8 r), h' = a h +
  sqrt(1 - a^2) (i v)."""
  kr, ki, v = _split(x @ p['W_xh'] + p['b_h'], 3)
  a = jax.nn.sigmoid(p['Lambda']) ** (8.0 * jax.nn.sigmoid(kr))
  h = a * h + jnp.sqrt(1 - a ** 2) * (jax.nn.sigmoid(ki) * v)
  return h, h


def _lru(p, x, carry):
  """Orvieto et al. 2023: s' = Λ s + γ B x, y = Re(C s') + D x, with
  λ = exp(-exp(ν) + i exp(θ)); the state as [re, im] halves."""
  s = carry[0][..., :H] + 1j * carry[0][..., H:]
  w_re, w_im, w_d = _split(p['W_xh'], 3)
  b_re, b_im, b_d = _split(p['b_h'], 3)
  bx = (x @ w_re + b_re) + 1j * (x @ w_im + b_im)
  lam = jnp.exp(-jnp.exp(p['nu_log']) + 1j * jnp.exp(p['theta_log']))
  s = lam * s + jnp.exp(p['gamma_log']) * bx
  c = p['W_hy'][:H].T - 1j * p['W_hy'][H:].T  # [H out, N]
  y = (s @ c.T).real + x @ w_d + b_d
  return (jnp.concatenate([s.real, s.imag], -1), y), y


def _gru_ln(p, x, h):
  """Ba et al. 2016's normalisation of the GRU (PyTorch's gate form)."""
  xr, xz, xn = _split(_ln(x @ p['W_xh'], p['ln_x_gain']) + p['b_h'], 3)
  hr, hz, hn = _split(_ln(h @ p['W_hh'], p['ln_h_gain']), 3)
  r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
  n = jnp.tanh(xn + r * (hn + p['b_hn']))
  h = (1 - z) * n + z * h
  return h, h


def _lstm_ln(p, x, carry):
  """(i, f, g, o) = LN(W_x x) + LN(W_h h) + b, c' = σ(f) c + σ(i) tanh(g),
  h' = σ(o) tanh(LN(c'))."""
  c, h = carry
  i, f, g, o = _split(_ln(x @ p['W_xh'], p['ln_x_gain'])
                      + _ln(h @ p['W_hh'], p['ln_h_gain']) + p['b_h'], 4)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(_ln(c, p['ln_c_gain'], p['ln_c_bias']))
  return (c, h), h


REFERENCES = {'mingru': _mingru, 'minlstm': _minlstm, 'rglru': _rglru,
              'lru': _lru, 'gru_ln': _gru_ln, 'lstm_ln': _lstm_ln}


def _setup(name):
  cell = cells.make_cell(name, H)
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  params = cell.init(k1, D)
  # Non-zero biases and gains away from one, so that none can hide.
  noise = jax.random.split(k3, len(params))
  params = {k: v + 0.1 * jax.random.normal(n, v.shape) if k.startswith(
      ('b_', 'ln_')) else v for (k, v), n in zip(sorted(params.items()), noise)}
  xs = jax.random.normal(k2, (T, B, D))
  carry0 = jax.tree.map(lambda c: c + 0.3, cell.initial_carry(B))
  return cell, params, xs, carry0


def _reference_loss(name, params, xs, carry0, weights, reverse):
  """Each sequence alone, unpadded, through the reference equations."""
  total, outputs = 0.0, []
  for b, length in enumerate(LENGTHS):
    carry = jax.tree.map(lambda c, b=b: c[b], carry0)
    ys = [None] * length
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
      carry, ys[t] = REFERENCES[name](params, xs[t, b], carry)
      total += jnp.sum(ys[t] * weights[t, b])
    hidden = carry[1] if isinstance(carry, tuple) else carry
    total += jnp.sum(jnp.sin(hidden))
    outputs.append(jnp.stack(ys))
  return total, outputs


@pytest.mark.parametrize('name', sorted(REFERENCES))
def test_cells_follow_their_papers_equations_with_padding(name):
  """Values and gradients of the batched, padded scan (both scans for the
  linear cells, both directions) against each sequence's reference loop."""
  cell, params, xs, carry0 = _setup(name)
  weights = jax.random.normal(jax.random.PRNGKey(5), (T, B, H))
  mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
  noisy = jnp.where(mask[..., None], xs, 1e3)  # padding must not matter

  def loss(p, scan, reverse):
    carry, ys = recurrence.run(cell, p, noisy, carry=carry0, mask=mask,
                               reverse=reverse, scan=scan)
    return jnp.sum(ys * weights) + jnp.sum(jnp.sin(cell.hidden(carry))), ys

  grad = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=(1, 2))
  scans = ('parallel', 'sequential') if name in LINEAR else ('auto',)
  for reverse in (False, True):
    (want, want_ys), want_grad = jax.value_and_grad(
        _reference_loss, argnums=1, has_aux=True)(
            name, params, xs, carry0, weights, reverse)
    for scan in scans:
      where = f'{name} {scan} reverse={reverse}'
      (got, ys), got_grad = grad(params, scan, reverse)
      for b, length in enumerate(LENGTHS):
        np.testing.assert_allclose(ys[:length, b], want_ys[b], atol=2e-5,
                                   err_msg=where)
        np.testing.assert_array_equal(ys[length:, b], 0.0, err_msg=where)
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                 err_msg=where)
      chex.assert_trees_all_close(got_grad, want_grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('name', LINEAR)
def test_one_step_function_run_t_times_equals_the_parallel_scan(name):
  cell, params, xs, carry0 = _setup(name)
  final, ys = recurrence.run(cell, params, xs, carry=carry0, scan='parallel')
  carry = carry0
  for t in range(T):
    carry, y = cell.step(params, carry, cell.input_projection(params, xs[t]))
    np.testing.assert_allclose(ys[t], y, atol=1e-5)
  chex.assert_trees_all_close(final, carry, atol=1e-5)


def test_lru_starts_on_its_ring_with_gamma_normalisation():
  cell = cells.make_cell('lru', 512)
  params = cell.init(jax.random.PRNGKey(0), 8)
  modulus = np.exp(-np.exp(np.asarray(params['nu_log'])))
  assert cell.r_min <= modulus.min() and modulus.max() <= cell.r_max
  phase = np.exp(np.asarray(params['theta_log']))
  assert 0 < phase.min() and phase.max() <= 2 * np.pi
  np.testing.assert_allclose(np.exp(params['gamma_log']),
                             np.sqrt(1 - modulus ** 2), rtol=1e-4)


def test_rglru_starts_with_a_power_c_in_its_range():
  cell = cells.make_cell('rglru', 512)
  params = cell.init(jax.random.PRNGKey(0), 8)
  a_c = np.asarray(jax.nn.sigmoid(params['Lambda'])) ** cell.c
  assert 0.9 - 1e-5 <= a_c.min() and a_c.max() <= 0.999 + 1e-5


@pytest.mark.parametrize('name', ['mingru', 'lru'])  # a real and a complex
def test_a_long_sequence_stays_finite_and_equal_in_both_scans(name):
  # 4096 steps with decays near one: the associative scan multiplies
  # coefficients in a different order than the loop; both stay close.
  cell = cells.make_cell(name, 16)
  params = cell.init(jax.random.PRNGKey(0), 8)
  xs = jax.random.normal(jax.random.PRNGKey(1), (4096, 2, 8))
  run = jax.jit(lambda p, x, scan: recurrence.run(cell, p, x, scan=scan)[1],
                static_argnums=2)
  par, seq = run(params, xs, 'parallel'), run(params, xs, 'sequential')
  assert np.isfinite(par).all()
  np.testing.assert_allclose(par, seq, atol=2e-4, err_msg=name)


@pytest.mark.parametrize('reverse', [False, True])
def test_linear_scan_and_its_backward_equal_a_loop(reverse):
  # Every form over several parallel blocks and a partial last one, with an
  # initial state: the values, and the hand-written backward against
  # autodiff of the loop (compiled once for the three forms).
  steps = 2 * linear_scan.PARALLEL_BLOCK + 5
  keys = jax.random.split(jax.random.PRNGKey(0), 4)
  a = jax.random.uniform(keys[0], (steps, 2, 3), minval=0.5, maxval=1.0)
  b, weights = (jax.random.normal(k, (steps, 2, 3)) for k in keys[1:3])
  h0 = jax.random.normal(keys[3], (2, 3))

  def loop(a, b, h0):
    hs, h = [None] * steps, h0
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
      h = hs[t] = a[t] * h + b[t]
    return jnp.stack(hs)

  def loss(f, a, b, h0):
    return jnp.sum(jnp.sin(f(a, b, h0)) * weights)

  grad = jax.jit(jax.grad(loss, (1, 2, 3)), static_argnums=0)
  want, want_grad = jax.jit(loop)(a, b, h0), grad(loop, a, b, h0)
  for scan, size in (('parallel', 0), ('sequential', 0), ('chunkwise', 24)):
    scanned = lambda a, b, h0, s=scan, n=size: linear_scan.linear_scan(
        a, b, h0, reverse, s, n)
    np.testing.assert_allclose(scanned(a, b, h0), want, atol=1e-5)
    chex.assert_trees_all_close(grad(scanned, a, b, h0), want_grad,
                                atol=1e-5, rtol=1e-5)
