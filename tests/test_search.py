"""Search sweeps (Optuna) and the sweep launchers (submitit): a study that
survives being killed, pruning, the SLURM submission, bad declarations."""

import csv
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_launcher
from rnn_jax import experiments
from rnn_jax import search
from rnn_jax import sweeps
from rnn_jax.errors import InputError

optuna = pytest.importorskip('optuna', reason='pip install -e ".[sweeps]"')

GOOD_LR, BAD_LR = 0.02, 1e-7
# A tiny character LM: about 4 steps an epoch, evaluated after each of 4.
TINY_LM = {'data.name': 'files', 'data.batch_size': 8, 'data.num_steps': 16,
           'data.eval_batch_size': 2, 'model.hidden_size': 16,
           'train.optimizer': 'adam', 'train.num_epochs': 4,
           'train.eval_every_epochs': 1, 'train.log_every_steps': 1000}


SPACE = (f"{{'train.learning_rate': Choice([{GOOD_LR}, {BAD_LR}]), "
         "'model.embed_size': IntUniform(4, 12)}")


def _write_search(tmp_path, trials, seed, space=SPACE,
                  objective='valid/perplexity'):
  text = tmp_path / 'text.txt'
  text.write_text('\n'.join(['the quick brown fox jumps over the lazy dog',
                             'pack my box with five dozen liquor jugs'] * 16)
                  + '\n')
  sweep = tmp_path / 'search.py'
  sweep.write_text(
      'import optuna\n'
      'from rnn_jax.search import Choice, IntUniform, Uniform\n'
      f"BASES = {{'lm': (None, {{**{TINY_LM!r}, 'data.train': {str(text)!r}}})}}\n"
      f'SPACE = {space}\nTRIALS = {trials}\nSEED = {seed}\n'
      f'OBJECTIVE = {objective!r}\n'
      '# Prune from the first complete trial on: the test needs few trials.\n'
      'PRUNER = optuna.pruners.MedianPruner(n_startup_trials=1)\n')
  return sweep


def _trials(workdir):
  if not os.path.isfile(os.path.join(workdir, search.STUDY)):
    return []
  storage = optuna.storages.JournalStorage(
      optuna.storages.journal.JournalFileBackend(
          os.path.join(workdir, search.STUDY)))
  return optuna.load_study(study_name='search', storage=storage).get_trials()


