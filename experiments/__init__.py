"""The registered experiments (one module each, defining a subclass of
`rnn_jax.experiment.Experiment`), their named presets in
experiments/configs/, and the sweeps and ablations declared in
experiments/sweeps/ and experiments/ablations/."""

from __future__ import annotations

import importlib
import importlib.util
import os

from rnn_jax import experiment as experiment_lib
from rnn_jax.errors import InputError

EXPERIMENTS = ('lm', 'classify', 'seq2seq', 'tag', 'memory')
_REGISTERED = {name: f'{__name__}.{name}' for name in EXPERIMENTS}
_HERE = os.path.dirname(__file__)
_CONFIGS_DIR = os.path.join(_HERE, 'configs')
SWEEP_KINDS = ('sweeps', 'ablations')


def get_experiment(spec: str) -> experiment_lib.Experiment:
  """A registered experiment by name, or a user's by file or module."""
  return experiment_lib.load(spec, _REGISTERED)


def spec_of(spec: str) -> str:
  """What config.json records of `--experiment=spec` to load it again."""
  return experiment_lib.spec_of(spec, _REGISTERED)


def preset_names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(_CONFIGS_DIR)
                if f.endswith('.py') and not f.startswith('_'))


def get_preset(name: str):
  """The preset module: EXPERIMENT, get_config() and a docstring."""
  if name not in preset_names():
    raise InputError(f'unknown preset {name!r}; choose one of '
                     f'{", ".join(preset_names())}')
  return importlib.import_module(f'{__name__}.configs.{name}')


def sweep_names(kind: str) -> list[str]:
  """Declared sweeps ('sweeps') or ablations ('ablations')."""
  folder = os.path.join(_HERE, kind)
  return sorted(f[:-3] for f in os.listdir(folder)
                if f.endswith('.py') and not f.startswith('_'))


def get_sweep(name_or_path: str, kind: str):
  """A declared sweep / ablation by name, or (sweeps only) a .py file."""
  if kind == 'sweeps' and name_or_path.endswith('.py'):
    if not os.path.isfile(name_or_path):
      raise InputError(f'sweep file not found: {name_or_path}')
    spec = importlib.util.spec_from_file_location('user_sweep', name_or_path)
    module = importlib.util.module_from_spec(spec)
    try:
      spec.loader.exec_module(module)
    except Exception as e:  # pylint: disable=broad-except
      raise InputError(f'{name_or_path}: cannot load ({type(e).__name__}: '
                       f'{e})') from None
    return module
  if name_or_path not in sweep_names(kind):
    raise InputError(f'unknown {kind[:-1]} {name_or_path!r}; choose one of '
                     f'{", ".join(sweep_names(kind))}'
                     + (' or give a .py file' if kind == 'sweeps' else ''))
  return importlib.import_module(f'{__name__}.{kind}.{name_or_path}')


def resolve(experiment: str | None, preset: str | None):
  """(experiment, config) of a run's --experiment and --preset: the
  preset's config, or the experiment's default preset's, or (no preset)
  its declared defaults, with `experiment` and `preset` recorded."""
  if preset:
    preset_module = get_preset(preset)
    if experiment and spec_of(experiment) != preset_module.EXPERIMENT:
      raise InputError(f'preset {preset!r} is for --experiment='
                       f'{preset_module.EXPERIMENT}, not {experiment}')
    experiment = preset_module.EXPERIMENT
  if not experiment:
    raise InputError('give --experiment (one of '
                     f'{", ".join(EXPERIMENTS)}, or a file) or --preset')
  module = get_experiment(experiment)
  preset = preset or module.DEFAULT_PRESET
  config = get_preset(preset).get_config() if preset else module.get_config()
  config.experiment = spec_of(experiment)
  config.preset = preset
  return module, config


def check_run(experiment: str, preset: str | None, overrides: dict):
  """Rejects what a run would reject before writing anything: an unknown
  experiment, preset or field, a value of the wrong type or out of range."""
  from rnn_jax import configlib  # pylint: disable=g-import-not-at-top
  from rnn_jax import driver  # pylint: disable=g-import-not-at-top
  module, config = resolve(experiment, preset)
  driver.validate(module, configlib.apply_overrides(config, overrides))
