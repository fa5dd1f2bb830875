"""Train, evaluate and use runs from Python: what `launch.py` does, as
functions.

    import rnn_jax
    summary = rnn_jax.train('timemachine_rnn', 'workdirs/tm',
                            {'train.max_steps': 200})
    model = rnn_jax.load('workdirs/tm')
    model.generate('time traveller', 20, temperature=0.8)
    model.predict(['the time'])      # [{'text': ...}], a record per input
    model.export('exported/')
    rnn_jax.sweep('cell', 'workdirs/cells', overrides={'train.max_steps': 50})

A run made here is the run `launch.py` makes from the same config: the same
workdir, checkpoints, resumption and summary. The API changes no
process-wide setting; launch.py, which owns its process, makes two for
speed on CPU (`rnn_jax.host`), which a script can make itself first thing.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections
import numpy as np

from rnn_jax import configlib
from rnn_jax import driver
from rnn_jax.errors import InputError


def _experiments():
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  return experiments


def _resolve(preset_or_config, experiment: str | None = None):
  """(experiment, config) of a preset name, an experiment name or file (its
  default preset, or its declared defaults) or a ConfigDict (whose
  `experiment` field names the experiment)."""
  experiments = _experiments()
  if isinstance(preset_or_config, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(preset_or_config.to_dict())
    name = experiment or config.get('experiment')
    if not name:
      raise InputError('the config names no experiment (field experiment)')
    config.experiment = experiments.spec_of(name)
    return experiments.get_experiment(name), config
  if preset_or_config is None:
    return experiments.resolve(experiment, None)
  if not isinstance(preset_or_config, str):
    raise InputError('give a preset name, an experiment name or a '
                     f'ConfigDict, not {type(preset_or_config).__name__}')
  name = preset_or_config
  if experiment is None and name not in experiments.preset_names():
    if not (name in experiments.EXPERIMENTS or name.endswith('.py')
            or '.' in name):
      raise InputError(f'unknown preset or experiment {name!r}; presets: '
                       f'{", ".join(experiments.preset_names())}; '
                       f'experiments: {", ".join(experiments.EXPERIMENTS)}')
    return experiments.resolve(name, None)
  return experiments.resolve(experiment, preset_or_config)


def get_config(preset_or_experiment: str) -> ml_collections.ConfigDict:
  """The config of a preset, or of an experiment (a name, file or module:
  its default preset, or its declared defaults), to change and hand to
  `train`."""
  return _resolve(preset_or_experiment)[1]


def train(preset_or_config, workdir: str,
          overrides: dict[str, Any] | None = None,
          experiment: str | None = None) -> dict[str, Any]:
  """Trains (or resumes, as launch.py does) and returns the run's summary.

  Args:
    preset_or_config: a preset name ('ptb_small'), an experiment (a name,
      the path of a .py file or a dotted module: its default preset, or its
      defaults) or a ConfigDict (from `get_config`); None with `experiment`.
    workdir: the run's folder.
    overrides: {'train.max_steps': 100, ...}: each field must exist and
      the value have its type (a string is parsed as on the command line).
    experiment: the experiment, where `preset_or_config` does not say it.
  """
  experiment, config = _resolve(preset_or_config, experiment)
  config = configlib.apply_overrides(config, overrides or {})
  return driver.train(experiment, config, workdir)


def evaluate(workdir: str, step: int | None = None,
             overrides: dict[str, Any] | None = None) -> dict[str, Any]:
  """Recomputes the valid and test metrics of a trained workdir's reported
  checkpoint (or of `step`), as `--mode=eval` does, and returns them."""
  experiment, config = driver.saved_config(workdir, overrides or {})
  return driver.evaluate(experiment, config, workdir, step)


def load(workdir: str, step: int | None = None,
         overrides: dict[str, Any] | None = None) -> 'Trained':
  """A trained workdir's model (its reported checkpoint, or `step`), from the
  workdir alone, ready to predict. `overrides` change any field but the
  model's ({'generate.temperature': 0.8}), as --config does with
  --mode=predict."""
  return Trained(workdir, step, overrides)


def sweep(name: str, workdir: str, *, experiment: str | None = None,
          preset: str | None = None, overrides: dict[str, Any] | None = None,
          parallel: int = 1, launcher: str = 'local'
          ) -> list[dict[str, Any]]:
  """Runs a sweep (a name in experiments/sweeps/ or ablations/, or a .py
  file declaring one) as `launch.py --sweep` does: each unfinished point (or
  trial of a search) a run in <workdir>/<run name>/, `parallel` at a time on
  `launcher` ('local' or 'submitit_local'); writes results.md, results.csv
  and the plots, and returns the table's rows."""
  from rnn_jax import sweeps  # pylint: disable=g-import-not-at-top
  experiments = _experiments()
  kind = 'ablations' if name in experiments.sweep_names('ablations') else 'sweeps'
  launch = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'launch.py')
  if not os.path.isfile(launch):
    raise InputError(f'a sweep runs its points with {launch}, which is '
                     'not there: install rnn_jax from its checkout (pip '
                     'install -e .)')
  if parallel < 1:
    raise InputError(f'parallel={parallel}: must be >= 1')
  if launcher not in ('local', 'submitit_local'):
    raise InputError(f'launcher={launcher!r}: local or submitit_local (a '
                     'SLURM sweep is submitted with launch.py)')
  plan = sweeps.make_plan(
      experiments.get_sweep(name, kind), title=f'{kind[:-1]} {name}',
      experiment=experiment, preset=preset, launcher=launch,
      cli={k: sweeps.as_text(v) for k, v in (overrides or {}).items()})
  return sweeps.run(plan, workdir, parallel, launcher)


