"""Experiments (one module each: get_config() and run(config, workdir)) and
their named presets in experiments/configs/."""

from __future__ import annotations

import importlib
import os

from rnn_jax.errors import InputError

EXPERIMENTS = ('lm', 'classify', 'seq2seq', 'tag')
_CONFIGS_DIR = os.path.join(os.path.dirname(__file__), 'configs')


def get_experiment(name: str):
  if name not in EXPERIMENTS:
    raise InputError(f'unknown experiment {name!r}; choose one of '
                     f'{", ".join(EXPERIMENTS)}')
  return importlib.import_module(f'experiments.{name}')


def preset_names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(_CONFIGS_DIR)
                if f.endswith('.py') and not f.startswith('_'))


def get_preset(name: str):
  """The preset module: EXPERIMENT, get_config() and a docstring."""
  if name not in preset_names():
    raise InputError(f'unknown preset {name!r}; choose one of '
                     f'{", ".join(preset_names())}')
  return importlib.import_module(f'experiments.configs.{name}')
