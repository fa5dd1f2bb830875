"""Sweeps: a grid (or zip) of config overrides, each point an ordinary run.

A sweep is declared as a Python module (experiments/sweeps/NAME.py, an
ablation in experiments/ablations/NAME.py, or any file given by path):

  BASES = {EXPERIMENT: (PRESET, {'train.num_epochs': 10}), ...}
      experiment -> (preset or None, overrides every point shares); the
      experiment a registered name or the path of a user's file
  GRID = {'train.clip_norm': [0.0, 1.0, 5.0]}   every combination, or
  ZIP = {'model.cell': [...], 'model.hidden_size': [...]}   i-th with i-th
  METRICS = ('valid/perplexity', 'test/perplexity')   optional: the table's
      metric columns, the first one plotted (else the experiment's
      SWEEP_METRICS)
  CURVES = ('train/grad_norm', 'train/loss')   optional: per-step curves
      overlaid across runs (else the first metric's valid curve)
  def plot(rows, workdir): ...   optional: the sweep's own figures, drawn
      after the standard ones from the collected rows

Point i runs `launch.py ... --workdir=<workdir>/<name>` where the name is
read off its overrides (`clip_norm=1.0`). A finished point (summary.json
present) is skipped, an unfinished one resumes from its checkpoints, so
rerunning a sweep, or running its dry-run lines in any order followed by the
final collecting line, yields the same `results.csv` / `results.md` and plots.

A module may declare a search (SPACE, TRIALS, OBJECTIVE: rnn_jax/search.py)
instead of GRID or ZIP. Either runs on any launcher (rnn_jax/launchers.py).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Any, Callable

from rnn_jax import launchers
from rnn_jax import metrics as metrics_lib
from rnn_jax import search as search_lib
from rnn_jax.errors import InputError



@dataclasses.dataclass(frozen=True)
class Point:
  name: str
  overrides: dict[str, str]   # the swept fields only


@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything needed to run, print or collect a sweep."""
  title: str
  experiment: str
  preset: str | None
  shared: dict[str, str]      # the base's overrides, then the command line's
  cli: dict[str, str]         # the command line's alone
  points: list[Point]
  metrics: tuple[str, ...]
  curves: tuple[str, ...]
  launcher: str               # path of launch.py
  plot: Callable[[list[dict], str], None] | None = None
  search: search_lib.Search | None = None   # then `points` is empty

  def base_flags(self) -> list[str]:
    return [f'--experiment={self.experiment}'] + (
        [f'--preset={self.preset}'] if self.preset else [])

  def command(self, point: Point, workdir: str) -> list[str]:
    return ([sys.executable, self.launcher, *self.base_flags(),
             f'--workdir={os.path.join(workdir, point.name)}']
            + [f'--config.{k}={v}' for k, v in
               {**self.shared, **point.overrides}.items()])


def as_text(value: Any) -> str:
  """A declared value as its command-line text."""
  if isinstance(value, bool):
    return 'true' if value else 'false'
  return str(value)


def grid_points(grid: dict[str, list] | None,
                zipped: dict[str, list] | None, where: str) -> list[dict]:
  """The swept overrides of every point, in declaration order."""
  if bool(grid) == bool(zipped):
    raise InputError(f'{where}: declare exactly one of GRID and ZIP, '
                     'a non-empty dict of field -> list of values')
  table = grid or zipped
  for field, values in table.items():
    if not isinstance(values, (list, tuple)) or not values:
      raise InputError(f'{where}: {field} has no values to sweep')
  fields = list(table)
  if grid:
    combos = itertools.product(*table.values())
  else:
    lengths = {len(v) for v in table.values()}
    if len(lengths) > 1:
      raise InputError(f'{where}: ZIP lists differ in length '
                       f'({", ".join(f"{f}: {len(v)}" for f, v in table.items())})')
    combos = zip(*table.values())
  return [{f: as_text(v) for f, v in zip(fields, combo)} for combo in combos]


