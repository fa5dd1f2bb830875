"""docs/adding-an-experiment.md's experiment, examples/count_digits.py,
copied outside the checkout: trained, evaluated and used for predictions
from its workdir alone, and loaded from Python (test_sweeps.py sweeps it)."""

import json
import os
import shutil

import rnn_jax
from conftest import REPO, read_summary, run_launcher

SHORT = ('--config.train.num_epochs=3', '--config.data.train_size=2048',
         '--config.data.eval_size=256', '--config.model.hidden_size=32')


def test_a_users_file_trains_evaluates_predicts_and_loads(tmp_path):
  path = shutil.copy(os.path.join(REPO, 'examples', 'count_digits.py'),
                     tmp_path / 'count_digits.py')
  workdir = tmp_path / 'run'
  result = run_launcher(f'--experiment={path}', f'--workdir={workdir}', *SHORT)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = read_summary(workdir)
  assert summary['experiment'] == 'count_digits'
  # It learnt to count: far above always answering the likeliest count
  # (one seven among twelve digits: 38% of the examples).
  assert summary['valid/accuracy'] > 0.8, summary
  with open(workdir / 'config.json', encoding='utf-8') as f:
    assert json.load(f)['experiment'] == str(path)

  # Evaluation and prediction need the workdir alone.
  result = run_launcher('--mode=eval', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr[-3000:]
  evaluated = read_summary(workdir / f'eval_{summary["steps"]}')
  assert evaluated['test/accuracy'] == summary['test/accuracy']
  inputs = ['700000000000', '123456789012', '777000000000']
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        stdin='\n'.join(inputs))
  assert result.returncode == 0, result.stderr[-3000:]
  printed = result.stdout.split()
  assert len(printed) == 3 and printed[:2] == ['1', '1'], printed
  model = rnn_jax.load(str(workdir))
  assert [str(r['count']) for r in model.predict(inputs)] == printed
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        '--input=12x')
  assert result.returncode == 2
  assert result.stderr.strip() == 'error: input line 1: give 12 digits'


def test_a_moved_experiment_file_is_named_where_it_is_now(tmp_path):
  path = shutil.copy(os.path.join(REPO, 'examples', 'count_digits.py'),
                     tmp_path / 'count_digits.py')
  workdir = tmp_path / 'run'
  result = run_launcher(f'--experiment={path}', f'--workdir={workdir}',
                        '--config.train.max_steps=2',
                        '--config.data.train_size=128',
                        '--config.data.eval_size=64')
  assert result.returncode == 0, result.stderr[-3000:]
  moved = shutil.move(path, tmp_path / 'elsewhere.py')
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        '--input=123456789012')
  assert result.returncode == 2
  assert 'is gone; give --experiment=PATH' in result.stderr
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        f'--experiment={moved}', '--input=123456789012')
  assert result.returncode == 0, result.stderr[-3000:]
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        '--experiment=lm', '--input=123456789012')
  assert result.returncode == 2 and 'not lm' in result.stderr
