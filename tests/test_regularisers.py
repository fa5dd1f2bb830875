"""The recurrent regularisers: variational, recurrent and weight dropout,
embedding dropout of whole words, activation regularisation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import cells
from rnn_jax import layers
from rnn_jax import models
from rnn_jax import recurrence

CELL_NAMES = tuple(c for c, kind in cells.CELLS.items() if c != 'irnn'
                   and not issubclass(kind, cells.MatrixCell))
T, B, D, H = 6, 3, 4, 5
LENGTHS = np.array([6, 3, 1])


def _setup(name):
  cell = cells.make_cell(name, H)
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  params = cell.init(k1, D)
  params = {k: v + 0.1 if k.startswith('b') else v for k, v in params.items()}
  xs = jax.random.normal(k2, (T, B, D))
  state = (cell.state(cell.initial_carry(1)) if isinstance(
      cell, cells.LinearCell) else cell.hidden(cell.initial_carry(1)))
  mask = jax.random.bernoulli(k3, 0.6, (B, state.shape[-1])) / 0.6
  return cell, params, xs, mask.astype(state.dtype)


def _masked_loop(cell, params, x, m, reverse):
  """One sequence [L, D], its state masked by m [1, S] wherever the
  recurrence reads it, a Python loop over time."""
  carry = cell.initial_carry(1)
  ys = [None] * len(x)
  for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
    xp = cell.input_projection(params, x[t][None])
    if isinstance(cell, cells.LinearCell):
      a, b = cell.coefficients(params, xp)
      h = a * (m * cell.state(carry)) + b
      y = cell.outputs(params, h, xp)
      carry = cell.to_carry(h, y)
    else:
      hp = cell.recurrent_projection(params, m * cell.hidden(carry))
      carry, y = cell.gates(params, carry, xp, hp)
    ys[t] = y[0]
  return carry, jnp.stack(ys)


@pytest.mark.parametrize('name', CELL_NAMES)
@pytest.mark.parametrize('reverse', [False, True])
def test_state_mask_is_the_same_at_every_step_values_and_gradients(name,
                                                                   reverse):
  """`run(state_mask=m)` equals a loop that multiplies the state the
  recurrence reads by the same m at every step; so do its gradients (the
  hand-written backward of the recurrent scan included)."""
  cell, params, xs, m = _setup(name)
  mask = recurrence.lengths_to_mask(jnp.asarray(LENGTHS), T)
  w = jax.random.normal(jax.random.PRNGKey(7), (T, B, H))

  def loss(p, x):
    carry, ys = recurrence.run(cell, p, x, mask=mask, reverse=reverse,
                               state_mask=m)
    return jnp.sum(ys * w) + jnp.sum(jnp.cos(cell.hidden(carry)))

  def loop(p, x):
    total = 0.0
    for b, length in enumerate(LENGTHS):
      carry, ys = _masked_loop(cell, p, x[:length, b], m[b:b + 1], reverse)
      total += jnp.sum(ys * w[:length, b]) + jnp.sum(jnp.cos(
          cell.hidden(carry)))
    return total

  value, grads = jax.jit(jax.value_and_grad(loss, (0, 1)))(params, xs)
  want_value, want = jax.value_and_grad(loop, (0, 1))(params, xs)
  np.testing.assert_allclose(value, want_value, rtol=1e-5)
  chex.assert_trees_all_close(grads, want, atol=1e-4, rtol=1e-4)
  # A mask of ones is no mask.
  ones = jnp.ones_like(m)
  chex.assert_trees_all_close(
      recurrence.run(cell, params, xs, mask=mask, state_mask=ones),
      recurrence.run(cell, params, xs, mask=mask), atol=1e-6)


def test_state_mask_under_rematerialised_chunks():
  cell, params, xs, m = _setup('lstm')
  def loss(p, chunk):
    _, ys = recurrence.run(cell, p, xs, state_mask=m, remat_chunk=chunk)
    return jnp.sum(jnp.sin(ys))
  chex.assert_trees_all_close(jax.grad(loss)(params, 4),
                              jax.grad(loss)(params, 0), atol=1e-6)


def _captured_runs(monkeypatch):
  """Records the keyword arguments of every `recurrence.run` call."""
  calls = []
  original = recurrence.run
  def run(cell, params, xs, **kwargs):
    calls.append(dict(params=params, **kwargs))
    return original(cell, params, xs, **kwargs)
  monkeypatch.setattr(recurrence, 'run', run)
  return calls


def test_recurrent_dropout_draws_one_mask_per_sequence(monkeypatch):
  calls = _captured_runs(monkeypatch)
  batch, rate = 64, 0.25
  stack = layers.RNNStack(cell='gru', hidden_size=32, num_layers=2,
                          bidirectional=True, recurrent_dropout=rate,
                          time_major=True)
  xs = jnp.ones((T, batch, D))
  params = stack.init(jax.random.PRNGKey(0), xs)
  calls.clear()
  stack.apply(params, xs, train=True,
              rngs={'dropout': jax.random.PRNGKey(1)})
  assert len(calls) == 4                      # 2 layers x 2 directions
  masks = [np.asarray(c['state_mask']) for c in calls]
  for m in masks:
    assert m.shape == (batch, 32)             # no time axis: every step
    np.testing.assert_allclose(np.unique(m), [0.0, 1 / (1 - rate)], rtol=1e-6)
    assert len({row.tobytes() for row in m}) == batch  # differ by sequence
    assert abs((m == 0).mean() - rate) < 0.05
  assert not np.array_equal(masks[0], masks[1])  # and by direction
  # Not drawn at evaluation.
  calls.clear()
  stack.apply(params, xs)
  assert all(c['state_mask'] is None for c in calls)


@pytest.mark.parametrize('cudnn', [False, True])
def test_weight_dropout_masks_w_hh_once_and_zeroes_its_gradient(monkeypatch,
                                                                cudnn):
  """DropConnect: the run gets one masked W_hh (every step and sequence
  read it), W_hh / (1 - rate) where kept; the gradient of a dropped weight
  is zero. cuDNN's packed weights (its scan reference on CPU) read the same
  masked matrix."""
  calls = _captured_runs(monkeypatch)
  rate = 0.5
  stack = layers.RNNStack(cell='lstm', hidden_size=16, weight_dropout=rate,
                          cudnn=cudnn, time_major=True)
  xs = jax.random.normal(jax.random.PRNGKey(2), (T, B, D))
  params = stack.init(jax.random.PRNGKey(0), xs)
  rngs = {'dropout': jax.random.PRNGKey(3)}

  def loss(p):
    ys, _ = stack.apply(p, xs, train=True, rngs=rngs)
    return jnp.sum(jnp.sin(ys))

  grads = jax.grad(loss)(params)
  calls.clear()
  loss(params)
  w = np.asarray(params['params']['layer0']['W_hh'])
  used = np.asarray(calls[-1]['params']['W_hh'])
  dropped = used == 0
  np.testing.assert_allclose(used[~dropped], w[~dropped] / (1 - rate),
                             rtol=1e-6)
  assert abs(dropped.mean() - rate) < 0.05
  g = np.asarray(grads['params']['layer0']['W_hh'])
  np.testing.assert_array_equal(g[dropped], 0.0)
  assert (g[~dropped] != 0).mean() > 0.99
  # The same outputs as the stack without dropout given that matrix.
  plain = layers.RNNStack(cell='lstm', hidden_size=16, cudnn=cudnn,
                          time_major=True)
  masked = jax.tree.map(lambda x: x, params)
  masked['params']['layer0']['W_hh'] = jnp.asarray(used)
  np.testing.assert_allclose(stack.apply(params, xs, train=True, rngs=rngs)[0],
                             plain.apply(masked, xs)[0], atol=1e-6)


def test_variational_dropout_is_one_mask_per_sequence():
  """Between layers of position-wise cells (no W_hh), an output depends on
  its own step only: with constant inputs, one mask per sequence makes
  every step of a sequence alike and the sequences different; per-step
  masks make the steps differ."""
  xs = jnp.ones((T, 8, D))
  def outputs(variational):
    stack = layers.RNNStack(cell='rnn', hidden_size=32, num_layers=2,
                            recurrent=False, dropout=0.5,
                            variational=variational, time_major=True)
    params = stack.init(jax.random.PRNGKey(0), xs)
    return np.asarray(stack.apply(params, xs, train=True, rngs={
        'dropout': jax.random.PRNGKey(1)})[0])
  ys = outputs(True)
  np.testing.assert_allclose(ys, np.broadcast_to(ys[:1], ys.shape), atol=1e-6)
  assert len({row.tobytes() for row in ys[0]}) == 8
  ys = outputs(False)
  assert not np.allclose(ys[0], ys[1])


def _lm(**kwargs):
  return models.LanguageModel(vocab_size=40, embed_size=kwargs.pop(
      'embed_size', 16), cell='lstm', hidden_size=16, num_layers=2, **kwargs)


def _lm_loss(model, params, tokens, train, rng=jax.random.PRNGKey(5)):
  logits, _ = model.apply({'params': params}, tokens, train=train,
                          rngs={'dropout': rng} if train else {})
  return jnp.mean(jax.nn.log_softmax(logits)[..., 0])


def test_every_rate_at_zero_changes_nothing():
  """With every regulariser at 0, training mode is the evaluation model:
  the same logits and gradients, bit for bit (so today's runs are
  unchanged); `variational` alone draws nothing."""
  tokens = jax.random.randint(jax.random.PRNGKey(1), (B, T), 0, 40)
  for embed_size in (16, 0):
    model = _lm(embed_size=embed_size, variational=True)
    params = model.init(jax.random.PRNGKey(0), tokens)['params']
    train = jax.value_and_grad(lambda p: _lm_loss(model, p, tokens, True))
    evaluate = jax.value_and_grad(lambda p: _lm_loss(model, p, tokens, False))
    chex.assert_trees_all_equal(jax.jit(train)(params),
                                jax.jit(evaluate)(params))


@pytest.mark.parametrize('embed_size', [16, 0])
def test_embedding_dropout_drops_whole_words(embed_size):
  """A dropped word is zero at each of its occurrences (its embedding row,
  or its row of W_xh for one-hot inputs, gets no gradient); a kept one is
  scaled by 1 / (1 - rate)."""
  rate = 0.5
  model = _lm(embed_size=embed_size, embed_word_dropout=rate)
  tokens = jnp.tile(jnp.arange(40), (2, 3)).reshape(4, 60)  # each word 6x
  params = model.init(jax.random.PRNGKey(0), tokens)['params']
  grads = jax.grad(lambda p: _lm_loss(model, p, tokens, True))(params)
  table = (grads['embed']['embedding'] if embed_size
           else grads['stack']['layer0']['W_xh'])
  zero = np.all(np.asarray(table) == 0, axis=1)
  assert 5 < zero.sum() < 35, zero.sum()
  # The same as the model without it on inputs where those words are
  # replaced by a zero vector: checked on the embedding path.
  if embed_size:
    plain = _lm(embed_size=16)
    scaled = jax.tree.map(lambda x: x, params)
    scaled['embed']['embedding'] = jnp.where(
        zero[:, None], 0.0, params['embed']['embedding'] / (1 - rate))
    np.testing.assert_allclose(_lm_loss(model, params, tokens, True),
                               _lm_loss(plain, scaled, tokens, True),
                               rtol=1e-6)


@pytest.mark.parametrize('reduction', ['token_mean', 'sequence_sum'])
def test_activation_regularisation_adds_the_hand_computed_penalties(
    reduction):
  """AR adds alpha * mean(h_t^2) and TAR beta * mean((h_t - h_{t-1})^2) of
  the top layer's outputs per token (times the steps under sequence_sum);
  the reported loss stays the cross-entropy."""
  from rnn_jax.experiments import lm  # pylint: disable=g-import-not-at-top
  config = lm.LanguageModelling().get_config()
  config.model.update(cell='lstm', embed_size=8, hidden_size=8, num_layers=2)
  config.data.update(batch_size=2, num_steps=5, eval_batch_size=1)
  config.train.loss_reduction = reduction
  text = list('the cat sat on the mat and the dog ran off ' * 3)
  tokens = {'train': text, 'valid': text[:20], 'test': text[:20]}
  rng = jax.random.PRNGKey(3)

  def task_loss(alpha, beta):
    config.train.update(activation_reg=alpha, temporal_activation_reg=beta)
    task = lm.LMTask(config, tokens)
    params = task.init_params(jax.random.PRNGKey(0))
    batch = task.train_batch(0, 0)
    loss, (stats, _) = task.loss(params, batch, task.initial_carry('train'),
                                 rng, True)
    return task, params, batch, loss, stats

  task, params, batch, plain, stats = task_loss(0.0, 0.0)
  def top_outputs(m, tokens, carry):
    return m.stack(m.embed(tokens.T), carry)[0]                # [T, B, H]
  hs = task.model.apply({'params': params}, batch['inputs'],
                        task.initial_carry('train'), method=top_outputs)
  steps = 5 if reduction == 'sequence_sum' else 1
  # (Rates large enough for the penalty to stand above float rounding.)
  ar = 1000 * jnp.mean(hs ** 2) * steps
  tar = 3000 * jnp.mean((hs[1:] - hs[:-1]) ** 2) * steps
  for alpha, beta, penalty in ((1000, 0.0, ar), (0.0, 3000, tar),
                               (1000, 3000, ar + tar)):
    _, _, _, loss, regularised = task_loss(alpha, beta)
    np.testing.assert_allclose(loss - plain, penalty, rtol=1e-4)
    assert regularised['loss'] == stats['loss']
