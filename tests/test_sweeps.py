"""Sweeps and ablations: points, names, runs, dry runs, results, bad input."""

import csv
import json
import os
import shutil
import subprocess

import pytest

import rnn_jax
from rnn_jax import experiments
from conftest import REPO, run_launcher, tiny_args, tiny_data
from rnn_jax import sweeps
from rnn_jax.errors import InputError


def test_grid_is_the_product_and_zip_pairs_values():
  grid = sweeps.grid_points({'a.x': [1, 2], 'b.y': [True, False]}, None, 's')
  assert grid == [{'a.x': '1', 'b.y': 'true'}, {'a.x': '1', 'b.y': 'false'},
                  {'a.x': '2', 'b.y': 'true'}, {'a.x': '2', 'b.y': 'false'}]
  zipped = sweeps.grid_points(None, {'a.x': [1, 2], 'b.y': ['p', 'q']}, 's')
  assert zipped == [{'a.x': '1', 'b.y': 'p'}, {'a.x': '2', 'b.y': 'q'}]
  for bad in (({}, None), ({'a.x': []}, None), (None, {'a.x': [1], 'b.y': [1, 2]}),
              ({'a.x': [1]}, {'b.y': [1]})):
    with pytest.raises(InputError):
      sweeps.grid_points(*bad, 's')


def test_run_names_are_readable_and_distinct():
  assert sweeps.run_name({'train.clip_norm': '1.0'}) == 'clip_norm=1.0'
  assert sweeps.run_name({'model.dropout': '0.1', 'data.dropout': '0.2'}) == (
      'model.dropout=0.1,data.dropout=0.2')
  assert sweeps.run_name({'data.train': '/a b/c'}) == 'train=_a_b_c'


def _write_sweep(path, grid, kind='GRID'):
  path.write_text(f"BASES = {{'lm': ('timemachine_rnn', {{}})}}\n{kind} = {grid!r}\n")
  return path


