"""Sequence-tagging datasets: CoNLL-2000 chunking, CoNLL-2003 NER and
Universal Dependencies English-LinES, with the readers of their formats.

Every example is one sentence: `{'tokens': [word, ...], COLUMN: [tag, ...],
...}` with one tag list per annotation column of the dataset, in file order.
The readers, `parse_conll` and `parse_conllu`, also read the user's own files
(`data.name=files`).
"""

from __future__ import annotations

import re

from typing import Sequence

import tensorflow_datasets as tfds

from rnn_jax.data.builders.base import ExamplesBuilder
from rnn_jax.data.builders.base import RawFile
from rnn_jax.data.builders.base import read_text
from rnn_jax.data.builders.base import register
from rnn_jax.errors import InputError

CONLLU_FIELDS = ('id', 'form', 'lemma', 'upos', 'xpos', 'feats', 'head',
                 'deprel', 'deps', 'misc')


# A CoNLL token line holds a token and a few tags: past these it is prose.
MAX_COLUMNS, MAX_TOKEN_LINE = 64, 4096


def parse_conll(lines: Sequence[str], where: str) -> list[list[list[str]]]:
  """CoNLL columns: one token per line, its fields separated by
  spaces or tabs, a blank line between sentences; `-DOCSTART-` lines (document
  separators) are skipped. Returns sentences of rows of fields. Every row
  of the file must have the same number of fields; a row that does not is
  an error naming `where` and the line."""
  sentences, sentence, width = [], [], None
  for number, line in enumerate(lines, start=1):
    # Spaces and tabs separate fields; other white space (a no-break space
    # inside a word) is text.
    fields = [f for f in re.split('[ \t]+', line) if f]
    if not fields:
      if sentence:
        sentences.append(sentence)
      sentence = []
      continue
    if fields[0] == '-DOCSTART-':
      continue
    if len(fields) > MAX_COLUMNS or len(line) > MAX_TOKEN_LINE:
      raise InputError(f'{where}:{number}: {len(fields)} fields, '
                       f'{len(line):,} characters on one line: not a CoNLL '
                       'token line (a token and its tags)')
    if width is None:
      width = len(fields)
    if len(fields) != width:
      raise InputError(f'{where}:{number}: expected {width} columns like the '
                       f'first token line, got {len(fields)}: {line[:60]!r}')
    sentence.append(fields)
  if sentence:
    sentences.append(sentence)
  return sentences


def parse_conllu(lines: Sequence[str], where: str) -> list[list[list[str]]]:
  """CoNLL-U (Universal Dependencies): ten tab-separated fields per word,
  `#` comment lines, a blank line after each sentence. Multi-word token
  ranges (`29-30`) and empty nodes (`8.1`) are skipped, so each row is one
  syntactic word."""
  sentences, sentence = [], []
  for number, line in enumerate(lines, start=1):
    line = line.rstrip('\r\n')
    if not line.strip():
      if sentence:
        sentences.append(sentence)
      sentence = []
      continue
    if line.startswith('#'):
      continue
    fields = line.split('\t')
    if len(fields) != len(CONLLU_FIELDS):
      raise InputError(f'{where}:{number}: expected 10 tab-separated CoNLL-U '
                       f'fields, got {len(fields)}: {line[:60]!r}')
    if '-' in fields[0] or '.' in fields[0]:
      continue
    if not fields[0].isdigit():
      raise InputError(f'{where}:{number}: CoNLL-U word id {fields[0]!r} is '
                       'not a number')
    sentence.append(fields)
  if sentence:
    sentences.append(sentence)
  return sentences


class _TaggingBuilder(ExamplesBuilder):
  """Base: COLUMNS names the tag columns kept; `_examples()` gives split ->
  sentences of rows, `_row(fields)` -> (token, tag per column)."""
  TASK = 'tag'
  COLUMNS: tuple[str, ...] = ()

  def _features(self):
    words = tfds.features.Sequence(tfds.features.Text())
    return {name: words for name in ('tokens',) + self.COLUMNS}

  def _record(self, sentence):
    rows = [self._row(fields) for fields in sentence]
    return {name: [row[c] for row in rows]
            for c, name in enumerate(('tokens',) + self.COLUMNS)}

  def _row(self, fields):
    return fields


