"""Sequence tagging (aligned many-to-many): one tag per input token.

Default: a BiLSTM-CRF with character features for CoNLL-2003 NER,
`python launch.py --experiment=tag` (the `conll2003_ner_bilstm_crf` preset).
"""

from __future__ import annotations

import itertools
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rnn_jax import cells
from rnn_jax import configlib
from rnn_jax import crf
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import training
from rnn_jax.data import builders
from rnn_jax.data import files
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.data.builders import tagging as tagging_data
from rnn_jax.errors import InputError

NAME = 'tag'
DEFAULT_PRESET = 'conll2003_ner_bilstm_crf'
SPLITS = ('train', 'valid', 'test')
FORMATS = ('conll', 'conllu')


def get_config() -> ml_collections.ConfigDict:
  """Defaults = the `conll2003_ner_bilstm_crf` preset."""
  c = ml_collections.ConfigDict()
  c.preset = DEFAULT_PRESET  # set by launch.py from --preset; a label only
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      cell='lstm',            # rnn | gru | lstm
      hidden_size=200,
      num_layers=1,
      bidirectional=True,
      embed_size=100,
      feature_embed_size=25,  # per column of data.features
      char_embed_size=25,
      char_hidden_size=25,    # 0: no character features
      crf=True,               # False: a per-token softmax
      dropout=0.5,            # on the inputs, between layers, before output
      word_dropout=0.05,      # a word becomes <unk> with this probability
      unroll=1,
  ))
  c.data = ml_collections.ConfigDict(dict(
      name='conll2003',       # conll2000 | conll2003 | ud_english_lines | files
      column='ner',           # the tag column: a dataset's column name; for
                              # files its number (0 = the word), or for
                              # conllu also a field name (upos, xpos)
      features='',            # extra input columns, comma-separated
      format='conll',         # files: conll | conllu
      train='',               # files: paths
      valid='',
      test='',
      lowercase=False,        # word embeddings of lower-cased words
      zero_digits=True,       # every digit becomes 0 for the word embeddings
      min_freq=1,
      max_word_length=20,     # characters read per word
      batch_size=32,
      eval_batch_size=256,
      bucket_width=8,
      split_seed=0,           # fixes carved-off splits
      valid_fraction=0.1,     # carved off train when there is no valid split
      test_fraction=0.1,
  ))
  c.train = training.default_config(
      optimizer='adam',
      learning_rate=2e-3,
      clip_norm=5.0,
      schedule='cosine',
      num_epochs=30,
  )
  return c


def validate(config):
  """Rejects values no code path accepts, before anything is written."""
  configlib.check_choices(config, {
      'model.cell': tuple(cells.CELLS),
      'data.name': tuple(builders.registered(NAME)) + ('files',),
      'data.format': FORMATS,
  })
  training.validate_config(config)
  configlib.check_at_least(config, {
      **dict.fromkeys([
          'model.hidden_size', 'model.num_layers', 'model.embed_size',
          'model.feature_embed_size', 'model.char_embed_size',
          'data.min_freq', 'data.batch_size', 'data.eval_batch_size',
          'data.bucket_width', 'data.max_word_length'], 1),
      'model.char_hidden_size': 0,
  })
  configlib.check_fraction(config, [
      'model.dropout', 'model.word_dropout', 'data.valid_fraction',
      'data.test_fraction'])
  if not config.data.column:
    raise InputError('config field data.column: name the tag column')


# ----------------------------------------------------------------------------
# Data: sentences as (words, tags, feature columns) per split.


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
    sentences = parse(files.read_lines(path, what=what), path)
    if not sentences:
      raise InputError(f'{what} has no sentences: {path}')
    width = len(sentences[0][0])
    column = _file_column(dc.column, dc.format, width, 'data.column')
    extra = [_file_column(f, dc.format, width, 'data.features')
             for f in _split_list(dc.features)]
    out[split] = [([row[word] for row in s], [row[column] for row in s],
                   [[row[f] for row in s] for f in extra]) for s in sentences]
  return out


def _split_list(text: str) -> list[str]:
  return [f.strip() for f in text.split(',') if f.strip()]


