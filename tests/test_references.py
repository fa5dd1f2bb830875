"""The matrix-memory recurrences against the public PyTorch references:
fla's naive recurrences (delta rule, gated delta rule, GLA, scalar-decay
GLA as in Mamba-2) and mlstm_kernels' recurrent mLSTM. Each of rnn_jax's
three forms, from a non-zero initial state, against the reference's
outputs and final state.

    pip install -e ".[references]" && python -m pytest -m references

(The group is left out of the default run; it skips where the packages are
absent.)"""

import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax.cells import matrix_forms as matrix

pytestmark = pytest.mark.references
INSTALL = 'pip install -e ".[references]"'


def _import(name):
  """A reference package, imported when a test runs (not when the default
  run collects this file and leaves it out); skips where it is absent."""
  return pytest.importorskip(name, reason=INSTALL)

B, T, H, K = 2, 37, 3, 8
FORMS = (('sequential', 64), ('parallel', 64), ('chunkwise', 16),
         ('chunkwise', 10))


def _fla_naive(op: str):
  """fla/ops/<op>/naive.py, loaded alone: fla.ops itself imports triton,
  which the naive references do not need."""
  fla = _import('fla')
  path = os.path.join(os.path.dirname(fla.__file__), 'ops', op, 'naive.py')
  spec = importlib.util.spec_from_file_location(f'fla_naive_{op}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _inputs(seed=0):
  """Random q, k, v, gate pre-activations and an initial state, [B, T, H,
  K] (fla's layout)."""
  rng = np.random.default_rng(seed)
  q, k, v, a = (rng.standard_normal((B, T, H, K)).astype(np.float32)
                for _ in range(4))
  gates = rng.standard_normal((3, B, T, H)).astype(np.float32)
  state = 0.3 * rng.standard_normal((B, H, K, K)).astype(np.float32)
  return q, k, v, a, gates, state


def _ours(rule, terms, state):
  """Every form's outputs [B, T, H, V] and final state."""
  time_major = lambda x: None if x is None else jnp.moveaxis(jnp.asarray(x),
                                                            1, 0)
  terms = matrix.Terms(*(time_major(x) for x in terms))
  results = []
  for form, size in FORMS:
    final, out = matrix.sequence(rule, terms, state, form=form,
                                 chunk_size=size)
    results.append((f'{form} {size}', np.moveaxis(np.asarray(out), 0, 1),
                    final))
  return results


def _close(got, want, message):
  want = np.asarray(want, np.float64)
  scale = np.abs(want).max()
  np.testing.assert_allclose(np.asarray(got) / scale, want / scale,
                             atol=1e-5, err_msg=message)


def _check(rule, terms, state, want_out, want_state):
  for name, out, final in _ours(rule, terms, jnp.asarray(state)):
    _close(out, want_out, f'{rule} {name} outputs')
    _close(final, want_state, f'{rule} {name} final state')


def _t(x):
  return _import('torch').from_numpy(np.ascontiguousarray(x))


@pytest.mark.parametrize('gated', [False, True])
def test_delta_rules_equal_fla(gated):
  q, k, v, _, gates, state = _inputs()
  k = k / np.linalg.norm(k, axis=-1, keepdims=True)
  beta = 1 / (1 + np.exp(-gates[0]))
  log_decay = -np.log1p(np.exp(gates[1])) if gated else np.zeros_like(beta)
  scale = K ** -0.5
  if gated:
    naive = _fla_naive('gated_delta_rule').naive_recurrent_gated_delta_rule
    out, final = naive(_t(q), _t(k), _t(v), _t(beta), _t(log_decay),
                       scale=scale, initial_state=_t(state),
                       output_final_state=True)
  else:  # the older [B, H, T, K] layout
    naive = _fla_naive('delta_rule').delta_rule_recurrence
    swap = lambda x: _t(np.swapaxes(x, 1, 2))
    out, final = naive(swap(q), swap(k), swap(v), swap(beta),
                       initial_state=_t(state), output_final_state=True)
    out = out.transpose(1, 2)
  _check('delta', (q * scale, k, v, log_decay, None, beta), state,
         out.numpy(), final.numpy())


def test_gla_equals_fla():
  q, k, v, a, _, state = _inputs(1)
  log_decay = -np.log1p(np.exp(-a)) / 16  # log sigmoid(a) / 16
  out, final = _fla_naive('gla').naive_recurrent_gla(
      _t(q), _t(k), _t(v), _t(log_decay), initial_state=_t(state),
      output_final_state=True)
  _check('gated', (q * K ** -0.5, k, v, log_decay), state, out.numpy(),
         final.numpy())


def test_scalar_decay_equals_fla_simple_gla():
  """The rule of Mamba-2's SSD: one decay per head."""
  q, k, v, _, gates, state = _inputs(2)
  log_decay = -np.log1p(np.exp(gates[0]))
  out, final = _fla_naive('simple_gla').naive_recurrent_simple_gla(
      _t(q), _t(k), _t(v), _t(log_decay), scale=1.0,
      initial_state=_t(state), output_final_state=True)
  _check('gated', (q, k, v, log_decay), state, out.numpy(), final.numpy())


def test_mlstm_equals_mlstm_kernels():
  """The normalised, stabilised mLSTM; the reference without its epsilon
  in the denominator. States compared without the stabiliser (C exp(m))."""
  q, k, v, _, gates, c0 = _inputs(3)
  rng = np.random.default_rng(4)
  n0 = np.abs(rng.standard_normal((B, H, K))).astype(np.float32)
  m0 = rng.standard_normal((B, H)).astype(np.float32)
  i_gate, f_gate = gates[0], gates[1] + 2.0
  head_major = lambda x: _t(np.swapaxes(x, 1, 2))
  mlstm_sequence = _import('mlstm_kernels.torch.recurrent.native_sequence')
  out, (c, n, m) = mlstm_sequence.mlstm_recurrent_sequence__native_fw(
      head_major(q), head_major(k), head_major(v), head_major(i_gate),
      head_major(f_gate), c_initial=_t(c0), n_initial=_t(n0),
      m_initial=_t(m0[..., None]), return_last_states=True, eps=0.0)
  want_out = out.transpose(1, 2).numpy()
  true_state = lambda c, m: np.asarray(c) * np.exp(np.asarray(m))[..., None,
                                                                  None]
  want_state = true_state(c.numpy(), m.numpy()[..., 0])
  log_f = -np.log1p(np.exp(-f_gate))
  terms = (q * K ** -0.5, k, v, log_f, i_gate)
  for name, got, (c_, _, m_) in _ours('mlstm', terms, (
      jnp.asarray(c0), jnp.asarray(n0), jnp.asarray(m0))):
    _close(got, want_out, f'mlstm {name} outputs')
    _close(true_state(c_, m_), want_state, f'mlstm {name} final state')

