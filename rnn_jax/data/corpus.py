"""Language-model corpora: a dataset's or the user's text as token ids."""

from __future__ import annotations

import numpy as np

from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

SPLITS = ('train', 'valid', 'test')
# data.preprocess=auto: the corpora read as their canonical setup reads them
# (d2l lower-cases The Time Machine to letters and spaces); everything else,
# the user's files above all, as written.
_AUTO_PREPROCESS = {'timemachine': 'd2l'}


def preprocessing(dc) -> str:
  """The preprocessing `dc.preprocess` names ('auto' resolved)."""
  if dc.preprocess == 'auto':
    return _AUTO_PREPROCESS.get(dc.name, 'none')
  return dc.preprocess


def split_lines(dc) -> dict[str, list[str]]:
  """train / valid / test lines of a dataset or of the user's files (with
  only a train file, its last lines become valid and test)."""
  if dc.name != 'files':
    return builders.load_lines(dc.name)
  lines = {'train': readers.read_lines(dc.train, what='data.train file')}
  for split in ('valid', 'test'):
    if dc[split]:
      lines[split] = readers.read_lines(dc[split], what=f'data.{split} file')
  if len(lines) == 3:
    return lines
  if len(lines) == 2:
    raise InputError('give both data.valid and data.test, or neither')
  text = lines['train']
  n = len(text)
  n_test = int(n * dc.test_fraction)
  n_valid = int(n * dc.valid_fraction)
  if n_test < 1 or n_valid < 1:
    raise InputError(f'{dc.train}: {n} lines are too few to split off '
                     'valid and test; give data.valid and data.test')
  return {'train': text[:n - n_valid - n_test],
          'valid': text[n - n_valid - n_test:n - n_test],
          'test': text[n - n_test:]}


def tokenize(lines: list[str], dc, eos: bool | None = None) -> list[str]:
  return pipelines.tokenize(lines, dc.level, preprocess=preprocessing(dc),
                            eos=dc.eos if eos is None else eos)


def load_tokens(dc) -> dict[str, list[str]]:
  """Each split's tokens; a split without any is an error."""
  tokens = {split: tokenize(lines, dc)
            for split, lines in split_lines(dc).items()}
  for split, toks in tokens.items():
    if len(toks) < 2:
      raise InputError(f'{dc.name}: the {split} split has no text')
  return tokens


def build_vocab(train_tokens: list[str], dc) -> vocab_lib.Vocab:
  reserved = [vocab_lib.UNK]
  if dc.level == 'word' and dc.eos:
    reserved.append(vocab_lib.EOS)
  return vocab_lib.Vocab.build(train_tokens, min_freq=dc.min_freq,
                               reserved=reserved)


def encode(tokens: dict[str, list[str]],
           vocab: vocab_lib.Vocab) -> dict[str, np.ndarray]:
  return {split: vocab.encode(t) for split, t in tokens.items()}
