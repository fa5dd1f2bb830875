"""Language-model corpora: a dataset's or the user's text as token ids."""

from __future__ import annotations

import numpy as np

from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

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
  lines = {split: readers.read_lines(dc[split], what=f'data.{split} file',
                                     normalize=dc.normalize)
           for split in ('train', 'valid', 'test')
           if dc[split] or split == 'train'}
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


def prefix_tokens(prefix: str, vocab: vocab_lib.Vocab, dc,
                  what: str) -> list[str]:
  """A generation prefix's tokens, every one in the vocabulary (an unknown
  one would be read as <unk>, which a character model never trained);
  `what` names the prefix in errors."""
  tokens = tokenize([prefix], dc, eos=False)
  if not tokens:
    raise InputError(f'{what}: no tokens in {prefix!r}')
  unknown = [t for t in tokens if t not in vocab.stoi]
  if unknown:
    raise InputError(f'{what}: {unknown[0]!r} is not in the vocabulary of '
                     'the trained model'
                     + (f' (write {vocab.itos[vocab.unk_id]} for it)'
                        if vocab.unk_id is not None else ''))
  return tokens


def readable_prefix(prefix: str, train_tokens: list[str],
                    vocab: vocab_lib.Vocab, dc) -> str:
  """A generation prefix the vocabulary can read: `prefix`, or (said on
  stdout) as many of the train text's first tokens."""
  tokens = tokenize([prefix], dc, eos=False)
  if tokens and all(t in vocab.stoi for t in tokens):
    return prefix
  chosen = join(train_tokens[:max(len(tokens), 1)], dc)
  print(f'generate.prefix {prefix!r} is not in the vocabulary of {dc.name}: '
        f'generating from {chosen!r}, the start of the train text', flush=True)
  return chosen


def join(tokens: list[str], dc) -> str:
  """Tokens back to text: characters joined, words spaced."""
  return ('' if dc.level == 'char' else ' ').join(tokens)


def build_vocab(train_tokens: list[str], dc) -> vocab_lib.Vocab:
  reserved = [vocab_lib.UNK]
  if dc.level == 'word' and dc.eos:
    reserved.append(vocab_lib.EOS)
  return vocab_lib.Vocab.build(train_tokens, min_freq=dc.min_freq,
                               reserved=reserved)


def encode(tokens: dict[str, list[str]],
           vocab: vocab_lib.Vocab) -> dict[str, np.ndarray]:
  return {split: vocab.encode(t) for split, t in tokens.items()}