def _read(raw: RawFile, parse) -> list:
  sentences = parse(read_text(raw).split('\n'), raw.path)
  if not sentences:
    raise InputError(f'{raw.path}: no sentences')
  return sentences


_NLTK_URL = ('https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/'
             'packages/corpora/conll2000.zip')


@register('conll2000')
class Conll2000(_TaggingBuilder):
  """CoNLL-2000 chunking (Tjong Kim Sang & Buchholz 2000): WSJ sections
  15-18 as train (8,936 sentences), section 20 as test (2,012); columns
  `pos` (the shared task's Brill-tagger POS tags) and `chunk` (IOB2). There
  is no valid split."""
  HOMEPAGE = 'https://www.clips.uantwerpen.be/conll2000/chunking/'
  COLUMNS = ('pos', 'chunk')
  FILES = {
      'train': RawFile('conll2000/train.txt', _NLTK_URL,
                       '82033cd7a72b209923a98007793e8f9de3abc1c8b79d646c50648eb949b87cea',
                       member='conll2000/train.txt'),
      'test': RawFile('conll2000/test.txt', _NLTK_URL,
                      '73b7b1e565fa75a1e22fe52ecdf41b6624d6f59dacb591d44252bf4d692b1628',
                      member='conll2000/test.txt'),
  }

  def _examples(self):
    return {split: _read(raw, parse_conll) for split, raw in self.FILES.items()}


_CONLL2003_URL = ('https://raw.githubusercontent.com/synalp/NER/'
                  'c0ea07c81ec3512b5047dcd804b0ac2b10a3bdfc/corpus/CoNLL-2003/')


@register('conll2003')
class Conll2003(_TaggingBuilder):
  """CoNLL-2003 English NER (Tjong Kim Sang & De Meulder 2003): eng.train
  (14,041 sentences), eng.testa as valid (3,250), eng.testb as test
  (3,453); columns `pos`, `chunk` and `ner` (IOB1: PER, ORG, LOC, MISC).
  Reuters text, for research only."""
  HOMEPAGE = 'https://www.clips.uantwerpen.be/conll2003/ner/'
  COLUMNS = ('pos', 'chunk', 'ner')
  FILES = {
      'train': RawFile('conll2003/eng.train', _CONLL2003_URL + 'eng.train',
                       'eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c'),
      'valid': RawFile('conll2003/eng.testa', _CONLL2003_URL + 'eng.testa',
                       'aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e'),
      'test': RawFile('conll2003/eng.testb', _CONLL2003_URL + 'eng.testb',
                      '0632f32c090ef31c223135b7fee3187a7cf8e65c4015c7866bb7783428cdd9a6'),
  }

  def _examples(self):
    return {split: _read(raw, parse_conll) for split, raw in self.FILES.items()}


_LINES_URL = ('https://raw.githubusercontent.com/UniversalDependencies/'
              'UD_English-LinES/r2.10/')


@register('ud_english_lines')
class UdEnglishLines(_TaggingBuilder):
  """Universal Dependencies English-LinES r2.10 (Ahrenberg 2007): 3,176 /
  1,032 / 1,035 sentences of fiction and non-fiction; columns `upos` (the
  17 universal POS tags) and `xpos`. CC BY-NC-SA 4.0."""
  HOMEPAGE = 'https://universaldependencies.org/treebanks/en_lines/'
  COLUMNS = ('upos', 'xpos')
  FILES = {
      'train': RawFile('ud_english_lines/en_lines-ud-train.conllu',
                       _LINES_URL + 'en_lines-ud-train.conllu',
                       '705bfe26b886da24d11719068edfa22d31826007657602de09894006468bae46'),
      'valid': RawFile('ud_english_lines/en_lines-ud-dev.conllu',
                       _LINES_URL + 'en_lines-ud-dev.conllu',
                       'c545e91e13c4e6a272e78175d5224a01791694999f0c8460e7741da4a46746b9'),
      'test': RawFile('ud_english_lines/en_lines-ud-test.conllu',
                      _LINES_URL + 'en_lines-ud-test.conllu',
                      'ea037b9cc2f22c298d1fd0de640b5d310852cf2e942a3183446b2c3a9122c493'),
  }

  def _examples(self):
    return {split: _read(raw, parse_conllu)
            for split, raw in self.FILES.items()}

  def _row(self, fields):
    return [fields[1], fields[3], fields[4]]
