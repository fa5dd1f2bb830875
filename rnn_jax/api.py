"""Train, evaluate and use runs from Python: what `launch.py` does, as
functions.

    import rnn_jax
    summary = rnn_jax.train('timemachine_rnn', 'workdirs/tm',
                            {'train.max_steps': 200})
    model = rnn_jax.load('workdirs/tm')
    model.generate('time traveller', 20)

A run made here is the run `launch.py` makes from the same config: the same
workdir, checkpoints, resumption and summary. The API changes no
process-wide setting; launch.py, which owns its process, makes two for
speed on CPU (`rnn_jax.host`), which a script can make itself first thing.
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from rnn_jax import configlib
from rnn_jax import driver
from rnn_jax.errors import InputError


def _experiments():
  from rnn_jax import experiments  # pylint: disable=g-import-not-at-top
  return experiments


def _resolve(preset_or_config) -> tuple[Any, ml_collections.ConfigDict]:
  """(experiment module, config) of a preset name, an experiment name (its
  default preset) or a ConfigDict (its `preset` field says the
  experiment)."""
  experiments = _experiments()
  if isinstance(preset_or_config, ml_collections.ConfigDict):
    config = ml_collections.ConfigDict(preset_or_config.to_dict())
    name = config.get('preset')
    if name not in experiments.preset_names():
      raise InputError(f'config field preset={name!r}: name a preset, whose '
                       'experiment the config is for')
    return (experiments.get_experiment(experiments.get_preset(name).EXPERIMENT),
            config)
  if not isinstance(preset_or_config, str):
    raise InputError('give a preset name, an experiment name or a '
                     f'ConfigDict, not {type(preset_or_config).__name__}')
  name = preset_or_config
  if name in experiments.EXPERIMENTS and name not in experiments.preset_names():
    module = experiments.get_experiment(name)
    if hasattr(module, 'run'):
      raise InputError(f'experiment {name!r} trains nothing: run it with '
                       f'launch.py --experiment={name}')
    name = module.DEFAULT_PRESET
  preset = experiments.get_preset(name)
  config = preset.get_config()
  config.preset = name
  return experiments.get_experiment(preset.EXPERIMENT), config


def get_config(preset_or_experiment: str) -> ml_collections.ConfigDict:
  """The config of a preset (or of an experiment's default preset), to
  change and hand to `train`."""
  return _resolve(preset_or_experiment)[1]


def train(preset_or_config, workdir: str,
          overrides: dict[str, Any] | None = None) -> dict[str, Any]:
  """Trains (or resumes, as launch.py does) and returns the run's summary.

  Args:
    preset_or_config: a preset name ('ptb_small'), an experiment name (its
      default preset) or a ConfigDict (from `get_config`).
    workdir: the run's folder.
    overrides: {'train.max_steps': 100, ...}: each field must exist and
      the value have its type (a string is parsed as on the command line).
  """
  experiment, config = _resolve(preset_or_config)
  config = configlib.apply_overrides(config, overrides or {})
  return driver.train(experiment, config, workdir)


def evaluate(workdir: str, step: int | None = None,
             overrides: dict[str, Any] | None = None) -> dict[str, Any]:
  """Recomputes the valid and test metrics of a trained workdir's reported
  checkpoint (or of `step`), as `--mode=eval` does, and returns them."""
  experiment = _experiments().get_experiment(driver.workdir_experiment(workdir))
  config = driver.saved_config(experiment, workdir, overrides or {})
  return driver.evaluate(experiment, config, workdir, step)


def load(workdir: str, step: int | None = None) -> 'Trained':
  """A trained workdir's model (its reported checkpoint, or `step`), from the
  workdir alone, ready to predict."""
  return Trained(workdir, step)


class Trained:
  """A trained model: `predict` for every experiment; `generate`, and a
  stateful `stream` with `reset`, for language models."""

  def __init__(self, workdir: str, step: int | None = None):
    self.experiment = _experiments().get_experiment(
        driver.workdir_experiment(workdir))
    self.config = driver.saved_config(self.experiment, workdir, {})
    self.task, self.params, self.step = driver.load(
        self.experiment, self.config, workdir, step)
    self._carry = None

  def predict(self, lines: list[str]) -> list[str]:
    """One result per input, as `--mode=predict` prints them."""
    if isinstance(lines, str):
      raise InputError('predict takes a list of inputs, not one string')
    driver.check_inputs(lines, 'input')
    return self.experiment.predict(self.task, self.params, list(lines))

  def _language_model(self, what: str):
    if self.experiment.NAME != 'lm':
      raise InputError(f'{what} is for language models; this is a '
                       f'{self.experiment.NAME} model')
    return self.experiment

  def generate(self, prefix: str, num_tokens: int | None = None) -> str:
    """`prefix` continued by `num_tokens` tokens (default
    `generate.num_tokens`), decoded as `generate.*` says."""
    lm = self._language_model('generate')
    return lm.generate(self.task, self.params, prefix, self.config.seed,
                       what='prefix', num_tokens=num_tokens)

  def stream(self, text: str) -> np.ndarray:
    """Reads `text` from the state the previous call left (the initial one
    after `reset` or at first) and returns the next token's probabilities
    [vocabulary size] (`vocab` gives the tokens)."""
    lm = self._language_model('stream')
    probabilities, self._carry = lm.read(self.task, self.params, text,
                                         self._carry)
    return probabilities

  def reset(self):
    """The next `stream` starts from the initial state."""
    self._carry = None

  @property
  def vocab(self) -> list[str]:
    """The language model's tokens, in the order of `stream`'s output."""
    self._language_model('vocab')
    return list(self.task.vocab.itos)
