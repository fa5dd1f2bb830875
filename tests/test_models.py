"""The language model, the optimizer chain and decoding."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rnn_jax import decoding
from rnn_jax import models
from rnn_jax import optim


# A cell of each carry shape: one array, (c, h), the LRU's (state, y); the
# linear cells through both kinds of stack.
@pytest.mark.parametrize('cell,block', [
    ('rnn', 'stack'), ('gru', 'stack'), ('lstm', 'stack'),
    ('lstm_ln', 'stack'), ('mingru', 'stack'), ('lru', 'stack'),
    ('minlstm', 'residual')])
def test_two_half_batches_with_carried_state_equal_one_full_batch(cell, block):
  model = models.LanguageModel(vocab_size=11, embed_size=6, cell=cell,
                               hidden_size=8, num_layers=2, block=block)
  tokens = jax.random.randint(jax.random.PRNGKey(0), (3, 10), 0, 11)
  # Jitted: one compilation per shape instead of one per operation.
  variables = jax.jit(model.init)(jax.random.PRNGKey(1), tokens,
                                  model.initial_carry(3))
  apply = jax.jit(model.apply)
  full, full_carry = apply(variables, tokens, model.initial_carry(3))
  first, carry = apply(variables, tokens[:, :5], model.initial_carry(3))
  second, carry = apply(variables, tokens[:, 5:], carry)
  np.testing.assert_allclose(jnp.concatenate([first, second], axis=1), full,
                             atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
               carry, full_carry)


# An orthogonal W_hh (a QR per gate), a short convolution and a matrix
# cell's heads, a bidirectional stack with an attention readout, an
# encoder-decoder with attention.
@pytest.mark.parametrize('model,inputs', [
    (models.LanguageModel(vocab_size=11, embed_size=6, cell='lstm',
                          hidden_size=8, num_layers=2),
     lambda: (np.ones((3, 5), np.int32), None)),
    (models.MemoryModel(outputs=5, one_hot_size=7, cell='deltanet',
                        hidden_size=8, num_layers=2, block='residual',
                        short_conv=4, num_heads=2),
     lambda: (np.ones((3, 9), np.int32),)),
    (models.Classifier(vocab_size=13, num_classes=3, embed_size=6,
                       cell='gru', hidden_size=8, bidirectional=True,
                       readout='attention'),
     lambda: (np.ones((3, 5), np.int32), np.array([5, 2, 1]))),
    (models.Seq2Seq(source_vocab_size=9, target_vocab_size=7, embed_size=6,
                    encoder_hidden_size=8, hidden_size=8),
     lambda: (np.ones((3, 5), np.int32), np.array([5, 2, 1]),
              np.ones((3, 2), np.int32)))])
def test_init_params_equal_an_eager_init_bit_for_bit(model, inputs):
  """models.init_params gives model.init's values bit for bit, without
  running the model on its inputs."""
  rng = jax.random.PRNGKey(4)
  eager = model.init(rng, *inputs())['params']
  lazy = models.init_params(model, rng, *inputs())
  assert jax.tree.structure(lazy) == jax.tree.structure(eager)
  for a, b in zip(jax.tree.leaves(lazy), jax.tree.leaves(eager)):
    assert a.dtype == b.dtype and np.array_equal(a, b)


def test_one_hot_model_output_is_w_ho_h_plus_b_o():
  """embed_size=0: x_t is one-hot, o_t = W_ho h_t + b_o (the lecture)."""
  model = models.LanguageModel(vocab_size=7, embed_size=0, cell='rnn',
                               hidden_size=4)
  tokens = jnp.array([[1, 5, 2]])
  variables = model.init(jax.random.PRNGKey(0), tokens)
  logits, _ = model.apply(variables, tokens)
  p = variables['params']
  cell, out = p['stack']['layer0'], p['readout']
  h = jnp.zeros(4)
  for t in range(3):
    h = jnp.tanh(cell['W_hh'].T @ h + cell['W_xh'].T @ jax.nn.one_hot(
        tokens[0, t], 7) + cell['b_h'])
    np.testing.assert_allclose(logits[0, t], out['kernel'].T @ h + out['bias'],
                               atol=1e-5)


@pytest.mark.parametrize('theta', [0.5, 3.0])
def test_clipping_caps_the_global_norm_at_theta(theta):
  tx = optim.make_optimizer('sgd', 1.0, clip_norm=theta)
  params = {'a': jnp.zeros(3), 'b': jnp.zeros((2, 2))}
  grads = {'a': jnp.array([3.0, 0.0, 4.0]), 'b': jnp.full((2, 2), 1.0)}
  norm = float(optax.global_norm(grads))  # sqrt(25 + 4) > 3
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(optax.global_norm(updates), min(theta, norm),
                             rtol=1e-6)
  # Direction is kept: g <- min(1, theta/|g|) g.
  np.testing.assert_allclose(updates['a'], -grads['a'] * theta / norm,
                             rtol=1e-6)
  small = jax.tree.map(lambda g: g * 1e-3, grads)
  updates, _ = tx.update(small, tx.init(params), params)
  jax.tree.map(lambda u, g: np.testing.assert_allclose(u, -g, rtol=1e-6),
               updates, small)


def test_clip_norm_zero_disables_clipping():
  tx = optim.make_optimizer('sgd', 1.0, clip_norm=0.0)
  grads = {'a': jnp.array([300.0, 400.0])}
  updates, _ = tx.update(grads, tx.init(grads), grads)
  np.testing.assert_allclose(updates['a'], -grads['a'])


def test_step_schedule_is_constant_then_decays_per_epoch():
  schedule = optim.make_schedule('step', 1.0, steps_per_epoch=10,
                                 total_steps=100, decay_after_epochs=4,
                                 decay_rate=0.5)
  lrs = [float(schedule(epoch * 10 + 3)) for epoch in range(7)]
  assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]


def test_filter_logits_top_k_and_top_p():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  kept = lambda x: np.asarray(x[0] > jnp.finfo(x.dtype).min)
  assert kept(decoding.filter_logits(logits, top_k=2)).tolist() == [
      True, True, False, False]
  assert kept(decoding.filter_logits(logits, top_p=0.7)).tolist() == [
      True, True, False, False]
  assert kept(decoding.filter_logits(logits, top_p=0.4)).tolist() == [
      True, False, False, False]


def _bigram_step(params, tokens, carry):
  """A toy decoder: the next-token logits are a row of a table."""
  return params[tokens], carry


def test_greedy_generation_follows_the_argmax_chain():
  table = jnp.eye(5)[jnp.array([1, 2, 3, 4, 0])] * 10.0  # t -> t+1 mod 5
  out = decoding.generate(_bigram_step, table, jnp.array([[2, 3]]), (),
                          jax.random.PRNGKey(0), num_tokens=6)
  assert out.tolist() == [[4, 0, 1, 2, 3, 4]]


def test_sampling_with_top_k_1_is_greedy_and_temperature_spreads():
  table = jnp.log(jnp.full((4, 4), 0.1) + jnp.eye(4)[jnp.array([1, 2, 3, 0])])
  greedy = decoding.generate(_bigram_step, table, jnp.array([[0]]), (),
                             jax.random.PRNGKey(0), num_tokens=8)
  top1 = decoding.generate(_bigram_step, table, jnp.array([[0]]), (),
                           jax.random.PRNGKey(1), num_tokens=8,
                           temperature=2.0, top_k=1)
  assert top1.tolist() == greedy.tolist()
  hot = decoding.generate(_bigram_step, table, jnp.array([[0]] * 64), (),
                          jax.random.PRNGKey(2), num_tokens=8,
                          temperature=5.0)
  assert len(np.unique(np.asarray(hot))) == 4


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'lru'])
def test_bfloat16_matmuls_stay_close_to_float32(cell):
  # Mixed precision: bfloat16 operands (8 mantissa bits, ~0.4% rounding),
  # float32 accumulation, parameters and states. The loss and every gradient
  # stay within a few percent of float32's, and the matmuls really are
  # bfloat16 ones.
  tokens = jax.random.randint(jax.random.PRNGKey(1), (4, 12), 0, 30)
  grads, losses = {}, {}
  for dtype in (None, jnp.bfloat16):
    model = models.LanguageModel(vocab_size=30, embed_size=16, cell=cell,
                                 hidden_size=32, num_layers=2,
                                 compute_dtype=dtype)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens)['params']

    def loss_fn(p, model=model):
      logits, _ = model.apply({'params': p}, tokens[:, :-1])
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, tokens[:, 1:]).mean()
    grad_fn = jax.jit(jax.value_and_grad(loss_fn))
    losses[dtype], grads[dtype] = grad_fn(params)
    hlo = grad_fn.lower(params).as_text()
    assert ('bf16' in hlo) == (dtype is not None)
  np.testing.assert_allclose(losses[jnp.bfloat16], losses[None], rtol=1e-2)
  flat32 = jax.tree_util.tree_leaves_with_path(grads[None])
  flat16 = jax.tree.leaves(grads[jnp.bfloat16])
  for (path, g32), g16 in zip(flat32, flat16):
    assert g16.dtype == jnp.float32
    scale = float(jnp.abs(g32).max())
    np.testing.assert_allclose(g16, g32, atol=0.05 * scale,
                               err_msg=jax.tree_util.keystr(path))
