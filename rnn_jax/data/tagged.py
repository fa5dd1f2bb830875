"""Sequence tagging data: sentences as (words, tags, feature columns)."""

from __future__ import annotations

import functools
import re
from typing import Callable

import numpy as np

from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.data.builders import tagging as tagging_data
from rnn_jax.errors import InputError

SPLITS = ('train', 'valid', 'test')
FORMATS = ('conll', 'conllu')


def split_list(text: str) -> list[str]:
  """'pos, chunk' -> ['pos', 'chunk']."""
  return [f.strip() for f in text.split(',') if f.strip()]


def _file_column(spec: str, fmt: str, width: int, what: str) -> int:
  """A column of the user's files: its number, or a CoNLL-U field name."""
  if fmt == 'conllu' and spec in tagging_data.CONLLU_FIELDS:
    return tagging_data.CONLLU_FIELDS.index(spec)
  try:
    index = int(spec)
  except ValueError:
    names = (' or a field name (' + ', '.join(tagging_data.CONLLU_FIELDS) + ')'
             if fmt == 'conllu' else '')
    raise InputError(f'config field {what}={spec!r}: with data.name=files give '
                     f'a column number{names}') from None
  if not -width <= index < width or index in (0, -width):
    raise InputError(f'config field {what}={spec}: the files have {width} '
                     'columns, numbered from 0 (the word)')
  return index


def _read_files(dc) -> dict[str, list]:
  """The user's CoNLL / CoNLL-U files -> split -> [(words, tags, features)]."""
  parse = (tagging_data.parse_conllu if dc.format == 'conllu'
           else tagging_data.parse_conll)
  word = 1 if dc.format == 'conllu' else 0
  out = {}
  for split in SPLITS:
    path = dc[split]
    if not path:
      if split == 'train':
        raise InputError('data.name=files needs data.train (a '
                         f'{dc.format} file)')
      continue
    what = f'data.{split} file'
    sentences = parse(readers.read_lines(path, what=what,
                                         normalize=dc.normalize), path)
    if not sentences:
      raise InputError(f'{what} has no sentences: {path}')
    width = len(sentences[0][0])
    column = _file_column(dc.column, dc.format, width, 'data.column')
    extra = [_file_column(f, dc.format, width, 'data.features')
             for f in split_list(dc.features)]
    out[split] = [([row[word] for row in s], [row[column] for row in s],
                   [[row[f] for row in s] for f in extra]) for s in sentences]
  return out


def load_splits(dc) -> dict[str, list]:
  """split -> [(words, tags, [feature column, ...])]; a missing valid or
  test split is carved off train."""
  if dc.name == 'files':
    return pipelines.carve_missing(_read_files(dc), dc)
  records = builders.load(dc.name)
  columns = [k for k in records['train'][0] if k != 'tokens']
  for field, names in (('data.column', [dc.column]),
                       ('data.features', split_list(dc.features))):
    for name in names:
      if name not in columns:
        raise InputError(f'config field {field}: {dc.name} has no column '
                         f'{name!r}; its columns: {", ".join(columns)}')
  features = split_list(dc.features)
  splits = {split: [(r['tokens'], r[dc.column], [r[f] for f in features])
                    for r in rs] for split, rs in records.items()}
  return pipelines.carve_missing(splits, dc)


def word_keys(dc) -> Callable[[str], str]:
  """word -> the key of its embedding under `dc`'s data.zero_digits and
  data.lowercase (the characters keep the original); each distinct word is
  worked out once."""
  zero_digits, lowercase = dc.zero_digits, dc.lowercase

  @functools.cache
  def key(word: str) -> str:
    if zero_digits:
      word = re.sub(r'\d', '0', word)
    return word.lower() if lowercase else word
  return key


def all_words(splits, dc) -> set[str]:
  """The embeddings' keys of every split's words (none for None)."""
  return set(map(word_keys(dc), {w for sentences in (splits or {}).values()
                                 for ws, _, _ in sentences for w in ws}))