class Trained:
  """A trained model: `predict` for every experiment; `generate`, and a
  stateful `stream` with `reset`, for language models; `export`."""

  def __init__(self, workdir: str, step: int | None = None,
               overrides: dict[str, Any] | None = None):
    self.workdir = workdir
    self.experiment, self.config = driver.saved_config(workdir,
                                                       overrides or {})
    self.task, self.params, self.step = driver.load(
        self.experiment, self.config, workdir, step)
    self._carry = None
    self._draws = 0

  def predict(self, lines: list[str]) -> list[dict[str, Any]]:
    """One record per input (what `--mode=predict` prints as a line): a
    label with its probabilities, tags per word, a translation, ..."""
    if isinstance(lines, str):
      raise InputError('predict takes a list of inputs, not one string')
    driver.check_inputs(lines, 'input')
    return self.experiment.predict(self.task, self.params,
                                   driver.normalized(self.config, lines))

  def generate(self, prefix: str, num_tokens: int | None = None, *,
               temperature: float | None = None, top_k: int | None = None,
               top_p: float | None = None, seed: int | None = None) -> str:
    """`prefix` continued by `num_tokens` tokens (default
    `generate.num_tokens`). A sampling setting left None is the config's
    (`generate.*`); top_k or top_p with temperature 0 (greedy) is an
    InputError. Without `seed`, each call draws anew (seeds config.seed,
    config.seed + 1, ...)."""
    sampling = {k: v for k, v in (('temperature', temperature),
                                  ('top_k', top_k), ('top_p', top_p))
                if v is not None}
    if sampling:
      driver.validate(self.experiment, configlib.apply_overrides(
          self.config, {f'generate.{k}': v for k, v in sampling.items()}))
    if seed is None:
      seed, self._draws = self.config.seed + self._draws, self._draws + 1
    return self.experiment.generate(self.task, self.params, prefix, seed,
                                    num_tokens=num_tokens, **sampling)

  def stream(self, text: str) -> np.ndarray:
    """Reads `text` from the state the previous call left (the initial one
    after `reset` or at first) and returns the next token's probabilities
    [vocabulary size] (`vocab` gives the tokens)."""
    probabilities, self._carry = self.experiment.read(
        self.task, self.params, text, self._carry)
    return probabilities

  def reset(self):
    """The next `stream` starts from the initial state."""
    self._carry = None

  @property
  def vocab(self) -> list[str]:
    """The tokens, in the order of `stream`'s output."""
    return self.experiment.vocabulary(self.task)

  def export(self, folder: str | None = None) -> str:
    """`--mode=export` of this checkpoint into `folder` (default
    <workdir>/export); returns the folder."""
    return driver.export(self.experiment, self.config, self.workdir,
                         self.step, folder)