def run_name(overrides: dict[str, str]) -> str:
  """`clip_norm=1.0,cell=gru`: each field by its last component (the whole
  field where two share one), characters unsafe in a path replaced."""
  last = [f.rsplit('.', 1)[-1] for f in overrides]
  parts = [f'{f if last.count(l) > 1 else l}={v}'
           for f, l, v in zip(overrides, last, overrides.values())]
  return re.sub(r'[^\w.,=+-]', '_', ','.join(parts)) or 'base'


def make_plan(module, *, title: str, experiment: str | None,
              preset: str | None, cli: dict[str, str],
              launcher: str) -> Plan:
  """Resolves the sweep `module` for an experiment and checks every point's
  config before anything runs."""
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  bases = getattr(module, 'BASES', None)
  if not isinstance(bases, dict) or not bases:
    raise InputError(f'{title}: declare BASES = {{experiment: (preset, '
                     'overrides)}}')
  if experiment is None:
    if len(bases) > 1:
      raise InputError(f'{title} is declared for several experiments; pick '
                       f'one with --experiment ({", ".join(bases)})')
    experiment = next(iter(bases))
  if experiment not in bases:
    raise InputError(f'{title} is not declared for --experiment={experiment}'
                     f' (only {", ".join(bases)})')
  base_preset, base_overrides = bases[experiment]
  search = search_lib.declared(module, title)
  swept = (search_lib.examples(search) if search else
           grid_points(getattr(module, 'GRID', None),
                       getattr(module, 'ZIP', None), title))
  both = sorted(set(swept[0]) & set(cli))
  if both:
    raise InputError(f'--config.{both[0]} is swept by {title}; it cannot '
                     'also be set on the command line')
  shared = {k: as_text(v) for k, v in base_overrides.items()}
  shared.update(cli)
  names = [run_name(p) for p in swept]
  if len(set(names)) != len(names):
    raise InputError(f'{title}: two points share a run name; the swept '
                     'values repeat')
  metrics = tuple(getattr(module, 'METRICS', None)
                  or experiments.get_experiment(experiment).SWEEP_METRICS)
  plan = Plan(title=title, experiment=experiment,
              preset=preset or base_preset, shared=shared, cli=dict(cli),
              points=[] if search else [Point(n, p)
                                        for n, p in zip(names, swept)],
              metrics=(tuple(dict.fromkeys((search.objective, *metrics)))
                       if search else metrics),
              curves=tuple(getattr(module, 'CURVES', ())),
              launcher=launcher, plot=getattr(module, 'plot', None),
              search=search)
  for overrides in swept:  # a search: each end of every range
    experiments.check_run(plan.experiment, plan.preset,
                          {**shared, **{k: as_text(v)
                                        for k, v in overrides.items()}})
  return plan


# ----------------------------------------------------------------------------
# Running.


def dry_run_lines(plan: Plan, workdir: str, sweep_flags: list[str]
                  ) -> list[str]:
  """One shell line per point, then the line that collects the results.
  A search's trials are drawn as it goes: its line is the sweep itself, to
  run in as many processes (on machines sharing the workdir) as wanted."""
  workdir = os.path.abspath(workdir)
  sweep = ([sys.executable, plan.launcher, *plan.base_flags(), *sweep_flags,
            f'--workdir={workdir}']
           + [f'--config.{k}={v}' for k, v in plan.cli.items()])
  if plan.search:
    lines = [f'# each process running the next line takes trials until the '
             f'study holds {plan.search.trials}', shlex.join(sweep)]
  else:
    lines = [shlex.join(plan.command(p, workdir)) for p in plan.points]
  return lines + [shlex.join(sweep + ['--sweep_collect'])]