def _metric_columns(workdir):
  with open(workdir / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  return [{k: v for k, v in r.items() if 'seconds' not in k and 'per_sec' not in k}
          for r in rows]


def test_sweep_runs_resumes_and_its_dry_run_reproduces_the_table(
    tmp_path, monkeypatch, capsys):
  """A sweep of docs/adding-an-experiment.md's experiment, a file outside
  the checkout: its points run, a rerun skips them, and the dry run's lines
  rebuild the same table. Its runs evaluate once: their curves are marked
  points."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  figures = []
  monkeypatch.setattr(plt, 'close', figures.append)
  experiment = shutil.copy(os.path.join(REPO, 'examples', 'count_digits.py'),
                           tmp_path / 'count_digits.py')
  shared = {'train.max_steps': 4, 'data.train_size': 256,
            'data.eval_size': 64}
  sweep = tmp_path / 'sweep.py'
  sweep.write_text(f'BASES = {{{str(experiment)!r}: (None, {shared!r})}}\n'
                   "ZIP = {'model.hidden_size': [8, 16], "
                   "'model.cell': ['rnn', 'gru']}\n")
  args = [f'--sweep={sweep}']
  result = run_launcher(*args, f'--workdir={tmp_path / "a"}')
  assert result.returncode == 0, result.stderr
  rows = _metric_columns(tmp_path / 'a')
  assert [r['run'] for r in rows] == ['hidden_size=8,cell=rnn',
                                      'hidden_size=16,cell=gru']
  assert all(r['status'] == 'finished' and 0 <= float(r['valid/accuracy'])
             <= 1 for r in rows)
  for plot in ('valid_accuracy_vs_model.hidden_size.png',
               'valid_accuracy_vs_model.cell.png',
               'curve_valid_accuracy.png'):
    assert os.path.isfile(tmp_path / 'a' / 'plots' / plot), plot
  curves = [f.axes[0] for f in figures if f.axes[0].get_xlabel() == 'step']
  lines = [line for ax in curves for line in ax.get_lines()]
  assert len(lines) == 2 and all(
      len(line.get_xdata()) == 1 and line.get_marker() not in ('None', None)
      for line in lines)
  assert '| model.hidden_size | model.cell | status |' in (
      tmp_path / 'a' / 'results.md').read_text()

  # Rerun from Python: every point finished, nothing runs again.
  again = rnn_jax.sweep(str(sweep), str(tmp_path / 'a'))
  assert '2 of 2 runs already finished' in capsys.readouterr().out
  assert [(r['run'], r['valid/accuracy']) for r in again] == [
      (r['run'], float(r['valid/accuracy'])) for r in rows]

  dry = run_launcher(*args, f'--workdir={tmp_path / "b"}', '--sweep_dry_run')
  assert dry.returncode == 0, dry.stderr
  lines = dry.stdout.strip().splitlines()
  assert len(lines) == 3 and not (tmp_path / 'b').exists()
  for line in lines:
    assert subprocess.run(line, shell=True, capture_output=True).returncode == 0
  assert _metric_columns(tmp_path / 'b') == rows


@pytest.mark.parametrize('grid, culprit', [
    ({'model.hidden': [8, 16]}, 'model.hidden'),
    ({'model.hidden_size': []}, 'no values'),
    ({'model.cell': ['rnn', 'transformer']}, 'model.cell'),
])
def test_bad_sweep_is_one_line_and_exit_2(tmp_path, grid, culprit):
  sweep = _write_sweep(tmp_path / 'sweep.py', grid)
  result = run_launcher('--experiment=lm', f'--sweep={sweep}',
                        f'--workdir={tmp_path / "w"}')
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: ') and culprit in lines[0]
  assert not (tmp_path / 'w').exists()


def _every_ablation_pair():
  for name in experiments.sweep_names('ablations'):
    for experiment in experiments.get_sweep(name, 'ablations').BASES:
      yield name, experiment


def test_every_ablation_is_valid_for_every_declared_experiment():
  """Each point's config passes its experiment's checks (what the dry run
  and the runs check first)."""
  for name, experiment in _every_ablation_pair():
    plan = sweeps.make_plan(
        experiments.get_sweep(name, 'ablations'), title=name,
        experiment=experiment, preset=None, cli={}, launcher='launch.py')
    assert len(plan.points) >= 2, name
    assert len({p.name for p in plan.points}) == len(plan.points)


# One ablation end to end: the others differ from it only in their points
# and experiment, which the test above checks; what --ablation adds to
# --sweep (the named module, its fixed plots) is the same for every
# experiment, and every experiment runs through the one driver
# (test_sweep_runs_resumes_and_its_dry_run_reproduces_the_table runs lm
# sweep points end to end).
@pytest.mark.parametrize('name', ['bidirectional'])
def test_ablations_run_end_to_end_at_a_tiny_size(tmp_path, name):
  """The ablation for its first experiment, every point on tiny files."""
  module = experiments.get_sweep(name, 'ablations')
  experiment = next(iter(module.BASES))
  tiny_data(tmp_path / 'data')
  swept = set((getattr(module, 'GRID', None) or module.ZIP))
  result = run_launcher(f'--ablation={name}', f'--experiment={experiment}',
                        f'--workdir={tmp_path / "w"}',
                        *tiny_args(experiment, tmp_path / 'data', swept))
  assert result.returncode == 0, result.stderr
  rows = _metric_columns(tmp_path / 'w')
  assert rows and all(r['status'] == 'finished' for r in rows), rows
  assert os.listdir(tmp_path / 'w' / 'plots')


def test_memory_ablation_tables_solved_steps_and_plots_initial_grad_flow(
    tmp_path):
  """Its collection, on three finished points written by hand: the solved
  step is a column, and the cells' gradient flow at step 0 is drawn side by
  side per delay (the runs themselves are ordinary memory runs)."""
  plan = sweeps.make_plan(
      experiments.get_sweep('memory', 'ablations'), title='memory',
      experiment='memory', preset=None, cli={}, launcher='launch.py')
  for point, solved in zip(plan.points[:3], (None, 300, 700)):
    run_dir = tmp_path / point.name
    run_dir.mkdir()
    (run_dir / 'summary.json').write_text(json.dumps(
        {'test/mse': 0.5, 'train/loss': 0.5, 'solved_step': solved}))
    (run_dir / 'grad_flow.jsonl').write_text(json.dumps(
        {'step': 0, 'norms': [1e-3, 1e-2, 1.0]}) + '\n')
  rows = sweeps.collect(plan, str(tmp_path))
  assert [r.get('solved_step') for r in rows[:4]] == [None, 300, 700, None]
  assert [r['status'] for r in rows[2:4]] == ['finished', 'not run']
  table = (tmp_path / 'results.md').read_text()
  assert '| 300 |' in table and '| 700 |' in table
  assert (tmp_path / 'plots' / 'grad_flow_init_adding.png').exists()
  assert not (tmp_path / 'plots' / 'grad_flow_init_copy.png').exists()
