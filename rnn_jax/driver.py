"""One driver for every experiment: train, evaluate and predict.

An experiment module declares only what is its own (see `Experiment`); the
driver does the rest the same way for all of them: validation, reading the
data once, the vocabularies (saved in `<workdir>/vocabs/`), the run's
metadata, the training loop, the prediction loop over evaluation batches,
cross-validation, and summary.json.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import json
import os
import shutil
import subprocess
import sys
from typing import Any, Protocol

import jax
import ml_collections
import numpy as np

from rnn_jax import configlib
from rnn_jax import distributed
from rnn_jax import training
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

VOCABS = 'vocabs'   # <workdir>/vocabs/<name>.json, for every experiment


class Experiment(Protocol):
  """What an experiment module declares.

  `FIELDS` declares its config fields (`configlib.Field`: default, meaning,
  allowed values), which `get_config()` builds, `validate` (below) checks
  and --help prints; its own `validate(config)` checks the rest.
  `make_task(config, data, workdir, vocabs=None)` returns a
  `training.Task` that also has `vocabs` (built on train when none are
  given; `data` is None in predict mode), `describe()` (a line about the
  data) and, where it predicts per example, `batches` (split -> batches
  with `eval_batches()` and `seqs`) and `predict_batch(params, batch, rng)`
  (one result per row of an evaluation batch). `PREDICTION_FILES` name
  the files `write_outputs` writes per split ('{split}_...'), which
  cross-validation concatenates over the folds; a true
  `DISPATCH_ON_CALLING_THREAD` asks launch.py, which owns its process, for
  `host.dispatch_on_calling_thread` (the driver changes no process-wide
  setting: it also runs inside a user's own process, `rnn_jax.train`).
  """
  NAME: str
  DEFAULT_PRESET: str
  PREDICTION_FILES: tuple[str, ...]
  FIELDS: dict[str, configlib.Field]

  def get_config(self) -> ml_collections.ConfigDict: ...
  def validate(self, config): ...
  def load_data(self, config) -> Any: ...
  def make_task(self, config, data, workdir: str, vocabs=None): ...
  def write_outputs(self, task, params, predictions: dict[str, list],
                    directory: str) -> dict[str, Any]: ...
  def predict(self, task, params, lines: list[str]) -> list[str]: ...


def validate(experiment, config):
  """Rejects values no code path accepts, before anything is written:
  each field's against its declaration, then what the declarations cannot
  say (fields that constrain each other)."""
  configlib.check(config, experiment.FIELDS)
  training.validate_config(config)
  experiment.validate(config)


def train(experiment, config, workdir: str) -> dict[str, Any]:
  """Trains (or resumes) and evaluates; writes the experiment's outputs and
  summary.json. With data.cv_folds > 1 and data.fold = -1, every fold is
  a run of its own in <workdir>/fold<k>, and the summary their mean."""
  validate(experiment, config)
  dc = config.data
  if dc.get('cv_folds') and dc.fold < 0:
    return _cross_validate(experiment, config, workdir)
  data = experiment.load_data(config)
  task = experiment.make_task(config, data, workdir)
  print(task.describe(), flush=True)
  training.write_config(workdir, config)
  _write_run_info(workdir, config)
  save_vocabs(workdir, task.vocabs)
  result = training.train_and_evaluate(task, config, workdir)
  coverage = getattr(task, 'coverage', None)
  return _finish(experiment, task, result['state'].params, workdir,
                 {**labels(experiment, config), **result['summary'],
                  **({} if coverage is None else
                     {'pretrained/coverage': coverage})})


def evaluate(experiment, config, workdir: str,
             step: int | None = None) -> dict[str, Any]:
  """Recomputes a checkpoint's valid and test metrics and outputs into
  <workdir>/eval_<step>/ (the training run's own files are left alone)."""
  _one_fold(config, workdir)
  params, step = training.load_params(workdir, step)
  vocabs = load_vocabs(workdir, experiment.NAME)
  task = experiment.make_task(config, experiment.load_data(config), workdir,
                              vocabs)
  final = training.evaluate_splits(task, training.make_eval_step(task), params,
                                   config.train.eval_steps)
  return _finish(experiment, task, params, evaluation_dir(workdir, step),
                 {**labels(experiment, config), 'checkpoint': step, **final})


def load(experiment, config, workdir: str, step: int | None = None):
  """(task, params, step) of a trained workdir, from it alone (no data):
  the reported checkpoint's params, or those of `step`."""
  _one_fold(config, workdir)
  vocabs = load_vocabs(workdir, experiment.NAME)
  params, step = training.load_params(workdir, step)
  return experiment.make_task(config, None, workdir, vocabs), params, step


def check_inputs(lines: list[str], source: str):
  """Prediction inputs: at least one, none empty (`source` names them)."""
  if not lines:
    raise InputError(f'{source}: no input to predict from')
  for number, line in enumerate(lines, 1):
    if not isinstance(line, str) or not line.strip():
      raise InputError(f'{source}:{number}: an empty input line')


def predict(experiment, config, workdir: str, lines: list[str],
            step: int | None = None) -> list[str]:
  """One result per input line, from the workdir alone (no data)."""
  task, params, _ = load(experiment, config, workdir, step)
  return experiment.predict(task, params, lines)


def workdir_experiment(workdir: str) -> str:
  """The experiment a trained workdir holds (from its config's preset)."""
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise InputError(f'no config.json in {workdir}: nothing trained there')
  try:
    with open(path, encoding='utf-8') as f:
      preset = json.load(f).get('preset')
  except (ValueError, AttributeError):
    raise InputError(f'{path}: not a run\'s config') from None
  if preset not in experiments.preset_names():
    raise InputError(f'{path}: preset {preset!r} names no experiment; give '
                     'the experiment')
  return experiments.get_preset(preset).EXPERIMENT


def saved_config(experiment, workdir: str, overrides: dict[str, Any]):
  """The config a trained workdir was trained with, plus `overrides` of
  anything but the model (whose shapes the checkpoint fixes), validated."""
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  saved = os.path.join(workdir, 'config.json')
  if not os.path.isfile(saved):
    raise InputError(f'no config.json in {workdir}: nothing trained there')
  model_fields = sorted(f for f in overrides if f.startswith('model.'))
  if model_fields:
    raise InputError(f'--config.{model_fields[0]}: the model comes from '
                     f'{workdir} (its checkpoints fix it)')
  base = experiment.get_config()
  try:
    with open(saved, encoding='utf-8') as f:
      fields = configlib.flatten(base.__class__(json.load(f)))
    trained = fields.get('preset')
    if (trained in experiments.preset_names()
        and experiments.get_preset(trained).EXPERIMENT != experiment.NAME):
      raise InputError(f'{workdir} holds a --experiment='
                       f'{experiments.get_preset(trained).EXPERIMENT} run, '
                       f'not {experiment.NAME}')
    base.update_from_flattened_dict(fields)
  except (ValueError, KeyError, TypeError) as e:
    raise InputError(f'{saved}: not a config of --experiment='
                     f'{experiment.NAME} ({str(e).splitlines()[0][:120]})'
                     ) from None
  config = configlib.apply_overrides(base, overrides)
  validate(experiment, config)
  return config


EXPORT = 'export'   # <workdir>/export/: serialized functions, signature


def export(experiment, config, workdir: str, step: int | None = None) -> str:
  """Writes the reported checkpoint's (or `step`'s) functions, each
  `jax.export`ed with the weights inside and the recurrent state as explicit
  inputs and outputs, to <workdir>/export/<name>.jax (`Exported.serialize()`
  bytes), with signature.json (every input and output: shape, dtype,
  meaning) and the vocabularies. Returns the folder. Loading needs only
  jax: `jax.export.deserialize(bytes).call(*inputs)` returns the tuple of
  outputs (README, Export)."""
  from jax import export as jax_export  # pylint: disable=g-import-not-at-top
  if not hasattr(experiment, 'exports'):
    raise InputError(f'--mode=export: not available for --experiment='
                     f'{experiment.NAME} yet (lm and classify export)')
  task, params, step = load(experiment, config, workdir, step)
  params = jax.tree.map(jax.numpy.asarray, params)  # constants of the export
  folder = os.path.join(workdir, EXPORT)
  tmp = folder + '.tmp'
  if os.path.isdir(tmp):
    shutil.rmtree(tmp)
  os.makedirs(os.path.join(tmp, VOCABS))
  signature = {'experiment': experiment.NAME, 'checkpoint': step,
               'jax_version': jax.__version__, 'functions': {}}
  for name, (fn, specs, described) in experiment.exports(task, params).items():
    exported = jax_export.export(jax.jit(fn))(*specs)
    with open(os.path.join(tmp, f'{name}.jax'), 'wb') as f:
      f.write(exported.serialize())
    signature['functions'][name] = described
  with open(os.path.join(tmp, 'signature.json'), 'w', encoding='utf-8') as f:
    json.dump(signature, f, indent=2)
  for vocab in os.listdir(os.path.join(workdir, VOCABS)):
    shutil.copy(os.path.join(workdir, VOCABS, vocab),
                os.path.join(tmp, VOCABS, vocab))
  if os.path.isdir(folder):  # replaced whole, never half-written
    shutil.rmtree(folder)
  os.replace(tmp, folder)
  print(f'exported {", ".join(signature["functions"])} of step {step} to '
        f'{folder}', flush=True)
  return folder


def labels(experiment, config) -> dict[str, Any]:
  """What a summary says it is: the experiment, the preset it started from
  (none for the user's own files) and the data."""
  dc = config.data
  own = dc.name == 'files'
  return {'experiment': experiment.NAME,
          'preset': None if own else config.preset, 'data': dc.name,
          **({'data_files': {s: dc[s] for s in ('train', 'valid', 'test')
                             if dc[s]}} if own else {})}


def _finish(experiment, task, params, directory: str,
            summary: dict[str, Any]) -> dict[str, Any]:
  """The valid and test predictions, handed to the experiment's writers,
  then summary.json."""
  predictions = {}
  if hasattr(task, 'predict_batch'):
    predictions = {split: predict_split(task, params, split,
                                        task.config.train.eval_steps,
                                        task.config.seed)
                   for split in ('valid', 'test')}
  summary.update(experiment.write_outputs(task, params, predictions,
                                          directory))
  return training.write_summary(directory, summary)


def predict_split(task, params, split: str, max_batches: int = 0,
                  seed: int = 0) -> list:
  """`task.predict_batch` of every example of `split`, in the split's order
  (None past the first `max_batches` evaluation batches, when > 0); batch i
  gets the key fold_in(PRNGKey(seed), i)."""
  batches = task.batches[split]
  out: list = [None] * len(batches.seqs)
  rng = jax.random.PRNGKey(seed)
  for i, batch in enumerate(itertools.islice(batches.eval_batches(),
                                             max_batches or None)):
    rows = task.predict_batch(params, batch, jax.random.fold_in(rng, i))
    for row, index in enumerate(batch['index']):
      if index >= 0:
        out[index] = rows[row]
  return out


# ----------------------------------------------------------------------------
# Cross-validation.


def _cross_validate(experiment, config, workdir: str) -> dict[str, Any]:
  """Every fold as its own run in <workdir>/fold<k>; the means (and
  standard deviations) of their metrics are the result, and the folds'
  test prediction files together cover the dataset once."""
  folds = config.data.cv_folds
  results = []
  for k in range(folds):
    fold_config = ml_collections.ConfigDict(config.to_dict())
    fold_config.data.fold = k
    print(f'--- fold {k + 1}/{folds}', flush=True)
    results.append(train(experiment, fold_config,
                         os.path.join(workdir, f'fold{k}')))
  training.write_config(workdir, config)
  _write_run_info(workdir, config)
  summary = {**labels(experiment, config), 'cv_folds': folds}
  for key in sorted(results[0]):
    values = [r.get(key) for r in results]
    if '/' in key and all(isinstance(v, float) for v in values):
      summary[key] = float(np.mean(values))
      summary[f'{key}_std'] = float(np.std(values))
  summary['wall_seconds'] = float(sum(r['wall_seconds'] for r in results))
  summary['folds'] = results
  for name in experiment.PREDICTION_FILES:
    name = name.format(split='test')
    with open(os.path.join(workdir, name), 'w', encoding='utf-8') as out:
      for k in range(folds):
        with open(os.path.join(workdir, f'fold{k}', name),
                  encoding='utf-8') as f:
          out.write(f.read())
  print('cross-validation over {} folds: '.format(folds) + ', '.join(
      f'{k} {summary[k]:.4f} +- {summary[k + "_std"]:.4f}'
      for k in summary if k.startswith('test/') and k + '_std' in summary),
        flush=True)
  return training.write_summary(workdir, summary)


def _one_fold(config, workdir: str):
  dc = config.data
  if dc.get('cv_folds') and dc.fold < 0:
    raise InputError(f'{workdir} holds a {dc.cv_folds}-fold '
                     'cross-validation: give one fold, --workdir='
                     f'{os.path.join(workdir, "fold0")}')


# ----------------------------------------------------------------------------
# The workdir: vocabularies, run metadata, evaluation folders.


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


def _write_run_info(workdir: str, config):
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
