"""Search sweeps: Optuna's TPE sampler over a declared space, with pruning.

A sweep module declares a space instead of a grid:

  from rnn_jax.search import Choice, LogUniform, Uniform
  BASES = {'lm': ('timemachine_rnn', {'train.num_epochs': 20})}
  SPACE = {'train.learning_rate': LogUniform(0.1, 4.0),
           'model.dropout': Uniform(0.0, 0.5),
           'model.hidden_size': Choice([128, 256, 512])}
  TRIALS = 24                    # how many trials the study holds at the end
  OBJECTIVE = 'valid/perplexity' # a valid/ metric; its direction is the
                                 # metric registry's
  PRUNER = 'median'              # optional: 'median' (the default),
                                 # 'hyperband', 'none' or an optuna pruner
  SEED = 0                       # optional: the sampler's seed

Trial i is an ordinary run in <workdir>/trial_<i>/. The study lives in
<workdir>/study.journal (Optuna's journal file storage), so any number of
processes, on any machines sharing the folder, work on one study: each
takes the next trial (or takes over a trial whose process died) under a file
lock, until the study holds TRIALS. While a trial runs, every evaluation of
OBJECTIVE in its metrics.jsonl is reported to the study, and the pruner may
stop it (SIGTERM: the run checkpoints and exits).

A trial is held, while it runs, by a lock on <workdir>/locks/trial_<i>; its
run inherits the lock, so the trial of a process that died is taken over
only once its run has ended too, and it resumes from its checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import signal
import subprocess
import time
from typing import Any

from rnn_jax import metrics as metrics_lib
from rnn_jax import sweeps
from rnn_jax.errors import InputError

STUDY = 'study.journal'
PRUNERS = ('median', 'hyperband', 'none')
_POLL_SECONDS = 1.0
_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)


def optuna():
  """The optuna module, or one line naming the extra that brings it."""
  try:
    import optuna as module  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise InputError('a search sweep needs optuna: pip install -e ".[sweeps]"'
                     ) from None
  module.logging.set_verbosity(module.logging.WARNING)
  return module


# ----------------------------------------------------------------------------
# The space.


@dataclasses.dataclass(frozen=True)
class Uniform:
  """A float drawn uniformly from [low, high]."""
  low: float
  high: float

  def check(self, field: str):
    if not self.low < self.high:
      raise InputError(f'SPACE[{field!r}]: low {self.low} must be below '
                       f'high {self.high}')

  def suggest(self, trial, field: str):
    return trial.suggest_float(field, self.low, self.high)

  def examples(self) -> list:
    return [self.low, self.high]


@dataclasses.dataclass(frozen=True)
class LogUniform(Uniform):
  """A float whose logarithm is uniform on [log low, log high]."""

  def check(self, field: str):
    super().check(field)
    if self.low <= 0:
      raise InputError(f'SPACE[{field!r}]: LogUniform needs low > 0')

  def suggest(self, trial, field: str):
    return trial.suggest_float(field, self.low, self.high, log=True)


@dataclasses.dataclass(frozen=True)
class IntUniform(Uniform):
  """An integer drawn uniformly from low..high (both included)."""
  low: int
  high: int

  def check(self, field: str):
    super().check(field)
    if not all(isinstance(v, int) for v in (self.low, self.high)):
      raise InputError(f'SPACE[{field!r}]: IntUniform takes integers')

  def suggest(self, trial, field: str):
    return trial.suggest_int(field, self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Choice:
  """One of `values` (numbers, strings or booleans)."""
  values: tuple

  def __init__(self, values):
    object.__setattr__(self, 'values', tuple(values))

  def check(self, field: str):
    if not self.values or not all(
        isinstance(v, (bool, int, float, str)) for v in self.values):
      raise InputError(f'SPACE[{field!r}]: Choice takes a non-empty list of '
                       'numbers, strings or booleans')

  def suggest(self, trial, field: str):
    return trial.suggest_categorical(field, list(self.values))

  def examples(self) -> list:
    return list(self.values)


@dataclasses.dataclass(frozen=True)
class Search:
  """A sweep module's search, checked."""
  space: dict[str, Any]
  trials: int
  objective: str
  pruner: Any = 'median'
  seed: int = 0

  @property
  def direction(self) -> str:
    return ('maximize' if metrics_lib.higher_is_better(self.objective)
            else 'minimize')

  def describe(self) -> dict:
    """What a workdir's study was made for (search.json)."""
    return {'space': {f: repr(d) for f, d in self.space.items()},
            'objective': self.objective, 'seed': self.seed}


