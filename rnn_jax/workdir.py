"""A run's folder: config.json, run_info.json, vocabularies, summaries and
reading back its checkpoints.

Everything a run writes outside the training loop's own records
(metrics.jsonl, checkpoints) goes through here: the workdir is claimed and
checked before anything is written to it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import importlib.metadata
import json
import math
import os
import re
import subprocess
import sys
from typing import Any

from absl import logging as absl_logging
import jax
import ml_collections
import orbax.checkpoint as ocp

from rnn_jax import configlib
from rnn_jax import distributed
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError


_LOCKS: dict[str, Any] = {}   # workdir -> open lock file, for the process


# Model fields that may change between a run and its resumption.
_SHAPELESS = re.compile(r'dropout|variational|unroll|remat_chunk|dtype|cudnn')


def write_config(workdir: str, config):
  """Claims `workdir` for this process and writes config.json there.

  Refuses (InputError) a workdir that another live run holds, and one whose
  checkpoints were trained with different `model.*` fields (resuming them
  would not fit; dropout rates, `variational`, `unroll`, `remat_chunk`,
  `dtype` and `cudnn` may change). Every experiment calls this before writing anything else.
  """
  os.makedirs(workdir, exist_ok=True)
  key = os.path.realpath(workdir)
  # The other processes of a multi-process run share the primary's workdir.
  if key not in _LOCKS and distributed.is_primary():
    lock = open(os.path.join(workdir, '.lock'), 'a')
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      lock.close()
      raise InputError(f'{workdir} is in use by another run') from None
    _LOCKS[key] = lock
  path = os.path.join(workdir, 'config.json')
  if os.path.isfile(path) and os.path.isdir(os.path.join(workdir,
                                                         'checkpoints')):
    with open(path) as f:
      saved = configlib.flatten(ml_collections.ConfigDict(json.load(f)))
    for field, value in configlib.flatten(config).items():
      if (field.startswith('model.') and field in saved
          and saved[field] != value and not _SHAPELESS.search(field)):
        raise InputError(
            f'{workdir} holds checkpoints of a model with {field}='
            f'{saved[field]!r}; this run asks for {value!r} (use another '
            '--workdir, or the same value to resume)')
  if distributed.is_primary():
    with open(path, 'w') as f:
      f.write(config.to_json_best_effort(indent=2))


def write_summary(workdir: str, summary: dict[str, Any]) -> dict[str, Any]:
  """summary.json, with non-finite floats (a diverged run) as null."""
  def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
      return None
    if isinstance(v, dict):
      return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
      return [clean(x) for x in v]
    return v
  summary = clean(summary)
  if distributed.is_primary():
    with open(os.path.join(workdir, 'summary.json'), 'w') as f:
      json.dump(summary, f, indent=2)
  return summary


@contextlib.contextmanager
def quiet_absl():
  """Orbax logs a failed read at ERROR before raising; the raised error
  becomes the one line the user sees."""
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)


def load_params(workdir: str, step: int | None = None):
  """`(params, step)` of a run's weights: those it reported (the checkpoint
  <workdir>/best that `train.select_by` chose, else the newest), or those of
  the given step; averaged weights where the run averaged them."""
  steps = {}
  with quiet_absl():
    for folder in ('checkpoints', 'best'):
      directory = os.path.abspath(os.path.join(workdir, folder))
      if os.path.isdir(directory):
        manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(create=False))
        steps.update(dict.fromkeys(manager.all_steps(), manager))
        if folder == 'best' and step is None and manager.all_steps():
          step = max(manager.all_steps())
    if not steps:
      raise InputError(f'no checkpoints in {workdir}: nothing trained there '
                       'yet')
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise InputError(f'--checkpoint={step}: {workdir} holds the checkpoints '
                       f'of steps {", ".join(map(str, sorted(steps)))}')
    try:
      restored = steps[step].restore(step, args=ocp.args.StandardRestore())
    except Exception as e:  # pylint: disable=broad-except
      raise InputError(f'the checkpoint of step {step} in {workdir} cannot be '
                       f'read ({type(e).__name__}: '
                       f'{str(e).splitlines()[0][:200]})') from None
  params = restored.get('average') or restored['params']
  return jax.device_get(params), step


VOCABS = 'vocabs'   # <workdir>/vocabs/<name>.json, for every experiment


def save_vocabs(workdir: str, vocabs: dict[str, vocab_lib.Vocab]):
  if not distributed.is_primary():
    return
  os.makedirs(os.path.join(workdir, VOCABS), exist_ok=True)
  for name, vocab in vocabs.items():
    vocab.save(os.path.join(workdir, VOCABS, f'{name}.json'))


class _Vocabs(dict):
  """A trained workdir's vocabularies; a missing one is an InputError."""

  def __init__(self, folder: str, vocabs):
    super().__init__(vocabs)
    self.folder = folder

  def __missing__(self, name):
    raise InputError(f'no {name}.json in {self.folder}: not the workdir of '
                     'a trained model')


def load_vocabs(workdir: str, experiment: str) -> dict[str, vocab_lib.Vocab]:
  """Every vocabulary a training run saved in `workdir`."""
  folder = os.path.join(workdir, VOCABS)
  if not os.path.isdir(folder):
    raise InputError(f'no {VOCABS}/ in {workdir}: not a trained {experiment} '
                     'workdir')
  vocabs = {}
  for name in sorted(os.listdir(folder)):
    if name.endswith('.json'):
      path = os.path.join(folder, name)
      try:
        vocabs[name[:-5]] = vocab_lib.Vocab.load(path)
      except (ValueError, KeyError, TypeError) as e:
        raise InputError(f'{path}: not a vocabulary ({e})') from None
  return _Vocabs(folder, vocabs)


def evaluation_dir(workdir: str, step: int) -> str:
  """Where `--mode=eval` of checkpoint `step` writes: <workdir>/eval_<step>,
  so that the training run's own files are never touched."""
  path = os.path.join(workdir, f'eval_{step}')
  os.makedirs(path, exist_ok=True)
  return path


def _git_commit() -> str | None:
  """The commit of the checkout rnn_jax runs from, if it is one."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if not os.path.exists(os.path.join(repo, '.git')):
    return None
  try:
    return subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'],
                          capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip() or None
  except (OSError, subprocess.SubprocessError):
    return None


def run_info() -> dict[str, Any]:
  """This process: command line, versions, backend and devices, time."""
  versions = {}
  for package in ('rnn_jax', 'jax', 'jaxlib', 'flax', 'optax'):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return {
      'start': datetime.datetime.now().astimezone().isoformat(
          timespec='seconds'),
      'command': [sys.executable] + sys.argv,
      'versions': versions,
      'git_commit': _git_commit(),
      'backend': jax.default_backend(),
      'device_kind': jax.devices()[0].device_kind,
      'process_count': jax.process_count(),
      'device_count': jax.device_count(),
  }


def write_run_info(workdir: str, config):
  """Appends this start (or resumption) and its config to run_info.json."""
  if not distributed.is_primary():
    return
  path = os.path.join(workdir, 'run_info.json')
  records = []
  if os.path.isfile(path):
    try:
      with open(path, encoding='utf-8') as f:
        records = list(json.load(f))
    except (ValueError, TypeError):
      raise InputError(f'{path}: not the JSON list of runs it should be; '
                       'move it away to start a new one') from None
  records.append({**run_info(), 'config': config.to_dict()})
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(records, f, indent=2)
  os.replace(tmp, path)
