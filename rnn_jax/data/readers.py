"""The one reader of users' own files (`data.name=files`, predict inputs).

A file is read exactly as written: UTF-8 (a leading byte-order mark is not
text), any line ending (CRLF, CR, LF), every field kept as it is. What
cannot be read that way stops the run with `FILE:LINE: ...`; nothing is
dropped or rewritten silently. Blank lines separate nothing in a TSV file
and are skipped (CoNLL readers give them their meaning).
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Sequence

from rnn_jax.configlib import Field
from rnn_jax.errors import InputError

HEADERS = ('auto', 'yes', 'no')
NORMALIZATIONS = ('none', 'NFC', 'NFKC')


def file_fields(content: str) -> dict[str, Field]:
  """The config fields of an experiment's own files (`data.name=files`),
  each file holding `content`."""
  return {
      **{f'data.{split}': Field('', f'name=files: the {what} file, {content}')
         for split, what in (('train', 'training'), ('valid', 'validation'),
                             ('test', 'test'))},
      'data.normalize': Field('none', 'name=files: Unicode normalisation of '
                              'the files and of prediction inputs (none: '
                              'every character as written)',
                              choices=NORMALIZATIONS)}
# The words a header names its columns with; `header=auto` reads a first
# line as a header only when every field is one of them, and no later line
# repeats its first field (so it cannot be a class of the data).
HEADER_WORDS = frozenset({
    'label', 'labels', 'class', 'category', 'target', 'y', 'sentiment',
    'text', 'sentence', 'sentences', 'review', 'document', 'content', 'x',
    'source', 'src', 'input', 'question', 'output', 'tgt', 'answer',
    'translation'})


def read_text(path: str, *, what: str = 'data file',
              normalize: str = 'none') -> str:
  """A UTF-8 file's text, BOM removed, line endings made '\\n' and, unless
  `normalize` is 'none', put in that Unicode normal form."""
  if not path:
    raise InputError(f'no {what} given')
  if os.path.isdir(path):
    raise InputError(f'{path}: is a directory, not a {what}')
  if not os.path.isfile(path):
    raise InputError(f'{what} not found: {path}')
  with open(path, 'rb') as f:
    raw = f.read()
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b'\n') + 1
    raise InputError(f'{path}:{line}: not valid UTF-8 ({e.reason})') from None
  text = normalize_newlines(text.removeprefix('\ufeff'))
  control = _CONTROL.search(text)
  if control:
    line = text.count('\n', 0, control.start()) + 1
    raise InputError(f'{path}:{line}: control character '
                     f'U+{ord(control.group()):04X} (not text)')
  return normalized(text, normalize)


def normalized(text: str, form: str) -> str:
  """`text` in Unicode normal form `form` (NFC, NFKC), or as it is
  ('none')."""
  return text if form == 'none' else unicodedata.normalize(form, text)


# C0 control characters but tab and newline (CR is a line ending): a NUL
# or an escape code in a text file means it is not the text it should be.
_CONTROL = re.compile('[\x00-\x08\x0b-\x1f]')


def normalize_newlines(text: str) -> str:
  """CRLF and lone CR -> LF (only those: str.splitlines would also split on
  form feeds, U+2028 and other characters that are text here)."""
  return text.replace('\r\n', '\n').replace('\r', '\n')


def read_lines(path: str, *, what: str = 'data file',
               normalize: str = 'none') -> list[str]:
  """The file's lines, without their endings (a final newline ends the last
  line, it does not start an empty one); rejects a file with no text."""
  text = read_text(path, what=what, normalize=normalize)
  if not text.strip():
    raise InputError(f'{what} is empty: {path}')
  return text.removesuffix('\n').split('\n')


def read_fields(path: str, columns: Sequence[str], *, header: str = 'no',
                what: str = 'data file', normalize: str = 'none'
                ) -> list[tuple[int, list[str]]]:
  """Tab-separated lines with exactly len(columns) non-empty fields ->
  [(line number, fields)], blank lines skipped.

  header 'yes' drops the first line, 'no' keeps it, 'auto' drops it only
  when it cannot be data (see HEADER_WORDS) and says so.
  """
  rows = []
  for number, line in enumerate(read_lines(path, what=what,
                                           normalize=normalize), start=1):
    if not line.strip():
      continue
    fields = line.split('\t')
    if len(fields) != len(columns):
      raise InputError(f'{path}:{number}: expected {len(columns)} '
                       f'tab-separated fields ({"<TAB>".join(columns)}), got '
                       f'{len(fields)}: {line[:60]!r}')
    empty = [c for c, f in zip(columns, fields) if not f.strip()]
    if empty:
      raise InputError(f'{path}:{number}: the {empty[0]} field is empty: '
                       f'{line[:60]!r}')
    rows.append((number, fields))
  if rows and header != 'no' and (header == 'yes' or _is_header(rows)):
    if header == 'auto':
      print(f'{path}:{rows[0][0]}: read as a header (data.header=auto; set '
            'data.header=no to read it as data)', flush=True)
    rows = rows[1:]
  if not rows:
    raise InputError(f'{what} has no examples: {path}')
  return rows


def _is_header(rows) -> bool:
  first = rows[0][1]
  return (all(f.strip().lower() in HEADER_WORDS for f in first)
          and all(fields[0] != first[0] for _, fields in rows[1:]))


# Prediction files hold one example a line with tab-separated fields; a text
# field is escaped so that tabs, newlines and backslashes in it survive.
_ESCAPES = {'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'}
_UNESCAPES = {'\\': '\\', 't': '\t', 'n': '\n', 'r': '\r'}


def escape_field(text: str) -> str:
  return ''.join(_ESCAPES.get(c, c) for c in text)


def unescape_field(text: str) -> str:
  out, chars = [], iter(text)
  for c in chars:
    out.append(_UNESCAPES.get(next(chars, ''), '') if c == '\\' else c)
  return ''.join(out)
