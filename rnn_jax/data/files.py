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
