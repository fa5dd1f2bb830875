"""Experiments (one module each, declaring what `rnn_jax.driver.Experiment`
lists; the benchmark, no training run, has its own run(config, workdir)),
their named presets in experiments/configs/, and the sweeps and ablations
declared in experiments/sweeps/ and experiments/ablations/."""

from __future__ import annotations

import importlib
import importlib.util
import os

from rnn_jax.errors import InputError

EXPERIMENTS = ('lm', 'classify', 'seq2seq', 'tag', 'memory', 'benchmark')
_HERE = os.path.dirname(__file__)
_CONFIGS_DIR = os.path.join(_HERE, 'configs')
SWEEP_KINDS = ('sweeps', 'ablations')


def get_experiment(name: str):
  if name not in EXPERIMENTS:
    raise InputError(f'unknown experiment {name!r}; choose one of '
                     f'{", ".join(EXPERIMENTS)}')
  return importlib.import_module(f'{__name__}.{name}')


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


def check_run(experiment: str, preset: str | None, overrides: dict):
  """Rejects what a run would reject before writing anything: an unknown
  experiment, preset or field, a value of the wrong type or out of range.
  No preset: the experiment's defaults."""
  from rnn_jax import configlib  # pylint: disable=g-import-not-at-top
  from rnn_jax import driver  # pylint: disable=g-import-not-at-top
  module = get_experiment(experiment)
  if preset:
    preset_module = get_preset(preset)
    if preset_module.EXPERIMENT != experiment:
      raise InputError(f'preset {preset!r} is for --experiment='
                       f'{preset_module.EXPERIMENT}, not {experiment}')
  config = configlib.apply_overrides(
      (preset_module if preset else module).get_config(), overrides)
  if hasattr(module, 'run'):   # the benchmark
    module.validate(config)
  else:
    driver.validate(module, config)
