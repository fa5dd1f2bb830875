"""Pretrained word vectors in the word2vec / GloVe text format.

One vector per line, `word v_1 ... v_d` separated by spaces (a word may
itself hold spaces: the last d fields are the numbers), optionally after a
word2vec header line `count d`; the file may be gzipped (`.gz`). The file is
streamed and only the vectors of the vocabulary's words are kept, so a
GloVe file of several gigabytes needs no more memory than the embedding.
"""

from __future__ import annotations

import gzip
import os
from typing import Sequence

import numpy as np

from rnn_jax import configlib
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError


def _lines(path: str):
  """(number, text) of each line, decoded as UTF-8 (BOM and line ending
  removed)."""
  opener = gzip.open if path.endswith('.gz') else open
  try:
    f = opener(path, 'rb')
  except OSError as e:
    raise InputError(f'pretrained embeddings {path}: {e.strerror}') from None
  with f:
    try:
      for number, raw in enumerate(f, 1):
        try:
          text = raw.decode('utf-8')
        except UnicodeDecodeError as e:
          raise InputError(f'{path}:{number}: not valid UTF-8 ({e.reason})'
                           ) from None
        if number == 1:
          text = text.removeprefix('\ufeff')
        yield number, text.rstrip('\r\n')
    except (OSError, EOFError) as e:  # a corrupt or truncated .gz
      raise InputError(f'{path}: cannot be read ({e})') from None


def load(path: str, words: Sequence[str], dim: int):
  """(vectors [len(words), dim] float32, found [len(words)] bool): each
  word's vector, matched exactly or, failing that, case-folded (the first
  vector of the file whose word folds to the same); zeros where none.

  Raises InputError `FILE:LINE: ...` for a line that is not a word and
  `dim` numbers, and for vectors of another dimension."""
  wanted = {w: i for i, w in enumerate(words)}
  folded: dict[str, list[int]] = {}
  for i, w in enumerate(words):
    folded.setdefault(w.casefold(), []).append(i)
  vectors = np.zeros((len(words), dim), np.float32)
  exact = np.zeros(len(words), bool)
  by_fold = np.zeros(len(words), bool)
  file_dim = None
  for number, line in _lines(path):
    if not line.strip():
      continue
    fields = line.rstrip(' ').split(' ')
    if (number == 1 and len(fields) == 2
        and all(f.isdigit() for f in fields)):   # word2vec's `count dim`
      file_dim = int(fields[1])
    elif file_dim is None:  # the first vector: its word is one field
      file_dim = len(fields) - 1
    if file_dim != dim:
      raise InputError(f'{path}:{number}: {file_dim}-dimensional vectors, but '
                       f'model.embed_size={dim}')
    if number == 1 and len(fields) == 2 and fields[1] == str(dim):
      continue
    values = _numbers(fields[-dim:]) if len(fields) > dim else None
    if values is None:
      raise InputError(f'{path}:{number}: expected a word and {dim} numbers '
                       f'separated by spaces: {line[:60]!r}')
    word = ' '.join(fields[:-dim])
    i = wanted.get(word)
    if i is not None and not exact[i]:
      vectors[i], exact[i] = values, True
    for j in folded.get(word.casefold(), ()):
      if not exact[j] and not by_fold[j]:
        vectors[j], by_fold[j] = values, True
  if file_dim is None:
    raise InputError(f'pretrained embeddings {path}: no vectors in it')
  return vectors, exact | by_fold


def _numbers(fields: Sequence[str]):
  try:
    return np.asarray([float(f) for f in fields], np.float32)
  except ValueError:
    return None


# The config fields of pretrained embeddings, in an experiment's `model`
# group (not the flax module's: `module_fields` leaves them out).
FIELDS = {
    'pretrained_embeddings': Field('', 'a word2vec / GloVe text file (.gz '
                                   'too) to start the word embeddings from'),
    'freeze_embeddings': Field(False, 'keep those vectors as they are'),
}
# Where the models keep their word embedding table.
EMBEDDING = ('embed', 'embedding')


def module_fields(model_config) -> dict:
  """A `model` config group without the fields of this module."""
  return {k: v for k, v in model_config.items() if k not in FIELDS}


def check(config, embed_size_field: str = 'model.embed_size'):
  """The fields' values, before anything is written."""
  m = config.model
  if m.freeze_embeddings and not m.pretrained_embeddings:
    raise InputError('config field model.freeze_embeddings: there is nothing '
                     'to freeze without model.pretrained_embeddings')
  if m.pretrained_embeddings:
    if not os.path.isfile(m.pretrained_embeddings):
      raise InputError('config field model.pretrained_embeddings: no such '
                       f'file: {m.pretrained_embeddings}')
    if not configlib.flatten(config)[embed_size_field]:
      raise InputError('config field model.pretrained_embeddings: the model '
                       f'has no embedding ({embed_size_field}=0)')


def initialise(params, model_config, words: Sequence[str]):
  """`params` with the rows of the words found in
  `model_config.pretrained_embeddings` replaced by their vectors, and the
  fraction of `words` found (None without a file)."""
  path = model_config.pretrained_embeddings
  if not path:
    return params, None
  outer, inner = EMBEDDING
  table = np.asarray(params[outer][inner])
  found_vectors, found = load(path, words, table.shape[1])
  coverage = float(found.mean())
  print(f'pretrained embeddings: {int(found.sum()):,} of {len(words):,} '
        f'words ({100 * coverage:.1f}%) found in {path}'
        + ('; frozen' if model_config.freeze_embeddings else ''), flush=True)
  table = np.where(found[:, None], found_vectors, table).astype(table.dtype)
  return {**params, outer: {**params[outer], inner: table}}, coverage


def summary(coverage: float | None) -> dict:
  """What a run's summary says of the vectors: their coverage, once read."""
  return {} if coverage is None else {'pretrained/coverage': coverage}
