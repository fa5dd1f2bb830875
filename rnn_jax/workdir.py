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


# Fields a rerun of a workdir may change: how far it trains, how often it
# logs and checkpoints, how the same computation is executed, and the text
# generated after training. Any other difference makes it another run.
_MAY_CHANGE = re.compile(
    r'(preset|train\.(max_steps|log_every_steps|checkpoint_every_steps|'
    r'checkpoints_to_keep)|model\.(unroll|remat_chunk|cudnn)|generate\..*)')
# <workdir>/run.json: what makes the run this run, the config as given
# (config.json also holds what the experiment derived from the data) and
# what its data is.
RUN = 'run.json'


def fingerprint(config) -> dict[str, Any]:
  """What a run's data is: the built-in dataset and its version, and the
  path, size and sha256 of every file a config field names (the user's
  own data, vectors, ...)."""
  from rnn_jax.data.builders import base  # pylint: disable=g-import-not-at-top
  out: dict[str, Any] = {}
  name = config.get('data', {}).get('name')
  if name and name in base.registered():
    out['dataset'] = f'{name} {base.version(name)}'
  files = {}
  for field, value in sorted(configlib.flatten(config).items()):
    if (field != 'experiment' and isinstance(value, str) and value
        and os.path.isfile(value)):
      files[field] = {'path': os.path.abspath(value),
                      'size': os.path.getsize(value),
                      'sha256': base.sha256_of(value)}
  if files:
    out['files'] = files
  return out


def identity(config) -> dict[str, Any]:
  """What run.json records: the config as given and `fingerprint`."""
  return {'config': configlib.flatten(config), 'data': fingerprint(config)}


def _read_json(path: str):
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (ValueError, UnicodeDecodeError):
    raise InputError(f'{path}: not the JSON a run writes; move the workdir '
                     'away to start a new run') from None


def claim(workdir: str, run: dict[str, Any]):
  """Creates `workdir` if needed and takes it for this process (refusing,
  InputError, one that another live run holds), then `check`s it."""
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
  check(workdir, run)


def check(workdir: str, run: dict[str, Any]):
  """Refuses (InputError, one line) a workdir that holds another run than
  `run` (`identity(config)`): a config field other than those a rerun may
  change (max_steps, logging, checkpointing, unroll, remat_chunk, cudnn,
  generation), or a data file whose size or sha256 differs, or another
  dataset. Reads only; a rerun of the same run resumes it.
  """
  path, config_path = (os.path.join(workdir, name)
                       for name in (RUN, 'config.json'))
  if os.path.isfile(path):
    recorded = _read_json(path)
  elif os.path.isfile(config_path):
    # A run recorded before run.json: the model fields its checkpoints fix.
    saved = configlib.flatten(ml_collections.ConfigDict(
        _read_json(config_path)))
    recorded = {'config': {k: v for k, v in saved.items()
                           if k.startswith('model.')}, 'data': run['data']}
  else:
    return
  saved, fields = recorded.get('config', {}), run['config']
  for field in sorted(fields, key=lambda f: f != 'experiment'):
    if (field in saved and saved[field] != fields[field]
        and not _MAY_CHANGE.fullmatch(field)):
      raise InputError(
          f'{workdir} holds a run with {field}={saved[field]!r}; this run '
          f'has {fields[field]!r} (use another --workdir, or the same value '
          'to resume it)')
  before, now = recorded.get('data', {}), run['data']
  if before.get('dataset') != now.get('dataset'):
    raise InputError(f'{workdir} holds a run on {before.get("dataset")}; '
                     f'this run reads {now.get("dataset")}')

  def content(entry):
    return entry and (entry['size'], entry['sha256'])
  before, now = before.get('files', {}), now.get('files', {})
  for field in sorted(set(before) | set(now)):
    if content(before.get(field)) != content(now.get(field)):
      changed = now.get(field, before.get(field))['path']
      raise InputError(f'{changed}: not the file that the run in {workdir} '
                       f'trained on (config field {field}: its size or '
                       'sha256 differs; use another --workdir)')


def write_config(workdir: str, config, run: dict[str, Any]):
  """config.json (the full config, with what the experiment derived) and
  run.json, once `claim` has accepted the run."""
  if not distributed.is_primary():
    return
  for name, text in (('config.json', config.to_json_best_effort(indent=2)),
                     (RUN, json.dumps(run, indent=2))):
    tmp = os.path.join(workdir, name + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)
    os.replace(tmp, os.path.join(workdir, name))


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