def load_splits(dc) -> dict[str, list]:
  """split -> [(words, tags, [feature column, ...])]; a missing valid or
  test split is carved off train."""
  if dc.name == 'files':
    return pipelines.carve_missing(_read_files(dc), dc)
  records = builders.load(dc.name)
  columns = [k for k in records['train'][0] if k != 'tokens']
  for field, names in (('data.column', [dc.column]),
                       ('data.features', _split_list(dc.features))):
    for name in names:
      if name not in columns:
        raise InputError(f'config field {field}: {dc.name} has no column '
                         f'{name!r}; its columns: {", ".join(columns)}')
  features = _split_list(dc.features)
  splits = {split: [(r['tokens'], r[dc.column], [r[f] for f in features])
                    for r in rs] for split, rs in records.items()}
  return pipelines.carve_missing(splits, dc)


def normalize_word(word: str, dc) -> str:
  """The key of a word's embedding (the characters keep the original)."""
  if dc.zero_digits:
    word = re.sub(r'\d', '0', word)
  return word.lower() if dc.lowercase else word


class Vocabularies:
  """Words, characters, tags and each feature column, built on train."""

  def __init__(self, words, chars, tags, features):
    self.words, self.chars, self.tags = words, chars, tags
    self.features = features

  @classmethod
  def build(cls, splits, dc) -> 'Vocabularies':
    """From train, except that a tag only valid or test has (CoNLL-2000's
    test has one I-LST) is appended to the tags, so that its gold spans
    are scored as missed; the model is never trained to predict it."""
    train = splits['train']
    reserved = [vocab_lib.PAD, vocab_lib.UNK]
    words = vocab_lib.Vocab.build(
        (normalize_word(w, dc) for ws, _, _ in train for w in ws),
        min_freq=dc.min_freq, reserved=reserved)
    chars = vocab_lib.Vocab.build(
        (c for ws, _, _ in train for w in ws for c in w), reserved=reserved)
    seen = sorted({t for _, ts, _ in train for t in ts})
    unseen = sorted({t for split in ('valid', 'test') for _, ts, _ in
                     splits[split] for t in ts} - set(seen))
    if unseen:
      print(f'{dc.name}: tags absent from train (scored, never predicted '
            f'by training): {", ".join(unseen)}', flush=True)
    tags = vocab_lib.Vocab(seen + unseen)
    width = len(train[0][2])
    features = [vocab_lib.Vocab.build(
        (v for _, _, fs in train for v in fs[f]), reserved=reserved)
                for f in range(width)]
    return cls(words, chars, tags, features)

  _NAMES = ('vocab.json', 'chars.json', 'tags.json')

  def save(self, workdir: str):
    for name, vocab in zip(self._NAMES, (self.words, self.chars, self.tags)):
      vocab.save(os.path.join(workdir, name))
    for f, v in enumerate(self.features):
      v.save(os.path.join(workdir, f'feature{f}.json'))

  @classmethod
  def load(cls, workdir: str, num_features: int) -> 'Vocabularies':
    """What `save` wrote in a trained workdir."""
    words, chars, tags = (training.load_vocab(workdir, name, NAME)
                          for name in cls._NAMES)
    return cls(words, chars, tags, [
        training.load_vocab(workdir, f'feature{f}.json', NAME)
        for f in range(num_features)])


class Encoded:
  """A split's sentences as ids, with the original words kept."""

  def __init__(self, sentences, vocabs: Vocabularies, dc):
    self.words = [ws for ws, _, _ in sentences]
    self.ids = [vocabs.words.encode(normalize_word(w, dc) for w in ws)
                for ws in self.words]
    tag_ids = vocabs.tags.stoi
    self.tags = [np.array([tag_ids[t] for t in ts], np.int32)
                 for _, ts, _ in sentences]
    self.chars = [[vocabs.chars.encode(w) for w in ws] for ws in self.words]
    self.features = None
    if vocabs.features:
      self.features = [
          np.stack([v.encode(col) for v, col in zip(vocabs.features, fs)], -1)
          .reshape(len(ws), len(vocabs.features))
          for ws, _, fs in sentences]


# ----------------------------------------------------------------------------
# The task given to the training loop.