@dataclasses.dataclass(frozen=True)
class PointTask(launchers.Task):
  """Runs one grid point; its output goes to <run>/output.log."""
  plan: Plan
  point: Point
  workdir: str

  @property
  def log_dir(self) -> str:
    return os.path.join(self.workdir, self.point.name)

  def __call__(self) -> str:
    run_dir = os.path.join(self.workdir, self.point.name)
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir, 'output.log'), 'a') as log:
      code = subprocess.call(self.plan.command(self.point, self.workdir),
                             stdout=log, stderr=subprocess.STDOUT)
    status = 'finished' if code == 0 else f'failed (exit {code})'
    return f'{self.point.name}: {status} in {time.time() - start:.0f} s'


@dataclasses.dataclass(frozen=True)
class TrialTask(launchers.Task):
  """Runs the next trial of a search (rnn_jax/search.py)."""
  plan: Plan
  workdir: str

  def __call__(self) -> str:
    return (search_lib.run_trial(self.plan, self.workdir)
            or f'the study already holds {self.plan.search.trials} trials')


def run(plan: Plan, workdir: str, parallel: int = 1, launcher: str = 'local',
        slurm: launchers.Slurm | None = None) -> list[dict] | None:
  """Runs what is unfinished, `parallel` at a time, on `launcher`, and
  returns the collected rows; for `slurm`, submits it and returns None."""
  launchers.check(launcher)
  if plan.search:
    search_lib.optuna()
    search_lib.check_workdir(plan.search, workdir)
  os.makedirs(workdir, exist_ok=True)
  portable = dataclasses.replace(plan, plot=None)  # pickled for submitit
  if plan.search:
    done, total = search_lib.finished(plan.search, workdir), plan.search.trials
    tasks = [TrialTask(portable, workdir)] * max(0, total - done)
    unit = 'trials'
  else:
    tasks = [PointTask(portable, p, workdir) for p in plan.points
             if search_lib.summary(os.path.join(workdir, p.name)) is None]
    done, total, unit = (len(plan.points) - len(tasks), len(plan.points),
                         'runs')
  if done:
    print(f'{plan.title}: {done} of {total} {unit} already finished in '
          f'{workdir}', flush=True)
  job = launchers.execute(tasks, launcher, parallel=parallel, workdir=workdir,
                          title=plan.title, slurm=slurm)
  if launcher == 'slurm':
    if job:
      print(f'{plan.title}: submitted {len(tasks)} tasks as SLURM job array '
            f'{job} (logs in {os.path.join(workdir, "submitit")}); once they '
            'end, write the tables with --sweep_collect', flush=True)
    return None
  return collect(plan, workdir)


# ----------------------------------------------------------------------------
# Results.


def _status(summary: dict | None, run_dir: str) -> str:
  if summary is None:
    return 'unfinished' if os.path.isdir(run_dir) else 'not run'
  loss = summary.get('train/loss')
  if summary.get('stopped') or loss is None or not math.isfinite(loss):
    return 'diverged'
  return 'finished'


