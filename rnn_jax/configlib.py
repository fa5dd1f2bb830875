"""Command-line overrides of a ConfigDict: `--config.train.learning_rate=4`.

Each value is parsed as the type of the field it replaces, so a typo'd field
name or a value of the wrong type is an `InputError` that names the field.
"""

from __future__ import annotations

import ast
import difflib
from typing import Any

import ml_collections

from rnn_jax.errors import InputError

_TRUE = {'true', '1', 'yes', 'on'}
_FALSE = {'false', '0', 'no', 'off'}


def flatten(config: ml_collections.ConfigDict, prefix: str = '') -> dict:
  """{'train.learning_rate': 1.0, ...} in definition order."""
  out = {}
  for key, value in config.items():
    name = prefix + key
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, name + '.'))
    else:
      out[name] = value
  return out


def parse_value(field: str, text: str, current):
  """Parses `text` as the type of `current`."""
  kind = type(current)
  try:
    if kind is bool:
      low = text.strip().lower()
      if low in _TRUE:
        return True
      if low in _FALSE:
        return False
      raise ValueError
    if kind is int:
      return int(text)
    if kind is float:
      return float(text)
    if kind is str:
      return text
    value = ast.literal_eval(text)
    if current is not None and not isinstance(value, kind):
      raise ValueError
    return value
  except (ValueError, SyntaxError):
    raise InputError(f'--config.{field}={text!r}: expected a value of type '
                     f'{kind.__name__}') from None


def check_value(field: str, value, current):
  """A Python value for a field holding `current`: the same type (an int
  where a float is), else an InputError naming the field."""
  kind = type(current)
  if kind is float and type(value) is int:
    return float(value)
  if current is None or type(value) is kind:
    return value
  raise InputError(f'config field {field}={value!r}: expected a value of '
                   f'type {kind.__name__}, got {type(value).__name__}')


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """Returns a copy of `config` with `{'a.b': value}` overrides applied: a
  string is parsed as the field's type (the command line's text), any
  other value must have that type."""
  config = ml_collections.ConfigDict(config.to_dict())
  fields = flatten(config)
  for field, text in overrides.items():
    if field not in fields:
      close = difflib.get_close_matches(field, fields, n=1)
      hint = f' (did you mean {close[0]}?)' if close else ''
      raise InputError(f'unknown config field {field!r}{hint}')
    *groups, key = field.split('.')
    node = config
    for group in groups:
      node = node[group]
    node[key] = (parse_value(field, text, fields[field]) if isinstance(text, str)
                 else check_value(field, text, fields[field]))
  return config


def check_choices(config: ml_collections.ConfigDict,
                  choices: dict[str, tuple]):
  """{'model.cell': ('rnn', 'gru', ...)}: each field's value must be listed."""
  for field, allowed in choices.items():
    value = flatten(config)[field]
    if value not in allowed:
      raise InputError(f'config field {field}={value!r}: choose one of '
                       f'{", ".join(map(str, allowed))}')


def check_at_least(config: ml_collections.ConfigDict,
                   bounds: dict[str, float]):
  """{'data.batch_size': 1}: each field's value must be >= its bound."""
  fields = flatten(config)
  for field, low in bounds.items():
    if fields[field] < low:
      raise InputError(f'config field {field} must be >= {low}, '
                       f'got {fields[field]}')


def check_fraction(config: ml_collections.ConfigDict, fields: list[str]):
  """Each field must lie in [0, 1)."""
  flat = flatten(config)
  for field in fields:
    if not 0.0 <= flat[field] < 1.0:
      raise InputError(f'config field {field} must be in [0, 1), '
                       f'got {flat[field]}')