def make_model(config, vocabs: Vocabularies) -> models.Tagger:
  m = config.model
  return models.Tagger(
      vocab_size=len(vocabs.words), num_tags=len(vocabs.tags),
      embed_size=m.embed_size,
      feature_vocab_sizes=tuple(len(v) for v in vocabs.features),
      feature_embed_size=m.feature_embed_size,
      char_vocab_size=len(vocabs.chars) if m.char_hidden_size else 0,
      char_embed_size=m.char_embed_size, char_hidden_size=m.char_hidden_size,
      cell=m.cell, hidden_size=m.hidden_size, num_layers=m.num_layers,
      bidirectional=m.bidirectional, crf=m.crf, dropout=m.dropout,
      word_dropout=m.word_dropout, unk_id=vocabs.words.unk_id,
      unroll=m.unroll)


_INPUTS = ('tokens', 'lengths', 'features', 'chars', 'char_lengths')


class TagTask:
  """Tagging as a `training.Task`: no state flows between batches. The
  loss is the CRF's -log p(tags | sentence) (or the softmax's token
  cross-entropy), reported per token; evaluation decodes (Viterbi or
  argmax) and scores token accuracy and span precision/recall/F1."""
  reset_carry_every_batch = True

  def __init__(self, config, vocabs: Vocabularies, data: dict[str, Encoded]):
    dc = config.data
    self.config, self.data, self.vocabs = config, data, vocabs
    self.model = make_model(config, vocabs)
    self.scheme = metrics.chunk_scheme(vocabs.tags.itos)
    use_chars = bool(config.model.char_hidden_size)

    def batches(split, batch_size):
      d = data[split]
      return pipelines.TaggedBatches(
          d.ids, d.tags, batch_size, pad_id=vocabs.words.stoi[vocab_lib.PAD],
          features=d.features, chars=d.chars if use_chars else None,
          max_word_length=dc.max_word_length, seed=config.seed,
          bucket_width=dc.bucket_width)
    # Any splits (predict mode has one of its own and no train).
    self.batches = {
        split: batches(split, dc.batch_size if split == 'train'
                       else dc.eval_batch_size) for split in data}
    self.steps_per_epoch = (self.batches['train'].steps_per_epoch
                            if 'train' in self.batches else 0)
    # Compiled once per batch shape for every split.
    self.predict = jax.jit(lambda params, inputs: self.decode(
        params, self.emissions(params, inputs), inputs['lengths']))

  def inputs(self, batch):
    """The model's inputs out of a batch."""
    return {k: batch[k] for k in _INPUTS if k in batch}

  def init_params(self, rng):
    return self.model.init(rng, **self.inputs(
        self.batches['train'].batch(0, 0)))['params']

  def initial_carry(self, split):
    del split
    return ()

  def emissions(self, params, batch, rng=None, train=False):
    rngs = {'dropout': rng} if train else {}
    return self.model.apply({'params': params}, **self.inputs(batch),
                            train=train, rngs=rngs)

  def decode(self, params, emissions, lengths):
    """The predicted tag ids [B, T]."""
    if self.config.model.crf:
      crf_params = self.model.apply({'params': params},
                                    method=models.Tagger.crf_params)
      return crf.viterbi(crf_params, emissions, lengths)[0]
    return emissions.argmax(-1)

  def loss(self, params, batch, carry, rng, train):
    emissions = self.emissions(params, batch, rng, train)
    lengths, tags = batch['lengths'], batch['tags']
    mask = jnp.arange(tags.shape[1])[None] < lengths[:, None]
    if self.config.model.crf:
      crf_params = self.model.apply({'params': params},
                                    method=models.Tagger.crf_params)
      total = (crf.nll(crf_params, emissions, tags, lengths)
               * batch['weights']).sum()
      count = mask.sum().astype(jnp.float32)
    else:
      total, count = metrics.cross_entropy(emissions, tags, mask)
    stats = {'loss': total, 'count': count}
    if not train:
      predicted = self.decode(params, emissions, lengths)
      stats['accuracy'] = ((predicted == tags) & mask).sum().astype(jnp.float32)
      stats['chunks'] = jnp.stack(metrics.chunk_counts(tags, predicted, mask,
                                                       self.scheme))
    return total / jnp.maximum(count, 1.0), (stats, carry)

  def train_batch(self, epoch, index):
    return self.batches['train'].batch(epoch, index)

  def eval_batches(self, split):
    return self.batches[split].eval_batches()

  def num_tokens(self, batch):
    return int(batch['lengths'].sum())

  def derived_metrics(self, m):
    if 'chunks' not in m:
      return {}
    precision, recall, f1 = metrics.precision_recall_f1(*m['chunks'])
    return {'precision': precision, 'recall': recall, 'f1': f1}