def collect(plan: Plan, workdir: str) -> list[dict]:
  """Writes results.csv (every scalar of each summary), results.md (the
  swept fields, status, the sweep's metrics, wall time) and the plots. A
  search's rows are its trials, with Optuna's state as the status."""
  if plan.search:
    rows = search_lib.rows(plan, workdir)
    swept = list(plan.search.space)
  else:
    rows = []
    for point in plan.points:
      run_dir = os.path.join(workdir, point.name)
      summary = search_lib.summary(run_dir)
      rows.append({'run': point.name, **point.overrides,
                   'status': _status(summary, run_dir),
                   **{k: v for k, v in (summary or {}).items()
                      if isinstance(v, (int, float)) or v is None}})
    swept = list(plan.points[0].overrides)
  fixed = ['run', *swept, 'status']
  scalars = sorted({k for row in rows for k in row} - set(fixed))
  with open(os.path.join(workdir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fixed + scalars, restval='')
    writer.writeheader()
    writer.writerows(rows)
  _write_markdown(plan, rows, swept, os.path.join(workdir, 'results.md'))
  _plot(plan, rows, [] if plan.search else swept, workdir)
  if plan.search:
    search_lib.plot(plan, workdir, os.path.join(workdir, 'plots'))
  if plan.plot is not None:
    plan.plot(rows, workdir)
  return rows


def _format(value) -> str:
  if value is None or value == '':
    return '-'
  if isinstance(value, float):
    if not math.isfinite(value):
      return str(value)
    return f'{value:.4g}' if abs(value) < 1e5 else f'{value:.3e}'
  return str(value)


def _write_markdown(plan: Plan, rows, swept, path):
  columns = (['run'] if plan.search else []) + swept + ['status'] + list(
      plan.metrics) + ['wall_seconds']
  fixed = ' '.join(f'--config.{k}={v}' for k, v in plan.shared.items())
  lines = [f'# {plan.title}', '',
           f'`{" ".join(plan.base_flags())}'
           + (f' {fixed}' if fixed else '') + '`', '']
  if plan.search:
    pruner = (plan.search.pruner if isinstance(plan.search.pruner, str)
              else type(plan.search.pruner).__name__)
    lines += [f'Search: {len(rows)} of {plan.search.trials} trials, TPE '
              f'(seed {plan.search.seed}), pruner {pruner}, '
              f'{plan.search.direction} {plan.search.objective}; '
              f'{search_lib.best_line(plan, rows)}', '']
  lines += ['| ' + ' | '.join(columns) + ' |',
           '|' + '---|' * len(columns)]
  for row in rows:
    lines.append('| ' + ' | '.join(_format(row.get(c)) for c in columns)
                 + ' |')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')


def _curve(run_dir: str, key: str) -> list[tuple[int, float]]:
  return [(r['step'], r[key]) for r in search_lib.records(run_dir)
          if r.get(key) is not None and math.isfinite(r[key])]


def _plot(plan: Plan, rows, swept, workdir):
  """plots/<metric>_vs_<field>.png for the first metric and every swept
  field, and plots/curve_<metric>.png overlaying every run's curve."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  plots = os.path.join(workdir, 'plots')
  os.makedirs(plots, exist_ok=True)
  metric = plan.metrics[0]
  safe = lambda s: re.sub(r'[^\w.=-]', '_', s)
  for field in swept:
    fig, ax = plt.subplots(figsize=(6, 4))
    others = [f for f in swept if f != field]
    groups: dict[tuple, list] = {}
    for row in rows:
      groups.setdefault(tuple(row[f] for f in others), []).append(row)
    labels = list(dict.fromkeys(row[field] for row in rows))
    numeric = all(re.fullmatch(r'-?[\d.]+(e-?\d+)?', v) for v in labels)
    for key, group in groups.items():
      xs = [float(r[field]) if numeric else labels.index(r[field])
            for r in group]
      ys = [r.get(metric) if r.get(metric) is not None else math.nan
            for r in group]
      label = ', '.join(f'{f}={v}' for f, v in zip(others, key)) or None
      ax.plot(xs, ys, marker='o', label=label)
    if not numeric:
      ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(field)
    ax.set_ylabel(metric)
    if not metrics_lib.higher_is_better(metric):
      ax.set_yscale('log')
    if others:
      ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(plan.title)
    fig.tight_layout()
    fig.savefig(os.path.join(plots, f'{safe(metric)}_vs_{safe(field)}.png'),
                dpi=100)
    plt.close(fig)
  for key in plan.curves or (metric.replace('test/', 'valid/'),):
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
      points = _curve(os.path.join(workdir, row['run']), key)
      if points:
        # A run that evaluated once is a point: a line alone draws nothing.
        ax.plot(*zip(*points), marker='o' if len(points) == 1 else None,
                label=f'{row["run"]} ({row["status"]})')
    ax.set_xlabel('step')
    ax.set_ylabel(key)
    if (not metrics_lib.higher_is_better(key)
        or key.endswith('grad_norm')):
      ax.set_yscale('log')
    if ax.get_legend_handles_labels()[0]:  # a run may not have recorded key
      ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(plan.title)
    fig.tight_layout()
    fig.savefig(os.path.join(plots, f'curve_{safe(key)}.png'), dpi=100)
    plt.close(fig)