def build_vocabs(splits, dc) -> dict[str, vocab_lib.Vocab]:
  """Words, characters, tags and each feature column ('feature0', ...),
  from train, except that a tag only valid or test has (CoNLL-2000's test
  has one I-LST) is appended to the tags, so that its gold spans are scored
  as missed; the model is never trained to predict it."""
  train = splits['train']
  reserved = [vocab_lib.PAD, vocab_lib.UNK]
  key = word_keys(dc)
  vocabs = {
      'vocab': vocab_lib.Vocab.build(
          (key(w) for ws, _, _ in train for w in ws),
          min_freq=dc.min_freq, reserved=reserved),
      'chars': vocab_lib.Vocab.build(
          (c for ws, _, _ in train for w in ws for c in w), reserved=reserved),
  }
  seen = sorted({t for _, ts, _ in train for t in ts})
  unseen = sorted({t for split in ('valid', 'test') for _, ts, _ in
                   splits[split] for t in ts} - set(seen))
  if unseen:
    print(f'{dc.name}: tags absent from train (scored, never predicted '
          f'by training): {", ".join(unseen)}', flush=True)
  vocabs['tags'] = vocab_lib.Vocab(seen + unseen)
  for f in range(len(train[0][2])):
    vocabs[f'feature{f}'] = vocab_lib.Vocab.build(
        (v for _, _, fs in train for v in fs[f]), reserved=reserved)
  return vocabs


def feature_vocabs(vocabs, dc) -> list[vocab_lib.Vocab]:
  return [vocabs[f'feature{f}'] for f in range(len(split_list(dc.features)))]


def parse_inputs(lines: list[str], dc, placeholder_tag: str) -> list:
  """Predict's input lines, space-separated `word|feature|...` tokens (one
  feature per column of data.features), as sentences whose tags are all
  `placeholder_tag`."""
  width = len(split_list(dc.features))
  sentences = []
  for number, line in enumerate(lines, 1):
    tokens = [t.split('|') for t in line.split()]
    bad = [t for t in tokens if len(t) != width + 1 or not all(t)]
    if bad:
      raise InputError(
          f'input line {number}: {"|".join(bad[0])!r} is not word'
          + '|feature' * width + f' (the model reads {width} feature '
          'column(s): ' + (dc.features or 'none') + ')')
    words = [t[0] for t in tokens]
    sentences.append((words, [placeholder_tag] * len(words),
                      [[t[f + 1] for t in tokens] for f in range(width)]))
  return sentences


class Encoded:
  """A split's sentences as ids, with the original words kept. With
  `pretrained` (a `vectors.Pretrained`), a word outside the vocabulary that
  has a vector gets its id there."""

  def __init__(self, sentences, vocabs, dc, pretrained=None, split=''):
    self.words = [ws for ws, _, _ in sentences]
    key = word_keys(dc)
    keys = [list(map(key, ws)) for ws in self.words]
    if pretrained is None:
      self.ids = [vocabs['vocab'].encode(ws) for ws in keys]
    else:   # words outside the vocabulary may have vectors
      self.ids = pretrained.encode(split, keys, vocabs['vocab'])
    tag_ids = vocabs['tags'].stoi
    unknown = sorted({t for _, ts, _ in sentences for t in ts} - set(tag_ids))
    if unknown:
      raise InputError(f'{dc.name}: tag {unknown[0]!r} is not one of the tags '
                       'the model was trained on')
    self.tags = [np.array([tag_ids[t] for t in ts], np.int32)
                 for _, ts, _ in sentences]
    self.chars = [[vocabs['chars'].encode(w) for w in ws] for ws in self.words]
    self.features = None
    features = feature_vocabs(vocabs, dc)
    if features:
      self.features = [
          np.stack([v.encode(col) for v, col in zip(features, fs)], -1)
          .reshape(len(ws), len(features))
          for ws, _, fs in sentences]
