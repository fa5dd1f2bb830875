"""One driver for every experiment: train, evaluate, predict and export.

An experiment declares only what is its own (`rnn_jax.experiment`); the
driver does the rest the same way for all of them: validation, reading the
data once, the vocabularies (saved in `<workdir>/vocabs/`), the run's
metadata, the training loop, the prediction loop over evaluation batches,
cross-validation, and summary.json.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from typing import Any

import jax
import ml_collections
import numpy as np

from rnn_jax import configlib
from rnn_jax import evaluation
from rnn_jax import metrics
from rnn_jax import selection
from rnn_jax import steps
from rnn_jax import training
from rnn_jax import workdir as workdir_lib
from rnn_jax.data import readers
from rnn_jax.errors import InputError


# The fields of an experiment that CROSS_VALIDATES.
CV_FIELDS = {
    'data.cv_folds': configlib.Field(0, '>1: k-fold cross-validation over '
                                     'train', at_least=0),
    'data.fold': configlib.Field(-1, 'with cv_folds: -1 every fold, k only '
                                 'fold k', at_least=-1)}


def validate(experiment, config):
  """Rejects values no code path accepts, before anything is written:
  each field's against its declaration, then what the declarations cannot
  say (fields that constrain each other)."""
  configlib.check(config, experiment.FIELDS)
  training.validate_config(config)
  offered = experiment.evaluators()
  for name, evaluator in offered.items():
    metrics.register(name, evaluator.higher_is_better)
  for name in _evaluated(config):
    if name not in offered:
      raise InputError(f'config field eval.metrics: {name!r} is no metric '
                       f'of experiment {experiment.NAME} (it offers '
                       f'{", ".join(offered) or "none"})')
  dc = config.get('data') or {}
  for field in ('train', 'valid', 'test', 'normalize'):
    if (dc.get(field) not in (None, '', 'none')
        and dc.get('name', 'files') != 'files'):
      raise InputError(f'config field data.{field}: it applies to files of '
                       'your own, read with --config.data.name=files '
                       f'(data.name is {dc.name!r})')
  if experiment.CROSS_VALIDATES:
    if dc.cv_folds == 1:
      raise InputError('config field data.cv_folds=1: cross-validation needs '
                       'at least 2 folds (0 turns it off)')
    if dc.fold >= max(dc.cv_folds, 1 if dc.fold < 0 else 0):
      raise InputError(f'config field data.fold={dc.fold}: there are '
                       f'{dc.cv_folds} folds (data.cv_folds)')
  experiment.validate(config)


def _evaluated(config) -> list[str]:
  """The evaluator metrics named by eval.metrics."""
  return [n.strip() for n in config.eval.metrics.split(',') if n.strip()]


class _EvaluateMore:
  """`(params, split) -> metrics` of the evaluators that eval.metrics and
  train.select_by name (`names`), for the training loop's every
  evaluation."""

  def __init__(self, experiment, task, config, names: list[str]):
    self.experiment, self.task, self.config = experiment, task, config
    offered = experiment.evaluators()
    self.evaluators = {n: offered[n] for n in names}
    self.names = names

  def __call__(self, params, split: str) -> dict[str, float]:
    config = self.config
    predictions = predict_split(self.experiment, self.task, params, split,
                                config.train.eval_steps, config.seed,
                                config.eval.max_examples)
    return {n: float(e.fn(self.task, split, predictions))
            for n, e in self.evaluators.items()}


def _evaluate_more(experiment, task, config) -> _EvaluateMore | None:
  names = _evaluated(config)
  selected = config.train.select_by.partition('/')[2]
  if selected in experiment.evaluators() and selected not in names:
    names.append(selected)
  return _EvaluateMore(experiment, task, config, names) if names else None


def train(experiment, config, workdir: str) -> dict[str, Any]:
  """Trains (or resumes) and evaluates; writes the experiment's outputs and
  summary.json. With data.cv_folds > 1 and data.fold = -1, every fold is
  a run of its own in <workdir>/fold<k>, and the summary their mean."""
  validate(experiment, config)
  # Nothing is written to the workdir before the run is known to be its
  # own and its data read without error.
  run = workdir_lib.identity(config)
  workdir_lib.check(workdir, run)
  if _all_folds(experiment, config):
    workdir_lib.claim(workdir, run)
    return _cross_validate(experiment, config, workdir, run)
  data = experiment.load_data(config)
  task = experiment.make_task(config, data, workdir)
  print(task.describe(), flush=True)
  if config.train.select_by:
    selection.check_select_by(config.train.select_by, {
        *evaluation.metric_names(task), *experiment.evaluators()})
  workdir_lib.claim(workdir, run)
  workdir_lib.write_config(workdir, config, run)
  workdir_lib.write_run_info(workdir, config)
  workdir_lib.save_vocabs(workdir, task.vocabs)
  result = training.train_and_evaluate(
      task, config, workdir, _evaluate_more(experiment, task, config))
  return _finish(experiment, task, result['state'].params, workdir,
                 {**labels(experiment, config), **result['summary']})


def evaluate(experiment, config, workdir: str,
             step: int | None = None) -> dict[str, Any]:
  """Recomputes a checkpoint's valid and test metrics and outputs into
  <workdir>/eval_<step>/ (the training run's own files are left alone)."""
  _one_fold(experiment, config, workdir)
  params, step = workdir_lib.load_params(workdir, step)
  vocabs = workdir_lib.load_vocabs(workdir, experiment.NAME)
  task = experiment.make_task(config, experiment.load_data(config), workdir,
                              vocabs)
  final = evaluation.evaluate_splits(task, steps.make_eval_step(task),
                                     params, config.train.eval_steps)
  return _finish(experiment, task, params,
                 workdir_lib.evaluation_dir(workdir, step),
                 {**labels(experiment, config), 'checkpoint': step, **final})


def load(experiment, config, workdir: str, step: int | None = None):
  """(task, params, step) of a trained workdir, from it alone (no data):
  the reported checkpoint's params, or those of `step`."""
  _one_fold(experiment, config, workdir)
  vocabs = workdir_lib.load_vocabs(workdir, experiment.NAME)
  params, step = workdir_lib.load_params(workdir, step)
  return experiment.make_task(config, None, workdir, vocabs), params, step


def check_inputs(lines: list[str], source: str):
  """Prediction inputs: at least one, none empty (`source` names them)."""
  if not lines:
    raise InputError(f'{source}: no input to predict from')
  for number, line in enumerate(lines, 1):
    if not isinstance(line, str) or not line.strip():
      raise InputError(f'{source}:{number}: an empty input line')


def normalized(config, lines: list[str]) -> list[str]:
  """Prediction inputs in the Unicode normal form of the training files
  (data.normalize), if the run set one."""
  form = (config.get('data') or {}).get('normalize', 'none')
  return [readers.normalized(line, form) for line in lines]


def predict(experiment, config, workdir: str, lines: list[str],
            step: int | None = None) -> list[dict[str, Any]]:
  """One record per input line, from the workdir alone (no data)."""
  task, params, _ = load(experiment, config, workdir, step)
  return experiment.predict(task, params, normalized(config, lines))


def saved_config(workdir: str, overrides: dict[str, Any],
                 experiment: str | None = None):
  """(experiment, config) of a trained workdir: the experiment and config
  its config.json records, plus `overrides` of anything but the model (whose
  shapes the checkpoint fixes), validated. `experiment`, when given, must be
  the one recorded."""
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  saved = os.path.join(workdir, 'config.json')
  if not os.path.isfile(saved):
    raise InputError(f'no config.json in {workdir}: nothing trained there')
  model_fields = sorted(f for f in overrides if f.startswith('model.'))
  if model_fields:
    raise InputError(f'--config.{model_fields[0]}: the model comes from '
                     f'{workdir} (its checkpoints fix it)')
  try:
    with open(saved, encoding='utf-8') as f:
      fields = configlib.flatten(ml_collections.ConfigDict(json.load(f)))
  except (ValueError, TypeError, AttributeError):
    raise InputError(f'{saved}: not a run\'s config') from None
  recorded = fields.get('experiment')
  if not recorded:  # a config.json written before it named the experiment
    preset = fields.get('preset')
    if experiment:
      recorded = experiments.spec_of(experiment)
    elif preset in experiments.preset_names():
      recorded = experiments.get_preset(preset).EXPERIMENT
    else:
      raise InputError(f'{saved} names no experiment; give --experiment')
  given = experiment and experiments.spec_of(experiment)
  if given and given != recorded:
    # A user's file moved since training may be named where it is now.
    moved = recorded.endswith('.py') and not os.path.isfile(recorded)
    if not (moved and given.endswith('.py')):
      raise InputError(f'{workdir} holds a --experiment={recorded} run, not '
                       f'{experiment}')
    recorded = given
  elif recorded.endswith('.py') and not os.path.isfile(recorded):
    raise InputError(f'{saved}: the experiment file {recorded} is gone; give '
                     '--experiment=PATH where it is now')
  module = experiments.get_experiment(recorded)
  base = module.get_config()
  try:
    base.update_from_flattened_dict(fields)
  except (ValueError, KeyError, TypeError) as e:
    raise InputError(f'{saved}: not a config of --experiment={recorded} '
                     f'({str(e).splitlines()[0][:120]})') from None
  config = configlib.apply_overrides(base, overrides)
  validate(module, config)
  return module, config


EXPORT = 'export'   # <workdir>/export/: serialized functions, signature


def export(experiment, config, workdir: str, step: int | None = None,
           folder: str | None = None) -> str:
  """Writes the reported checkpoint's (or `step`'s) functions, each
  `jax.export`ed with the weights inside and the recurrent state as explicit
  inputs and outputs, to `folder` (default <workdir>/export)/<name>.jax
  (`Exported.serialize()` bytes), with signature.json (every input and
  output: shape, dtype, meaning; the data fields that say how text becomes
  ids; the reserved tokens' ids) and the vocabularies. Returns the folder.
  Loading needs only jax: `jax.export.deserialize(bytes).call(*inputs)`
  returns the dict of named outputs (docs/usage.md, Export)."""
  from jax import export as jax_export  # pylint: disable=g-import-not-at-top
  task, params, step = load(experiment, config, workdir, step)
  params = jax.tree.map(jax.numpy.asarray, params)  # constants of the export
  functions = experiment.exports(task, params)
  folder = folder or os.path.join(workdir, EXPORT)
  tmp = folder + '.tmp'
  if os.path.isdir(tmp):
    shutil.rmtree(tmp)
  os.makedirs(os.path.join(tmp, workdir_lib.VOCABS))
  # What a user of the files needs to make their inputs: the data fields
  # (tokenisation: level, lower-casing, ...) and the reserved tokens' ids.
  signature = {
      'experiment': experiment.NAME, 'checkpoint': step,
      'jax_version': jax.__version__,
      'data': config.data.to_dict() if 'data' in config else {},
      'reserved_tokens': {
          name: {t: i for i, t in enumerate(v.itos) if t.startswith('<')
                 and t.endswith('>')} for name, v in task.vocabs.items()},
      'functions': {}}
  for name, (fn, specs, described) in functions.items():
    exported = jax_export.export(jax.jit(fn))(*specs)
    with open(os.path.join(tmp, f'{name}.jax'), 'wb') as f:
      f.write(exported.serialize())
    signature['functions'][name] = described
  with open(os.path.join(tmp, 'signature.json'), 'w', encoding='utf-8') as f:
    json.dump(signature, f, indent=2)
  for vocab in os.listdir(os.path.join(workdir, workdir_lib.VOCABS)):
    shutil.copy(os.path.join(workdir, workdir_lib.VOCABS, vocab),
                os.path.join(tmp, workdir_lib.VOCABS, vocab))
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
  own = dc.get('name') == 'files'
  return {'experiment': experiment.NAME,
          'preset': None if own else config.preset, 'data': dc.get('name'),
          **({'data_files': {s: dc[s] for s in ('train', 'valid', 'test')
                             if dc[s]}} if own else {})}


def _finish(experiment, task, params, directory: str,
            summary: dict[str, Any]) -> dict[str, Any]:
  """The valid and test predictions, handed to the experiment's writers,
  then summary.json."""
  predictions = {}
  if experiment.predict_batch is not None:
    predictions = {split: predict_split(experiment, task, params, split,
                                        task.config.train.eval_steps,
                                        task.config.seed)
                   for split in ('valid', 'test')}
  summary.update(experiment.write_outputs(task, params, predictions,
                                          directory))
  return workdir_lib.write_summary(directory, summary)


def predict_split(experiment, task, params, split: str,
                  max_batches: int = 0, seed: int = 0,
                  max_examples: int = 0) -> list:
  """`experiment.predict_batch` of every example of `split`, in the split's
  order (None past the first `max_batches` evaluation batches, or past the
  first `max_examples` examples predicted, when > 0); batch i gets the key
  fold_in(PRNGKey(seed), i)."""
  batches = task.batches[split]
  out: list = [None] * len(batches.seqs)
  rng = jax.random.PRNGKey(seed)
  done = 0
  for i, batch in enumerate(itertools.islice(batches.eval_batches(),
                                             max_batches or None)):
    rows = experiment.predict_batch(task, params, batch,
                                    jax.random.fold_in(rng, i))
    for row, index in enumerate(batch['index']):
      if index >= 0 and not (max_examples and done == max_examples):
        out[index] = rows[row]
        done += 1
    if max_examples and done == max_examples:
      break
  return out


# ----------------------------------------------------------------------------
# Cross-validation.


def _cross_validate(experiment, config, workdir: str,
                    run: dict[str, Any]) -> dict[str, Any]:
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
  workdir_lib.write_config(workdir, config, run)
  workdir_lib.write_run_info(workdir, config)
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
  return workdir_lib.write_summary(workdir, summary)


def _all_folds(experiment, config) -> bool:
  """Whether the config asks for every fold of a cross-validation."""
  return (experiment.CROSS_VALIDATES and config.data.cv_folds > 1
          and config.data.fold < 0)


def _one_fold(experiment, config, workdir: str):
  dc = config.data
  if _all_folds(experiment, config):
    raise InputError(f'{workdir} holds a {dc.cv_folds}-fold '
                     'cross-validation: give one fold, --workdir='
                     f'{os.path.join(workdir, "fold0")}')


# ----------------------------------------------------------------------------
# The workdir: vocabularies, run metadata, evaluation folders.


