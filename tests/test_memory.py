"""The memory experiment: its generated tasks against their definitions,
checked by hand on small cases; the IRNN's initialisation; a model that
learns the adding problem."""

import jax
import numpy as np
import pytest

import json

import jax.numpy as jnp

from conftest import read_summary, run_launcher
from rnn_jax.experiments import memory
from rnn_jax import cells
from rnn_jax import gradflow


def _data(name, delay, **kwargs):
  dc = memory.Memory().get_config().data
  dc.update(name=name, delay=delay, **kwargs)
  return dc


@pytest.mark.parametrize('name', memory.TASKS)
def test_examples_are_a_pure_function_of_seed_split_and_index(name):
  dc = _data(name, 12, length=4, num_pairs=3, vocab_size=16)
  def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))
  first = memory.example(dc, 0, 'train', 3)
  assert same(first, memory.example(dc, 0, 'train', 3))
  for other in [(1, 'train', 3), (0, 'valid', 3), (0, 'train', 4)]:
    assert not same(first, memory.example(dc, *other)), other


def test_adding_target_is_the_sum_of_the_two_marked_values():
  dc = _data('adding', 10)
  for index in range(20):
    inputs, target = memory.example(dc, 0, 'test', index)
    assert inputs.shape == (10, 2) and inputs.dtype == np.float32
    values, marks = inputs[:, 0], inputs[:, 1]
    marked = np.flatnonzero(marks)
    assert set(marks) == {0.0, 1.0} and len(marked) == 2
    assert marked[0] < 5 <= marked[1]  # one in each half
    assert np.all((values >= 0) & (values < 1))
    np.testing.assert_allclose(target, values[marked].sum(), rtol=1e-6)


def test_copy_targets_are_the_first_symbols_after_the_delay():
  dc = _data('copy', 6, length=3, alphabet=4)
  for index in range(20):
    inputs, targets = memory.example(dc, 0, 'train', index)
    # 3 symbols, 5 blanks, the cue, 3 blanks; recall in the last 3 steps.
    assert len(inputs) == 6 + 2 * 3
    assert set(inputs[:3]) <= {1, 2, 3, 4}
    assert list(inputs[3:]) == [0] * 5 + [5] + [0] * 3
    assert list(targets) == [0] * 9 + list(inputs[:3])


def test_selective_copy_recalls_the_scattered_symbols_in_order():
  dc = _data('selective_copy', 8, length=3, alphabet=4)
  for index in range(20):
    inputs, targets = memory.example(dc, 0, 'train', index)
    body = inputs[:8]
    symbols = body[body > 0]
    assert len(symbols) == 3 and set(symbols) <= {1, 2, 3, 4}
    assert list(inputs[8:]) == [5] * 3
    assert list(targets) == [0] * 8 + list(symbols)


def test_mqar_answers_each_query_with_the_value_paired_with_its_key():
  """Read back by hand: the pairs at the start, then each scored step holds
  a key seen there and its target is that key's value; every other step
  is a blank with target 0."""
  dc = _data('mqar', 40, num_pairs=6, num_queries=9, vocab_size=32)
  answered = 0
  for index in range(50):
    inputs, targets = memory.example(dc, 0, 'valid', index)
    scored = memory.recall_mask(dc, targets)
    assert inputs.shape == targets.shape == (40,)
    keys, values = list(inputs[0:12:2]), list(inputs[1:12:2])
    assert len(set(keys)) == 6 and all(0 < k < 16 for k in keys)
    assert all(16 <= v < 32 for v in values)
    pairs = dict(zip(keys, values))
    for t in range(12, 40):
      if scored[t]:
        assert targets[t] == pairs[inputs[t]], (index, t)
        answered += 1
      else:
        assert inputs[t] == 0 and targets[t] == 0
    assert scored.sum() == 9 and not scored[:12].any()
  assert answered == 50 * 9


def test_induction_target_is_the_token_after_the_first_trigger():
  dc = _data('induction', 30, vocab_size=6)
  for index in range(50):
    inputs, targets = memory.example(dc, 0, 'test', index, length=30)
    trigger = np.flatnonzero(inputs == 5)
    assert len(trigger) == 2 and trigger[1] == 29 and trigger[0] < 28
    assert set(inputs) - {5} <= {1, 2, 3, 4}
    assert targets[29] == inputs[trigger[0] + 1] and not targets[:29].any()
    assert list(memory.recall_mask(dc, targets)) == [0] * 29 + [1]


def test_modular_sum_targets_are_the_running_sum_mod_m():
  dc = _data('modular_sum', 25, modulus=3)
  inputs, targets = memory.example(dc, 0, 'train', 0, length=25)
  total = 0
  for x, y in zip(inputs, targets):
    total = (total + x) % 3
    assert y == total
  assert set(inputs) <= {0, 1, 2} and memory.recall_mask(dc, targets).all()


def test_irnn_starts_from_the_identity_with_relu():
  cell = cells.make_cell('irnn', 64)
  params = cell.init(jax.random.PRNGKey(0), 16)
  np.testing.assert_array_equal(params['W_hh'], np.eye(64))
  np.testing.assert_array_equal(params['b_h'], 0.0)
  assert abs(float(params['W_xh'].std()) - 0.001) < 1e-4
  assert cell.activation == 'relu'
  # From the identity, a step adds relu(x W_xh) to a non-negative state.
  h = np.abs(np.random.default_rng(0).normal(size=(2, 64))).astype(np.float32)
  x = cell.input_projection(params, np.ones((2, 16), np.float32))
  new, _ = cell.step(params, h, x)
  np.testing.assert_allclose(new, np.maximum(h + x, 0), rtol=1e-6)


