"""Where a sweep's tasks run: `local` subprocesses (the default), submitit's
LocalExecutor (`submitit_local`) or a SLURM job array (`slurm`).

A task is a picklable callable returning a line that says how it ended (a
grid point's run, or one trial of a search). Its `checkpoint` makes submitit
requeue it on preemption or timeout; the run it starts resumes from its own
checkpoints.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import shutil
import time
from typing import Callable

from rnn_jax.errors import InputError

LAUNCHERS = ('local', 'submitit_local', 'slurm')
# submitit's LocalExecutor kills a job after its timeout (2 minutes unless
# told): a local sweep's runs take as long as they take.
_LOCAL_TIMEOUT_MIN = 7 * 24 * 60


@dataclasses.dataclass(frozen=True)
class Slurm:
  """What each task of the job array asks for."""
  partition: str | None = None
  time_min: int = 60
  gpus: int = 0
  cpus: int = 1
  mem_gb: float | None = None


class Task:
  """A unit of a sweep; subclasses define __call__, and `log_dir` where it
  is known before the task runs (submitit's logs are linked there)."""
  log_dir: str | None = None

  def checkpoint(self, *args, **kwargs):
    """submitit: on preemption or timeout, run the same task again."""
    return _submitit().helpers.DelayedSubmission(self, *args, **kwargs)


def _submitit():
  # Left to itself, submitit's first import binds its log handlers to
  # whatever sys.stdout and sys.stderr are at that moment (in a test, or
  # in rnn_jax.api's caller, a stream that may be closed later).
  os.environ.setdefault('SUBMITIT_LOG_LEVEL', 'NOCONFIG')
  try:
    import submitit  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise InputError('the submitit_local and slurm launchers need submitit: '
                     'pip install -e ".[sweeps]"') from None
  return submitit


def check(launcher: str):
  """One line if `launcher` is unknown or cannot run here."""
  if launcher not in LAUNCHERS:
    raise InputError(f'unknown launcher {launcher!r}; choose one of '
                     f'{", ".join(LAUNCHERS)}')
  if launcher != 'local':
    _submitit()
  if launcher == 'slurm' and not (shutil.which('sbatch')
                                  and shutil.which('srun')):
    raise InputError('--sweep_launcher=slurm: sbatch and srun are not on '
                     'PATH (run the sweep on a SLURM login node)')


def execute(tasks: list[Callable[[], str]], launcher: str, *, parallel: int,
            workdir: str, title: str, slurm: Slurm | None = None
            ) -> str | None:
  """Runs `tasks`, `parallel` at a time, printing each one's line as it
  ends; for `slurm`, submits them as one job array and returns its id."""
  check(launcher)
  if launcher == 'slurm':
    return _slurm(tasks, parallel, workdir, title, slurm or Slurm())
  if not tasks:
    return None
  if launcher == 'local':
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
      lines = pool.map(lambda task: task(), tasks)
      for i, line in enumerate(lines, 1):
        print(f'[{i}/{len(tasks)}] {line}', flush=True)
    return None
  submitit = _submitit()
  executor = submitit.LocalExecutor(folder=os.path.join(workdir, 'submitit'))
  executor.update_parameters(timeout_min=_LOCAL_TIMEOUT_MIN)
  pending, running, ended = list(tasks), [], 0
  while pending or running:
    while pending and len(running) < parallel:
      task = pending.pop(0)
      running.append(executor.submit(task))
      _link_logs([task], running[-1:])
    for job in [j for j in running if j.done()]:
      running.remove(job)
      ended += 1
      try:
        line = job.result()
      except Exception as e:  # pylint: disable=broad-except
        line = f'job {job.job_id} failed: {str(e).strip().splitlines()[-1]}'
      print(f'[{ended}/{len(tasks)}] {line}', flush=True)
    time.sleep(0.2)
  return None


def _slurm(tasks, parallel: int, workdir: str, title: str,
           slurm: Slurm) -> str | None:
  if not tasks:
    return None
  executor = _submitit().SlurmExecutor(
      folder=os.path.join(workdir, 'submitit', '%j'))
  asked = dict(job_name=title.replace(' ', '_'), time=slurm.time_min,
               cpus_per_task=slurm.cpus, array_parallelism=parallel)
  if slurm.partition:
    asked['partition'] = slurm.partition
  if slurm.gpus:
    asked['gpus_per_node'] = slurm.gpus
  if slurm.mem_gb:
    asked['mem'] = f'{slurm.mem_gb:g}GB'
  executor.update_parameters(**asked)
  with executor.batch():
    jobs = [executor.submit(task) for task in tasks]
  _link_logs(tasks, jobs)
  return jobs[0].job_id.split('_')[0]


def _link_logs(tasks, jobs):
  """<log_dir>/submitit.out and .err: links to each job's output."""
  for task, job in zip(tasks, jobs):
    if task.log_dir is None:
      continue
    os.makedirs(task.log_dir, exist_ok=True)
    for name, target in (('submitit.out', job.paths.stdout),
                         ('submitit.err', job.paths.stderr)):
      link = os.path.join(task.log_dir, name)
      if os.path.lexists(link):
        os.remove(link)
      os.symlink(target, link)
