"""Config fields: their declarations, and command-line overrides of them.

Each experiment declares its fields once (`Field`: the default, a one-line
meaning, the values it takes); `build` makes the ConfigDict of defaults,
`check` rejects a value outside a field's declared values, and the
launcher's --help prints the same declarations.

An override (`--config.train.learning_rate=4`) is parsed as the type of the
field it replaces, so a typo'd field name or a value of the wrong type is an
`InputError` that names the field.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import operator
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


# A Field's bounds: (attribute, the relation a value must have to it, that
# relation's sign, and its bracket in an interval).
_BOUNDS = (('at_least', operator.ge, '>=', '['),
           ('above', operator.gt, '>', '('),
           ('at_most', operator.le, '<=', ']'),
           ('below', operator.lt, '<', ')'))


@dataclasses.dataclass(frozen=True)
class Field:
  """One config field: its default, what it means, and the values it takes
  (`choices`, or bounds: >= at_least, > above, <= at_most, < below)."""
  default: Any
  help: str
  choices: tuple = ()
  at_least: float | None = None
  above: float | None = None
  at_most: float | None = None
  below: float | None = None

  def _bounds(self) -> list[tuple]:
    """(relation, sign, bracket, bound) of each bound given, lower first."""
    return [(relation, sign, bracket, getattr(self, name))
            for name, relation, sign, bracket in _BOUNDS
            if getattr(self, name) is not None]

  def allowed(self) -> str:
    """The declared values in words ('' when any value of the type is)."""
    if self.choices:
      return 'one of ' + ', '.join(map(str, self.choices))
    bounds = self._bounds()
    if len(bounds) == 2:
      (_, _, left, low), (_, _, right, high) = bounds
      return f'in {left}{low}, {high}{right}'
    return ' '.join(f'{sign} {bound}' for _, sign, _, bound in bounds)

  def check(self, name: str, value):
    if self.choices:
      if value not in self.choices:
        raise InputError(f'config field {name}={value!r}: choose '
                         f'{self.allowed()}')
    elif not all(relation(value, bound)
                 for relation, _, _, bound in self._bounds()):
      raise InputError(f'config field {name} must be {self.allowed()}, '
                       f'got {value}')


def fraction(default: float, meaning: str) -> Field:
  """A rate or share: a Field in [0, 1)."""
  return Field(default, meaning, at_least=0, below=1)


def run_fields(experiment: str, preset: str | None) -> dict[str, Field]:
  """The fields every experiment has; `preset` is its default one."""
  return {'experiment': Field(experiment, 'set by launch.py from '
                              '--experiment: the name, file or module that '
                              'defines the experiment'),
          'preset': Field(preset, 'set by launch.py from --preset; a label '
                          'only'),
          'seed': Field(0, 'initialisation, dropout and the data order'),
          'eval.metrics': Field('', "comma-separated metrics of the "
                                "experiment's evaluators computed on valid "
                                'at every evaluation (train.select_by adds '
                                'its own)'),
          'eval.max_examples': Field(0, '>0: those metrics on the first '
                                     'this many valid examples only',
                                     at_least=0)}


def group(prefix: str, fields: dict[str, Field], *names: str,
          **defaults) -> dict[str, Field]:
  """Shared declarations under `prefix.` ('model', 'train'): the `names`
  among `fields` (all without names), with the given defaults instead."""
  for name in [*names, *defaults]:
    if name not in fields:
      raise KeyError(f'{prefix}.{name} is not declared')
  return {f'{prefix}.{k}': dataclasses.replace(f, default=defaults.get(
      k, f.default)) for k, f in fields.items() if not names or k in names}


def build(fields: dict[str, Field]) -> ml_collections.ConfigDict:
  """The ConfigDict of the declared defaults ('a.b' is b in group a)."""
  config = ml_collections.ConfigDict()
  for name, f in fields.items():
    *groups, key = name.split('.')
    node = config
    for g in groups:
      if g not in node:
        node[g] = ml_collections.ConfigDict()
      node = node[g]
    node[key] = f.default
  return config


def check(config: ml_collections.ConfigDict, fields: dict[str, Field]):
  """Every declared field's value among its declared values."""
  values = flatten(config)
  for name, f in fields.items():
    f.check(name, values[name])


def describe(fields: dict[str, Field]) -> list[str]:
  """--help's lines: `--config.FIELD=DEFAULT  meaning; allowed values`."""
  flags = {name: f'--config.{name}={f.default!r}' for name, f in fields.items()}
  width = min(max(map(len, flags.values())), 44)  # a long default overflows
  lines = []
  for name, f in sorted(fields.items()):
    allowed = f.allowed()
    lines.append(f'  {flags[name]:{width}s}  {f.help}'
                 + (f'; {allowed}' if allowed else ''))
  return lines