@pytest.mark.parametrize('cell', ['rnn', 'lstm'])
def test_grad_flow_is_the_gradient_of_the_loss_at_each_state(cell):
  """gradflow's dL/dh_t on the adding task against jax.grad of the same
  loss written as a plain loop that adds a perturbation to each h_t."""
  config = memory.Memory().get_config()
  config.data.update(delay=7, batch_size=4)
  config.model.update(cell=cell, hidden_size=6)
  task = memory.MemoryTask(config, None, '')
  params = task.init_params(jax.random.PRNGKey(0))
  batch = task.train_batch(0, 0)
  grads, call = gradflow.state_gradients(task, params, batch, ())
  assert call['shape'] == (7, 4, 6) and call['cell'] == cell
  c = cells.make_cell(cell, 6)
  p = params['RNNStack_0']['layer0']

  def loss(eps):
    carry = c.initial_carry(4)
    for t in range(7):
      carry, _ = c.step(p, carry, c.input_projection(p, batch['inputs'][:, t]))
      carry = c.with_hidden(carry, c.hidden(carry) + eps[t])
    out = c.hidden(carry) @ params['Dense_0']['kernel'] + params['Dense_0']['bias']
    return jnp.mean((out[:, 0] - batch['targets']) ** 2)

  want = jax.grad(loss)(jnp.zeros((7, 4, 6)))
  np.testing.assert_allclose(grads, want, atol=1e-7, rtol=1e-4)
  np.testing.assert_allclose(gradflow.norms_over_time(grads),
                             np.linalg.norm(np.asarray(want).reshape(7, -1),
                                            axis=1), rtol=1e-4)


def test_lstm_learns_the_adding_problem_and_copy_reports_recall(tmp_path):
  result = run_launcher(
      '--experiment=memory', f'--workdir={tmp_path / "adding"}',
      '--config.train.grad_flow_every_steps=100',
      '--config.data.delay=10', '--config.model.hidden_size=32',
      '--config.data.train_size=2000', '--config.train.num_epochs=8',
      '--config.train.learning_rate=0.01', '--config.data.valid_size=500',
      '--config.data.test_size=500')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path / 'adding')
  assert summary['test/mse'] < 0.02, summary  # answering 1 scores ~0.167
  with open(tmp_path / 'adding' / gradflow.FILE) as f:
    records = [json.loads(line) for line in f]
  assert [r['step'] for r in records] == [0, 100, 200, 300]
  assert all(len(r['norms']) == 10 and 'spectral_radius' not in r
             for r in records)
  assert (tmp_path / 'adding' / 'plots' / 'grad_flow.png').exists()
  result = run_launcher(
      '--experiment=memory', f'--workdir={tmp_path / "copy"}',
      '--config.data.name=copy', '--config.data.delay=5',
      '--config.model.cell=irnn', '--config.train.grad_flow_every_steps=1',
      '--config.model.hidden_size=8', '--config.train.max_steps=2')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path / 'copy')
  assert 0 <= summary['test/accuracy'] <= 1 and summary['test/loss'] > 0
  assert summary['test/num_targets'] == 1000 * (5 + 2 * 10)
  # The lecture's RNN's W_hh: the IRNN's identity has spectral radius 1.
  records = gradflow.read(tmp_path / 'copy')
  assert [r['step'] for r in records] == [0, 1, 2]
  assert records[0]['spectral_radius'] == pytest.approx(1.0, abs=1e-6)


TINY = {  # a CI-sized run of each recall task, and its chance accuracy
    'mqar': (['--config.data.delay=24', '--config.data.vocab_size=16',
              '--config.data.num_pairs=3', '--config.model.cell=gla',
              '--config.model.num_layers=2', '--config.model.block=residual',
              '--config.model.short_conv=4', '--config.data.eval_lengths=24,48'],
             1 / 8),
    'induction': (['--config.data.delay=16', '--config.data.vocab_size=8',
                   '--config.model.cell=gated_deltanet',
                   '--config.model.num_layers=2',
                   '--config.model.block=residual',
                   '--config.model.short_conv=4'], 1 / 6),
    'modular_sum': (['--config.data.delay=8', '--config.model.cell=lstm'],
                    1 / 2),
}


@pytest.mark.parametrize('name', TINY)
def test_a_tiny_model_learns_each_recall_task_above_chance(tmp_path, name):
  """200 steps; mqar also tested at twice its length, which reproduces its
  test accuracy at its own length."""
  flags, chance = TINY[name]
  result = run_launcher(
      '--experiment=memory', f'--workdir={tmp_path}',
      f'--config.data.name={name}', '--config.model.hidden_size=32',
      '--config.data.batch_size=32', '--config.data.train_size=3200',
      '--config.train.num_epochs=2', '--config.train.learning_rate=0.003',
      '--config.data.valid_size=200', '--config.data.test_size=200', *flags)
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path)
  assert summary['test/accuracy'] > chance + (1 - chance) / 4, summary
  if name == 'mqar':
    assert summary['test/accuracy@24'] == summary['test/accuracy']
    assert 0 <= summary['test/accuracy@48'] <= 1
    assert summary['state_size'] == 2 * (4 * 8 * 8 + 3 * 3 * 32)
    assert (tmp_path / 'plots' / 'extrapolation.png').exists()
