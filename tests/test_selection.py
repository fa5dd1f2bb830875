"""Weight averaging (EMA, NT-ASGD), model selection on a validation metric
and early stopping."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import error_line, read_summary, run_launcher, tiny_args
from conftest import tiny_data
from rnn_jax import steps


class _Regression:
  """A least-squares task: enough of `training.Task` for the train step."""
  reset_carry_every_batch = True
  steps_per_epoch = 4

  def init_params(self, rng):
    return {'w': jax.random.normal(rng, (3,))}

  def initial_carry(self, split):
    return ()

  def loss(self, params, batch, carry, rng, train):
    err = batch['x'] @ params['w'] - batch['y']
    return jnp.mean(err ** 2), ({'loss': jnp.sum(err ** 2),
                                 'count': jnp.float32(err.size)}, carry)

  def train_batch(self, epoch, index):
    rng = np.random.default_rng(epoch * 10 + index)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    return {'x': x, 'y': (x @ np.array([1.0, -2.0, 0.5])).astype(np.float32)}


def _iterates(average, num_steps, decay=0.0, since=-1):
  """The params after each step and the final state of a run averaging
  them (NT-ASGD's average starting at step `since`)."""
  task = _Regression()
  tx = optax.sgd(0.1)
  state = steps.initial_state(task, tx, seed=0, average=average)
  step = steps.make_train_step(task, tx, optax.constant_schedule(0.1),
                                  average=average, ema_decay=decay)
  params = [np.asarray(state.params['w'])]
  for k in range(num_steps):
    if k == since:
      state = state.replace(average_since=jnp.int32(since))
    state, _ = step(state, task.train_batch(0, k))
    params.append(np.asarray(state.params['w']))
  return params, state


def test_ema_after_k_steps_equals_a_hand_computation():
  decay = 0.8
  params, state = _iterates('ema', 5, decay)
  want = params[0]
  for p in params[1:]:
    want = decay * want + (1 - decay) * p
  np.testing.assert_allclose(state.average['w'], want, rtol=1e-6)
  assert not np.allclose(want, params[-1])
  np.testing.assert_array_equal(steps.eval_params(state)['w'],
                                state.average['w'])


def test_ntasgd_averages_the_iterates_from_its_start():
  """Before it starts the average is the params; from step s on, the mean
  of the iterates of steps s, s+1, ..."""
  params, state = _iterates('ntasgd', 3)
  np.testing.assert_array_equal(state.average['w'], params[-1])
  params, state = _iterates('ntasgd', 6, since=2)
  np.testing.assert_allclose(state.average['w'], np.mean(params[2:], 0),
                             rtol=1e-6)
  _, state = _iterates('none', 2)
  assert state.average == ()
  assert steps.eval_params(state) is state.params


def _run(tmp_path, name, *overrides):
  workdir = tmp_path / name
  result = run_launcher('--experiment=classify', f'--workdir={workdir}',
                        *tiny_args('classify', tmp_path / 'data',
                                   train__max_steps=0, train__num_epochs=12,
                                   train__eval_steps=0,
                                   train__learning_rate=0.3),
                        *overrides)
  assert result.returncode == 0, result.stderr
  with open(workdir / 'metrics.jsonl') as f:
    valid = [r for r in map(json.loads, f) if 'valid/loss' in r]
  return workdir, read_summary(workdir), valid, result.stdout


def test_the_selected_checkpoint_is_the_best_and_reports_its_metrics(
    tmp_path):
  """select_by=valid/loss: the reported step is the evaluation with the
  lowest valid loss, the reported valid metrics are that evaluation's, and
  <workdir>/best holds it, which --mode=eval then evaluates. Early stopping
  ends the run `patience` evaluations after the best."""
  tiny_data(tmp_path / 'data')
  workdir, summary, valid, _ = _run(tmp_path, 'selected',
                                    '--config.train.select_by=valid/loss')
  losses = [r['valid/loss'] for r in valid]
  best = valid[int(np.argmin(losses))]
  assert summary['selected_by'] == 'valid/loss'
  assert summary['selected_step'] == best['step'] < summary['steps'], (
      'pick a run whose last step is not its best')
  assert summary['valid/loss'] == best['valid/loss']
  assert summary['valid/accuracy'] == best['valid/accuracy']
  assert sorted(p.name for p in (workdir / 'best').iterdir()) == [
      str(best['step'])]
  result = run_launcher('--experiment=classify', '--mode=eval',
                        f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  evaluated = read_summary(workdir / f'eval_{best["step"]}')
  assert evaluated['test/accuracy'] == summary['test/accuracy']

  _, stopped, valid, out = _run(
      tmp_path, 'stopped', '--config.train.select_by=valid/loss',
      '--config.train.early_stopping_patience=2')
  losses = [r['valid/loss'] for r in valid]
  assert stopped['stopped'] == 'early_stopping', out
  assert len(losses) - 1 - int(np.argmin(losses)) == 2
  assert stopped['selected_step'] == valid[int(np.argmin(losses))]['step']
  assert stopped['steps'] < summary['steps']


@pytest.mark.parametrize('field,value,message', [
    ('select_by', 'test/accuracy', 'never by test'),
    ('select_by', 'valid/bleu', 'this experiment reports valid/'),
    ('early_stopping_patience', '3', 'name the metric it watches'),
    ('average', 'swa', 'choose one of none, ema, ntasgd'),
])
def test_bad_selection_fields_are_one_line_errors(tmp_path, field, value,
                                                  message):
  line = error_line('classify', tmp_path, f'--config.train.{field}={value}')
  assert message in line and field in line, line


def test_valid_as_test_reports_the_valid_split_and_selects_on_train(tmp_path):
  """data.valid_as_test (GLUE SST-2, whose dev set is the reported split):
  the given valid split is scored as test, and selection reads a valid
  split carved off train."""
  tiny_data(tmp_path / 'data')
  dev = tmp_path / 'data' / 'dev.tsv'
  dev.write_text(''.join(f'{"ab"[i % 2]}\tword{i % 5} other{i % 2}\n'
                         for i in range(14)))
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=classify', f'--workdir={workdir}',
                        *tiny_args('classify', tmp_path / 'data',
                                   train__eval_steps=0),
                        f'--config.data.valid={dev}',
                        '--config.data.valid_as_test=true',
                        '--config.train.select_by=valid/accuracy')
  assert result.returncode == 0, result.stderr
  summary = read_summary(workdir)
  assert summary['test/num_targets'] == 14       # the dev file
  # 60 train lines: 10% test is not carved (there is one), 10% valid is.
  assert summary['valid/num_targets'] == 6
  line = error_line('classify', tmp_path, '--config.data.valid_as_test=true')
  assert 'data.valid_as_test' in line and 'no valid split' in line, line


def test_selection_by_bleu_keeps_the_evaluation_with_the_best_bleu(tmp_path):
  """BLEU, computed from decoded predictions, at every evaluation: the
  reported step is the one whose valid BLEU was highest."""
  tiny_data(tmp_path / 'data')
  result = run_launcher('--experiment=seq2seq', f'--workdir={tmp_path}/w',
                        *tiny_args('seq2seq', tmp_path / 'data',
                                   train__max_steps=0, train__eval_steps=0),
                        '--config.train.num_epochs=6',
                        '--config.train.learning_rate=0.3',
                        '--config.train.select_by=valid/bleu',
                        '--config.eval.max_examples=8')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'w' / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  bleu = [(r['step'], r['valid/bleu']) for r in records if 'valid/bleu' in r]
  assert len(bleu) == 6 and len({b for _, b in bleu}) > 1, bleu
  best = max(b for _, b in bleu)
  summary = read_summary(tmp_path / 'w')
  assert summary['selected_by'] == 'valid/bleu'
  assert summary['selected_step'] == min(s for s, b in bleu if b == best)


def test_select_by_an_evaluator_is_checked_before_training(tmp_path):
  assert 'eval.metrics' in error_line('seq2seq', tmp_path,
                                      '--config.eval.metrics=bleu,rouge')
  assert 'rouge' in error_line('seq2seq', tmp_path,
                               '--config.eval.metrics=rouge')
