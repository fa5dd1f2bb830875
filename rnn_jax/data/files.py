"""Reading the user's own files (`data.name=files`), with errors that name them."""

from __future__ import annotations

import os

from rnn_jax.errors import InputError


def read_lines(path: str, *, what: str = 'data file') -> list[str]:
  """A UTF-8 text file's lines (without newlines); rejects empty files."""
  if not path:
    raise InputError(f'no {what} given')
  if not os.path.isfile(path):
    raise InputError(f'{what} not found: {path}')
  with open(path, 'rb') as f:
    raw = f.read()
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise InputError(f'{path}:{line}: not valid UTF-8 ({e.reason})') from None
  if not text.strip():
    raise InputError(f'{what} is empty: {path}')
  return text.split('\n')


def read_pairs(path: str, columns: tuple[str, str], *,
               what: str = 'data file') -> list[tuple[str, str]]:
  """`first<TAB>second` lines -> [(first, second)], both stripped.

  Blank lines are skipped; a line without a tab, or with an empty field, is
  an error naming the file, the line and the expected `columns`.
  """
  rows = []
  for number, line in enumerate(read_lines(path, what=what), start=1):
    if not line.strip():
      continue
    first, tab, second = line.rstrip('\r').partition('\t')
    if not tab or not first.strip() or not second.strip():
      raise InputError(f'{path}:{number}: expected {columns[0]}<TAB>'
                       f'{columns[1]}, got {line[:60]!r}')
    rows.append((first.strip(), second.strip()))
  if not rows:
    raise InputError(f'{what} has no examples: {path}')
  return rows