# ----------------------------------------------------------------------------
# Predictions in CoNLL format.


def predict_split(task: TagTask, params, split: str,
                  max_batches: int = 0) -> list[np.ndarray | None]:
  """Predicted tag ids of each sentence of `split`, in order (None past
  the first `max_batches` evaluation batches, when > 0)."""
  out: list[np.ndarray | None] = [None] * len(task.data[split].ids)
  batches = task.batches[split].eval_batches()
  for batch in itertools.islice(batches, max_batches or None):
    tags = np.asarray(task.predict(params, task.inputs(batch)))
    for row, index in enumerate(batch['index']):
      if index >= 0:
        out[index] = tags[row, :batch['lengths'][row]]
  return out


def write_conll(path: str, data: Encoded, predicted, tags: vocab_lib.Vocab):
  """`word gold predicted` per token, a blank line after each sentence (what
  conlleval reads); spaces inside a word become underscores."""
  with open(path, 'w', encoding='utf-8') as f:
    for words, gold, guess in zip(data.words, data.tags, predicted):
      if guess is None:
        continue
      for w, g, p in zip(words, gold, guess):
        f.write(f'{w.replace(" ", "_")} {tags.itos[g]} {tags.itos[p]}\n')
      f.write('\n')


# ----------------------------------------------------------------------------
# Entry point.


def run(config, workdir: str) -> dict:
  """Trains (or resumes) and evaluates; writes the valid and test
  predictions in CoNLL format and summary.json."""
  validate(config)
  dc = config.data
  splits = load_splits(dc)
  vocabs = Vocabularies.build(splits, dc)
  data = {s: Encoded(splits[s], vocabs, dc) for s in SPLITS}
  task = TagTask(config, vocabs, data)
  print(f'{dc.name} ({dc.column}): {len(vocabs.words):,} words, '
        f'{len(vocabs.chars)} characters, {len(vocabs.tags)} tags; sentences '
        + ', '.join(f'{s} {len(data[s].ids):,}' for s in SPLITS), flush=True)
  training.write_config(workdir, config)
  vocabs.save(workdir)

  result = training.train_and_evaluate(task, config, workdir)
  return _finish(task, result['state'].params, workdir,
                 {'experiment': NAME, 'preset': config.preset,
                  **result['summary']})


def _finish(task: TagTask, params, directory: str, summary: dict) -> dict:
  """Writes the valid and test predictions (CoNLL) and summary.json into
  `directory` (the workdir, or an evaluation's)."""
  for split in ('valid', 'test'):
    predicted = predict_split(task, params, split,
                              task.config.train.eval_steps)
    write_conll(os.path.join(directory, f'{split}_predictions.conll'),
                task.data[split], predicted, task.vocabs.tags)
  return training.write_summary(directory, summary)


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Recomputes a checkpoint's valid and test metrics and predictions."""
  params, step = training.load_params(workdir, step)
  dc = config.data
  vocabs = Vocabularies.load(workdir, len(_split_list(dc.features)))
  splits = load_splits(dc)
  data = {s: Encoded(splits[s], vocabs, dc) for s in SPLITS}
  task = TagTask(config, vocabs, data)
  return _finish(task, params, training.evaluation_dir(workdir, step),
                 training.evaluate_checkpoint(task, config, params, step, NAME))


def predict(config, workdir: str, lines: list[str],
            step: int | None = None) -> list[str]:
  """`word/TAG ...` for each line of space-separated words (each written
  `word|feature|...` when the model reads feature columns); needs only the
  workdir."""
  dc = config.data
  width = len(_split_list(dc.features))
  vocabs = Vocabularies.load(workdir, width)
  params, _ = training.load_params(workdir, step)
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
    sentences.append((words, [vocabs.tags.itos[0]] * len(words),
                      [[t[f + 1] for t in tokens] for f in range(width)]))
  task = TagTask(config, vocabs, {'input': Encoded(sentences, vocabs, dc)})
  predicted = predict_split(task, params, 'input')
  return [' '.join(f'{w}/{vocabs.tags.itos[t]}' for w, t in zip(words, tags))
          for (words, _, _), tags in zip(sentences, predicted)]