def test_search_killed_midway_resumes_to_exactly_its_trials_and_prunes(
    tmp_path):
  """Six trials, one of the two learning rates hopeless. The sweep is
  killed (with its runs) once three trials have ended, and run again: the
  study ends with trials 0-5, each ended once, none failed; trial 0 (at
  the good rate, seed 5) completed, and every trial at the hopeless rate
  was pruned at its first evaluation; the table has a row per trial."""
  sweep = _write_search(tmp_path, trials=6, seed=5)  # trial 0 is good
  workdir = tmp_path / 'w'
  args = [sys.executable, os.path.join(REPO, 'launch.py'), f'--sweep={sweep}',
          f'--workdir={workdir}']
  first = subprocess.Popen(args, cwd=REPO, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 600
  while sum(t.state.is_finished() for t in _trials(workdir)) < 3:
    assert first.poll() is None, first.stderr.read().decode()
    assert time.time() < deadline
    time.sleep(0.5)
  os.killpg(first.pid, signal.SIGKILL)
  first.wait()
  before = _trials(workdir)
  assert 3 <= len(before) < 6

  result = run_launcher(f'--sweep={sweep}', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  trials = _trials(workdir)
  assert [t.number for t in trials] == list(range(6))
  states = {t.number: t.state.name for t in trials}
  assert set(states.values()) <= {'COMPLETE', 'PRUNED'}, states
  bad = [t for t in trials if t.params['train.learning_rate'] == BAD_LR]
  assert bad and all(t.state.name == 'PRUNED' and len(t.intermediate_values)
                     == 1 for t in bad)  # stopped at their first evaluation
  assert trials[0].state.name == 'COMPLETE'  # every evaluation reported:
  assert len(trials[0].intermediate_values) == 4
  # The trials the rerun found running were taken over, not repeated.
  for t in before:
    assert trials[t.number].params == t.params
  assert sorted(p for p in os.listdir(workdir) if p.startswith('trial_')) == [
      f'trial_00{i}' for i in range(6)]
  with open(workdir / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert [(r['run'], r['status']) for r in rows] == [
      (f'trial_00{n}', s.lower()) for n, s in states.items()]
  best = min((t for t in trials if t.state.name == 'COMPLETE'),
             key=lambda t: t.value)
  assert f'best: trial_00{best.number}' in (workdir / 'results.md').read_text()
  for plot in ('optimization_history.png', 'curve_valid_perplexity.png'):
    assert (workdir / 'plots' / plot).is_file(), plot
  complete = sum(s == 'COMPLETE' for s in states.values())
  assert (workdir / 'plots' / 'param_importances.png').is_file() == (
      complete >= 2)  # an importance needs two complete trials to compare

  # A third run finds the study full and runs nothing.
  again = run_launcher(f'--sweep={sweep}', f'--workdir={workdir}')
  assert again.returncode == 0 and '6 of 6 trials already finished' in (
      again.stdout)
  assert len(_trials(workdir)) == 6


def test_trial_seeds_make_the_points_a_function_of_the_history(tmp_path):
  """Trial i's sampler is seeded by i: two studies with the same history
  draw the same points, whichever process asks."""
  sweep = sweeps.make_plan(
      experiments.get_sweep(str(_write_search(tmp_path, 3, seed=5)),
                            'sweeps'),
      title='s', experiment=None, preset=None, cli={}, launcher='launch.py')
  draws = []
  for name in ('a', 'b'):
    os.makedirs(tmp_path / name)
    study = search.open_study(sweep.search, str(tmp_path / name))
    points = []
    for _ in range(3):
      trial, fd = search._next_trial(study, sweep.search, str(tmp_path / name))  # pylint: disable=protected-access
      os.close(fd)
      study.tell(trial.number, 1.0 + trial.number)
      points.append(trial.params)
    draws.append(points)
  assert draws[0] == draws[1] and len({str(p) for p in draws[0]}) == 3


@pytest.mark.parametrize('declaration, culprit', [
    ({'space': "{'train.learning_rate': Uniform(1.0, 0.5)}"}, 'low 1.0'),
    ({'space': "{'train.learning_rat': Choice([0.1])}"}, 'learning_rat'),
    ({'space': "{'train.learning_rate': [0.1, 0.2]}"}, 'Uniform'),
    ({'objective': 'test/perplexity'}, 'valid/'),
    ({'space': SPACE + "\nGRID = {'train.clip_norm': [1.0]}"}, 'not both'),
])
def test_bad_search_is_one_line_and_exit_2(tmp_path, declaration, culprit):
  sweep = _write_search(tmp_path, trials=2, seed=0, **declaration)
  result = run_launcher(f'--sweep={sweep}', f'--workdir={tmp_path / "w"}')
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and culprit in lines[0], lines
  assert not (tmp_path / 'w').exists()


def test_a_workdir_of_another_search_is_refused_untouched(tmp_path):
  workdir = tmp_path / 'w'
  workdir.mkdir()
  (workdir / 'search.json').write_text('{"space": {}, "objective": '
                                       '"valid/perplexity", "seed": 0}')
  sweep = _write_search(tmp_path, trials=2, seed=0)
  result = run_launcher(f'--sweep={sweep}', f'--workdir={workdir}')
  assert result.returncode == 2
  assert 'another space' in result.stderr and result.stderr.count('\n') == 1
  assert os.listdir(workdir) == ['search.json']


def test_a_missing_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
  sweep = _write_search(tmp_path, trials=2, seed=0)
  sweep.write_text(sweep.read_text().replace('import optuna\n', '').replace(
      'PRUNER = optuna.pruners.MedianPruner(n_startup_trials=1)', ''))
  monkeypatch.setitem(sys.modules, 'optuna', None)
  result = run_launcher(f'--sweep={sweep}', f'--workdir={tmp_path / "w"}')
  assert result.returncode == 2
  assert result.stderr == ('error: a search sweep needs optuna: pip install '
                           '-e ".[sweeps]"\n')
  monkeypatch.setitem(sys.modules, 'submitit', None)
  grid = tmp_path / 'grid.py'
  grid.write_text("BASES = {'lm': ('timemachine_rnn', {})}\n"
                  "GRID = {'train.clip_norm': [1.0, 5.0]}\n")
  result = run_launcher(f'--sweep={grid}', '--sweep_launcher=slurm',
                        f'--workdir={tmp_path / "g"}')
  assert result.returncode == 2 and 'pip install -e ".[sweeps]"' in (
      result.stderr)
  assert not (tmp_path / 'g').exists() and not (tmp_path / 'w').exists()


def test_slurm_launcher_submits_one_array_asking_for_the_resources(
    tmp_path, monkeypatch):
  """submitit's submission, caught by a stand-in sbatch: one job array of a
  task per grid point (each the point's run) or per trial still to run,
  with the partition, time, GPUs, CPUs and memory asked for."""
  pytest.importorskip('submitit', reason='pip install -e ".[sweeps]"')
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  record = tmp_path / 'sbatch.txt'
  (bin_dir / 'sbatch').write_text(
      '#!/bin/sh\n'
      f'cat "$1" >> {record}\n'
      'echo "Submitted batch job 4242"\n')
  (bin_dir / 'srun').write_text('#!/bin/sh\nexit 1\n')  # never called
  for tool in ('sbatch', 'srun'):
    (bin_dir / tool).chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}:{os.environ["PATH"]}')
  grid = tmp_path / 'grid.py'
  grid.write_text("BASES = {'lm': ('timemachine_rnn', {'train.max_steps': 5})}\n"
                  "GRID = {'train.clip_norm': [1.0, 5.0, 9.0]}\n")
  workdir = tmp_path / 'w'
  result = run_launcher(
      f'--sweep={grid}', f'--workdir={workdir}', '--sweep_launcher=slurm',
      '--sweep_parallel=2', '--slurm_partition=gpu', '--slurm_time=90',
      '--slurm_gpus=1', '--slurm_cpus=8', '--slurm_mem=32')
  assert result.returncode == 0, result.stderr
  assert 'SLURM job array 4242' in result.stdout
  script = record.read_text()
  for line in ('#SBATCH --array=0-2%2', '#SBATCH --partition=gpu',
               '#SBATCH --time=90', '#SBATCH --gpus-per-node=1',
               '#SBATCH --cpus-per-task=8', '#SBATCH --mem=32GB'):
    assert line in script, (line, script)
  tasks = []
  for i in range(3):
    with open(workdir / 'submitit' / f'4242_{i}' / f'4242_{i}_submitted.pkl',
              'rb') as f:
      tasks.append(pickle.load(f).function)
  assert [t.point.name for t in tasks] == [
      'clip_norm=1.0', 'clip_norm=5.0', 'clip_norm=9.0']
  command = tasks[1].plan.command(tasks[1].point, str(workdir))
  assert '--config.train.clip_norm=5.0' in command
  assert '--config.train.max_steps=5' in command
  assert f'--workdir={workdir / "clip_norm=5.0"}' in command
  assert all(hasattr(t, 'checkpoint') for t in tasks)  # requeued on preemption
  assert os.readlink(workdir / 'clip_norm=5.0' / 'submitit.out') == str(
      workdir / 'submitit' / '4242_1' / '4242_1_0_log.out')

  # A search: one task per trial still to run.
  record.write_text('')
  sweep = _write_search(tmp_path, trials=4, seed=0)
  result = run_launcher(f'--sweep={sweep}', f'--workdir={tmp_path / "s"}',
                        '--sweep_launcher=slurm')
  assert result.returncode == 0, result.stderr
  assert '#SBATCH --array=0-3%1' in record.read_text()
  assert not _trials(tmp_path / 's')  # trials are drawn by the tasks


def test_slurm_flags_need_the_slurm_launcher(tmp_path):
  result = run_launcher('--sweep=lm_learning_rate', '--slurm_gpus=1',
                        f'--workdir={tmp_path}')
  assert result.returncode == 2 and '--sweep_launcher=slurm' in result.stderr
  with pytest.raises(InputError, match='launcher'):
    import rnn_jax  # pylint: disable=g-import-not-at-top
    rnn_jax.sweep('lm_learning_rate', str(tmp_path), launcher='slurm')


def test_a_grid_gives_the_same_table_on_local_and_submitit_local(tmp_path):
  pytest.importorskip('submitit', reason='pip install -e ".[sweeps]"')
  import rnn_jax  # pylint: disable=g-import-not-at-top
  grid = tmp_path / 'grid.py'
  grid.write_text(_write_search(tmp_path, 2, 0).read_text().split('SPACE')[0]
                  + "GRID = {'train.learning_rate': [0.02, 0.005]}\n")
  tables = []
  for launcher in ('local', 'submitit_local'):
    rnn_jax.sweep(str(grid), str(tmp_path / launcher), launcher=launcher,
                  parallel=2)
    with open(tmp_path / launcher / 'results.csv') as f:
      tables.append([{k: v for k, v in row.items() if 'seconds' not in k
                      and 'per_sec' not in k} for row in csv.DictReader(f)])
  assert tables[0] == tables[1] and len(tables[0]) == 2
  assert all(r['status'] == 'finished' for r in tables[0])
  # submitit's logs of each point, linked into its run's folder.
  for point in ('learning_rate=0.02', 'learning_rate=0.005'):
    assert (tmp_path / 'submitit_local' / point / 'submitit.out').exists()
