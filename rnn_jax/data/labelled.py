"""Text classification data: (text, label) examples per split, as ids."""

from __future__ import annotations

import numpy as np

from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError


def read_tsv(path: str, header: str = 'auto', *, what: str = 'data file',
             normalize: str = 'none') -> list[tuple[str, str]]:
  """`label<TAB>text` lines -> [(text, label)], both exactly as written
  (in Unicode normal form `normalize` unless 'none')."""
  return [(text, label) for _, (label, text) in readers.read_fields(
      path, ('label', 'text'), header=header, what=what, normalize=normalize)]


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
  """Fixed fold index of each of n examples: a seeded permutation dealt
  round-robin, so folds differ in size by at most one."""
  fold = np.empty(n, np.int64)
  fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
  return fold


def load_splits(dc) -> dict[str, list[tuple[str, str]]]:
  """train/valid/test (text, label) pairs; missing splits carved off train.
  With `valid_as_test`, the valid split is the test split (what is
  reported) and valid is carved off train, to select by.

  With `cv_folds`, test is fold `fold` of the train split and train the
  other folds; valid is then carved from what remains.
  """
  if dc.name == 'files':
    pairs = {split: read_tsv(dc[split], dc.header, what=f'data.{split} file',
                             normalize=dc.normalize)
             for split in ('train', 'valid', 'test')
             if dc[split] or split == 'train'}
  else:
    pairs = {split: [(r['text'], r['label']) for r in records]
             for split, records in builders.load(dc.name).items()}
  if dc.get('valid_as_test'):
    if 'valid' not in pairs:
      raise InputError(f'config field data.valid_as_test: {dc.name} has no '
                       'valid split to report')
    # GLUE's test labels are hidden: the labelled valid split is reported.
    pairs['test'] = pairs.pop('valid')
  if dc.cv_folds:
    if 'test' in pairs:
      raise InputError(f'{dc.name} has a test split; data.cv_folds is for '
                       'datasets without one')
    fold = fold_of(len(pairs['train']), dc.cv_folds, dc.split_seed)
    which = max(dc.fold, 0)
    pairs['test'] = [p for p, f in zip(pairs['train'], fold) if f == which]
    pairs['train'] = [p for p, f in zip(pairs['train'], fold) if f != which]
  return pipelines.carve_missing(pairs, dc)


def words(text: str, dc) -> list[str]:
  return pipelines.split_words(text, dc.tokenizer, lowercase=dc.lowercase)


def all_words(pairs, dc) -> set[str]:
  """The words of every split's texts (none for None)."""
  return {w for split_pairs in (pairs or {}).values()
          for text, _ in split_pairs for w in words(text, dc)}


def build_vocabs(pairs, dc) -> dict[str, vocab_lib.Vocab]:
  """Words and labels of the train split; every valid / test label must be
  a train label."""
  vocab = vocab_lib.Vocab.build(
      (w for text, _ in pairs['train'] for w in words(text, dc)),
      min_freq=dc.min_freq, reserved=[vocab_lib.PAD, vocab_lib.UNK])
  labels = vocab_lib.Vocab(sorted({l for _, l in pairs['train']}))
  if len(labels) < 2:
    raise InputError(f'{dc.name}: the train split has a single label '
                     f'{labels.itos}')
  for split in ('valid', 'test'):
    unknown = sorted({l for _, l in pairs[split] if l} - set(labels.itos))
    if unknown:
      raise InputError(f'{dc.name}: label {unknown[0]!r} of the {split} split '
                       'never occurs in train')
  return {'vocab': vocab, 'labels': labels}


class Encoded:
  """A split's sentences as ids, labels as ids (-1: hidden), and texts.
  With `pretrained` (a `vectors.Pretrained`), a word outside the vocabulary
  that has a vector gets its id there."""

  def __init__(self, pairs, vocabs, dc, pretrained=None, split=''):
    self.texts = [text for text, _ in pairs]
    keys = [words(t, dc) for t in self.texts]
    if pretrained is None:
      self.ids = [vocabs['vocab'].encode(ws) for ws in keys]
    else:   # words outside the vocabulary may have vectors
      self.ids = pretrained.encode(split, keys, vocabs['vocab'])
    labels = vocabs['labels'].stoi
    unknown = sorted({l for _, l in pairs if l} - set(labels))
    if unknown:
      raise InputError(f'{dc.name}: label {unknown[0]!r} is not one of the '
                       'labels the model was trained on')
    self.labels = np.array([labels[l] if l else -1 for _, l in pairs],
                           np.int32)
    self.labelled = bool(len(self.labels)) and bool((self.labels >= 0).all())