def declared(module, where: str) -> Search | None:
  """The module's search (None where it declares a grid or zip)."""
  space = getattr(module, 'SPACE', None)
  if space is None:
    return None
  if getattr(module, 'GRID', None) or getattr(module, 'ZIP', None):
    raise InputError(f'{where}: declare SPACE or GRID/ZIP, not both')
  if not isinstance(space, dict) or not space:
    raise InputError(f'{where}: SPACE must be a non-empty dict of field -> '
                     'Uniform, LogUniform, IntUniform or Choice')
  for field, dist in space.items():
    if not isinstance(dist, (Uniform, Choice)):
      raise InputError(f'{where}: SPACE[{field!r}] is {dist!r}; use Uniform, '
                       'LogUniform, IntUniform or Choice (rnn_jax.search)')
    dist.check(field)
  trials = getattr(module, 'TRIALS', None)
  if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
    raise InputError(f'{where}: TRIALS must be a positive integer')
  objective = getattr(module, 'OBJECTIVE', None)
  if not isinstance(objective, str) or not objective.startswith('valid/'):
    raise InputError(f'{where}: OBJECTIVE must name a valid/ metric (a '
                     'search never chooses on a test set)')
  pruner = getattr(module, 'PRUNER', 'median')
  if isinstance(pruner, str) and pruner not in PRUNERS:
    raise InputError(f'{where}: PRUNER {pruner!r}: choose one of '
                     f'{", ".join(PRUNERS)} or give an optuna pruner')
  seed = getattr(module, 'SEED', 0)
  if not isinstance(seed, int):
    raise InputError(f'{where}: SEED must be an integer')
  return Search(dict(space), trials, objective, pruner, seed)


def examples(search: Search) -> list[dict]:
  """Override sets that reach every end of every range (for checking each
  field's config before anything runs)."""
  longest = max(len(d.examples()) for d in search.space.values())
  return [{f: d.examples()[min(i, len(d.examples()) - 1)]
           for f, d in search.space.items()} for i in range(longest)]


# ----------------------------------------------------------------------------
# The study.


def _pruner(search: Search):
  if not isinstance(search.pruner, str):
    return search.pruner
  pruners = optuna().pruners
  return {'median': pruners.MedianPruner,
          'hyperband': pruners.HyperbandPruner,
          'none': pruners.NopPruner}[search.pruner]()


def _storage(workdir: str):
  journal = optuna().storages.journal
  path = os.path.join(workdir, STUDY)
  return optuna().storages.JournalStorage(journal.JournalFileBackend(
      path, lock_obj=journal.JournalFileOpenLock(path + '.lock')))


def check_workdir(search: Search, workdir: str):
  """Refuses a workdir whose study searched another space or objective;
  writes search.json into a new one."""
  path = os.path.join(workdir, 'search.json')
  if os.path.isfile(path):
    with open(path) as f:
      before = json.load(f)
    if before != search.describe():
      changed = sorted(k for k in before if before[k] != search.describe()
                       .get(k))
      raise InputError(f'{workdir} holds a search of another '
                       f'{" and ".join(changed) or "kind"}; give a new '
                       '--workdir (or restore the sweep as it was)')
    return
  os.makedirs(workdir, exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(search.describe(), f, indent=1)
  os.replace(path + '.tmp', path)


def open_study(search: Search, workdir: str):
  return optuna().create_study(
      storage=_storage(workdir), study_name='search', load_if_exists=True,
      direction=search.direction, pruner=_pruner(search))


def trial_name(number: int) -> str:
  return f'trial_{number:03d}'


@contextlib.contextmanager
def _ask_lock(workdir: str):
  lock = optuna().storages.journal.JournalFileOpenLock(
      os.path.join(workdir, 'ask.lock'))
  while not lock.acquire():
    time.sleep(0.05)
  try:
    yield
  finally:
    lock.release()


def _hold(workdir: str, number: int) -> int | None:
  """An open descriptor holding trial `number`'s lock, or None if a live
  process (a worker or the run it started) holds it."""
  folder = os.path.join(workdir, 'locks')
  os.makedirs(folder, exist_ok=True)
  fd = os.open(os.path.join(folder, trial_name(number)),
               os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(fd)
    return None
  return fd


def _next_trial(study, search: Search, workdir: str):
  """(trial, held lock): a running trial nobody holds (its process died),
  else a new one while the study holds fewer than TRIALS; None when done."""
  opt = optuna()
  with _ask_lock(workdir):
    trials = study.get_trials(deepcopy=False)
    for frozen in trials:
      if frozen.state == opt.trial.TrialState.RUNNING:
        fd = _hold(workdir, frozen.number)
        if fd is not None:
          return opt.trial.Trial(study, frozen._trial_id), fd  # pylint: disable=protected-access
    if len(trials) >= search.trials:
      return None
    # Seeded by the trial's number: the same history draws the same point
    # whichever process asks.
    study.sampler = opt.samplers.TPESampler(seed=search.seed * 100_003
                                            + len(trials))
    trial = study.ask()
    for field, dist in search.space.items():
      dist.suggest(trial, field)
    return trial, _hold(workdir, trial.number)


def records(run_dir: str) -> list[dict]:
  """The complete lines of a run's metrics.jsonl (it may be being written)."""
  path = os.path.join(run_dir, 'metrics.jsonl')
  if not os.path.isfile(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.endswith('\n')]


def summary(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, 'summary.json')
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def run_trial(plan, workdir: str) -> str | None:
  """Runs one trial of `plan`'s search to its end: complete, pruned or
  failed. Returns a line saying which, or None when the study is full."""
  opt = optuna()
  search = plan.search
  study = open_study(search, workdir)
  taken = _next_trial(study, search, workdir)
  if taken is None:
    return None
  trial, fd = taken
  start = time.time()
  try:
    name = trial_name(trial.number)
    run_dir = os.path.join(workdir, name)
    overrides = {f: sweeps.as_text(trial.params[f]) for f in search.space}
    reported = set(study.get_trials(deepcopy=False)[trial.number]
                   .intermediate_values)
    code, pruned_at = 0, None
    if summary(run_dir) is None:
      os.makedirs(run_dir, exist_ok=True)
      with open(os.path.join(run_dir, 'output.log'), 'a') as log:
        run = subprocess.Popen(plan.command(sweeps.Point(name, overrides),
                                            workdir),
                               stdout=log, stderr=subprocess.STDOUT,
                               pass_fds=(fd,))
        while pruned_at is None:
          code = run.poll()
          for record in records(run_dir):
            value, step = record.get(search.objective), record.get('step')
            if step in reported or value is None or not math.isfinite(value):
              continue
            reported.add(step)
            trial.report(value, step)
            if trial.should_prune():
              pruned_at = step
              break
          if code is not None:
            break
          try:  # back as soon as the run ends, else after a poll's time
            run.wait(timeout=_POLL_SECONDS)
          except subprocess.TimeoutExpired:
            pass
        if pruned_at is not None:
          run.terminate()
          code = run.wait()
    seconds = time.time() - start
    if pruned_at is None and (code < 0 or code - 128 in _INTERRUPTS):
      # Interrupted from outside (Ctrl-C, preemption): the trial stays
      # running, for the next process to take over once this one is gone.
      return f'{name}: interrupted (exit {code}); a rerun takes it over'
    if pruned_at is not None:
      study.tell(trial.number, state=opt.trial.TrialState.PRUNED)
      return f'{name}: pruned at step {pruned_at} after {seconds:.0f} s'
    result = summary(run_dir) or {}
    value = result.get(search.objective)
    if (code == 0 and not result.get('stopped') and value is not None
        and math.isfinite(value)):
      study.tell(trial.number, value)
      return f'{name}: {search.objective} {value:.4g} in {seconds:.0f} s'
    study.tell(trial.number, state=opt.trial.TrialState.FAIL)
    return (f'{name}: failed (exit {code}; see {run_dir}/output.log) after '
            f'{seconds:.0f} s')
  finally:
    os.close(fd)


def finished(search: Search, workdir: str) -> int:
  """How many trials of the study in `workdir` have ended."""
  if not os.path.isfile(os.path.join(workdir, STUDY)):
    return 0
  return sum(t.state.is_finished()
             for t in open_study(search, workdir).get_trials(deepcopy=False))


# ----------------------------------------------------------------------------
# Results.


def rows(plan, workdir: str) -> list[dict]:
  """One row per trial: its parameters, state, summary scalars and
  objective (for a pruned trial, the last value reported)."""
  out = []
  trials = open_study(plan.search, workdir).get_trials(deepcopy=False)
  for frozen in trials:
    name = trial_name(frozen.number)
    row = {'run': name,
           **frozen.params,
           'status': frozen.state.name.lower()}
    for key, value in (summary(os.path.join(workdir, name)) or {}).items():
      if isinstance(value, (int, float)) or value is None:
        row[key] = value
    if frozen.intermediate_values:
      last = max(frozen.intermediate_values)
      row.setdefault(plan.search.objective, frozen.intermediate_values[last])
      row['last_reported_step'] = last
    out.append(row)
  return out


def best_line(plan, rows_: list[dict]) -> str:
  """'best: trial_007 (valid/perplexity 5.43)' among complete trials."""
  objective = plan.search.objective
  done = [r for r in rows_ if r['status'] == 'complete']
  if not done:
    return 'best: none complete yet'
  pick = max if metrics_lib.higher_is_better(objective) else min
  best = pick(done, key=lambda r: r[objective])
  params = ', '.join(f'{f}={best[f]}' for f in plan.search.space)
  return f'best: {best["run"]} ({objective} {best[objective]:.4g}; {params})'


def plot(plan, workdir: str, plots: str):
  """Optuna's optimisation history and parameter importances (PED-ANOVA,
  which needs no scikit-learn) as PNGs."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  opt = optuna()
  study = open_study(plan.search, workdir)
  complete = study.get_trials(deepcopy=False,
                              states=(opt.trial.TrialState.COMPLETE,))
  if not complete:
    return
  figures = [('optimization_history',
              lambda: opt.visualization.matplotlib.plot_optimization_history(
                  study, target_name=plan.search.objective))]
  if len(complete) < 2:
    print('param_importances.png not drawn: fewer than two complete trials')
  else:
    figures.append((
        'param_importances',
        lambda: opt.visualization.matplotlib.plot_param_importances(
            study, target_name=plan.search.objective,
            evaluator=opt.importance.PedAnovaImportanceEvaluator())))
  import warnings  # pylint: disable=g-import-not-at-top
  for name, draw in figures:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # Optuna's experimental-API notices
      try:
        ax = draw()
      except (ValueError, RuntimeError) as e:  # too few distinct trials
        print(f'{name}.png not drawn: {e}')
        continue
    if name == 'optimization_history' and not metrics_lib.higher_is_better(
        plan.search.objective):
      ax.set_yscale('log')  # a diverged trial's perplexity hides the rest
    fig = ax.figure
    fig.set_size_inches(7, 4.5)
    fig.tight_layout()
    fig.savefig(os.path.join(plots, f'{name}.png'), dpi=100)
    plt.close(fig)
