"""Sequence tagging (aligned many-to-many): one tag per input token.

Default: a BiLSTM-CRF with character features for CoNLL-2003 NER,
`python launch.py --experiment=tag` (the `conll2003_ner_bilstm_crf` preset).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import crf
from rnn_jax import driver
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax.models import tagger
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import tagged
from rnn_jax.data import vectors
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError



FIELDS = {
    **configlib.run_fields('tag', 'conll2003_ner_bilstm_crf'),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      'num_layers', 'bidirectional', *layers.RUN_FIELDS,
                      hidden_size=200),
    'model.embed_size': Field(100, 'word embeddings', at_least=1),
    'model.feature_embed_size': Field(25, 'embeddings of each column of '
                                      'data.features', at_least=1),
    'model.char_embed_size': Field(25, 'character embeddings', at_least=1),
    'model.char_hidden_size': Field(25, "the character BiLSTM's size (0: no "
                                    'character features)', at_least=0),
    'model.crf': Field(True, 'a linear-chain CRF over the tags (false: a '
                       'softmax per token)'),
    'model.dropout': configlib.fraction(0.5, 'on the inputs, between layers '
                                        'and before the output'),
    'model.word_dropout': configlib.fraction(0.05, 'a word becomes <unk> '
                                             'with this probability'),
    **configlib.group('model', layers.REGULARISERS),
    **configlib.group('model', vectors.FIELDS),
    'data.name': Field('conll2003', 'the dataset; files: data.train, '
                       'data.valid, data.test', choices=(
                           *builders.registered('tag'), 'files')),
    'data.column': Field('ner', "the tag column: a dataset's column name; "
                         'for files its number (0 = the word), or for conllu '
                         'also a field name (upos, xpos)'),
    'data.features': Field('', 'extra input columns, comma-separated'),
    'data.format': Field('conll', 'name=files: the files\' format',
                         choices=tagged.FORMATS),
    **readers.file_fields('data.format\'s columns'),
    'data.lowercase': Field(False, 'lower-case the words the word '
                            'embeddings read'),
    'data.zero_digits': Field(True, 'every digit becomes 0 for the word '
                              'embeddings'),
    'data.min_freq': Field(1, 'rarer words are <unk>', at_least=1),
    'data.max_word_length': Field(20, 'characters read per word', at_least=1),
    **configlib.group('data', pipelines.SENTENCE_FIELDS, batch_size=32),
    **configlib.group('train', training.FIELDS, optimizer='adam',
                      learning_rate=2e-3, clip_norm=5.0, schedule='cosine',
                      num_epochs=30),
}


_INPUTS = ('tokens', 'lengths', 'features', 'chars', 'char_lengths', 'vectors')


class TagTask(training.SentenceTask):
  """Tagging as a `training.Task`. The loss is the CRF's
  -log p(tags | sentence) (or the softmax's token cross-entropy), reported
  per token; evaluation decodes (Viterbi or argmax) and scores token
  accuracy and span precision/recall/F1."""

  def __init__(self, config, sentences, workdir: str, vocabs=None):
    del workdir
    dc = config.data
    self.config = config
    self.vocabs = (vocabs if vocabs is not None
                   else tagged.build_vocabs(sentences, dc))
    words, self.tags = self.vocabs['vocab'], self.vocabs['tags']
    m = config.model
    self.model = models.Tagger(
        vocab_size=len(words), num_tags=len(self.tags),
        feature_vocab_sizes=tuple(
            len(v) for v in tagged.feature_vocabs(self.vocabs, dc)),
        char_vocab_size=len(self.vocabs['chars']) if m.char_hidden_size else 0,
        unk_id=words.unk_id, **vectors.module_fields(m))
    self.pretrained = vectors.make(m, words.itos,
                                   tagged.all_words(sentences, dc))
    self.scheme = metrics.chunk_scheme(self.tags.itos)
    self.pad = words.stoi[vocab_lib.PAD]
    self.data, self.batches = {}, {}
    for split, split_sentences in (sentences or {}).items():
      self.add_split(split, split_sentences)
    # Compiled once per batch shape for every split.
    self.predict_tags = jax.jit(lambda params, inputs: self.decode(
        params, self.emissions(params, inputs), inputs['lengths']))

  def add_split(self, split: str, sentences):
    """Encodes and batches [(words, tags, feature columns)]."""
    dc = self.config.data
    self.data[split] = d = tagged.Encoded(sentences, self.vocabs, dc,
                                          self.pretrained, split)
    self.batches[split] = pipelines.TaggedBatches(
        d.ids, d.tags,
        dc.batch_size if split == 'train' else dc.eval_batch_size,
        pad_id=self.pad, features=d.features,
        chars=d.chars if self.config.model.char_hidden_size else None,
        max_word_length=dc.max_word_length, seed=self.config.seed,
        bucket_width=dc.bucket_width, vectors=self.pretrained)

  def describe(self) -> str:
    dc = self.config.data
    return (f'{dc.name} ({dc.column}): {len(self.vocabs["vocab"]):,} words, '
            f'{len(self.vocabs["chars"])} characters, {len(self.tags)} tags; '
            'sentences ' + ', '.join(f'{s} {len(d.ids):,}'
                                     for s, d in self.data.items()))

  def inputs(self, batch):
    """The model's inputs out of a batch."""
    return {k: batch[k] for k in _INPUTS if k in batch}

  def init_params(self, rng):
    params = models.init_params(
        self.model, rng, **self.inputs(self.batches['train'].batch(0, 0)))
    return vectors.initialise(self.pretrained, params)

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

  def derived_metrics(self, m):
    if 'chunks' not in m:
      return {}
    precision, recall, f1 = metrics.precision_recall_f1(*m['chunks'])
    return {'precision': precision, 'recall': recall, 'f1': f1}


class Tagging(experiment.Experiment):
  """Read a sentence, emit one tag per word."""
  NAME = 'tag'
  DEFAULT_PRESET = 'conll2003_ner_bilstm_crf'
  FIELDS = FIELDS
  # `word gold predicted` per token, a blank line after each sentence: what
  # conlleval reads.
  PREDICTION_FILES = ('{split}_predictions.conll',)
  SWEEP_METRICS = ('valid/f1', 'test/f1', 'test/accuracy')

  def make_task(self, config, data, workdir, vocabs=None):
    return TagTask(config, data, workdir, vocabs)

  def predict_batch(self, task, params, batch, rng):
    """Each row's predicted tag ids, as long as its sentence."""
    del rng
    tags = np.asarray(task.predict_tags(params, task.inputs(batch)))
    return [row[:n] for row, n in zip(tags, batch['lengths'])]

  def validate(self, config):
    """What the declarations cannot say: fields that constrain each other."""
    layers.check_fields(config)
    vectors.check(config)
    if not config.data.column:
      raise InputError('config field data.column: name the tag column')

  def load_data(self, config):
    return tagged.load_splits(config.data)

  def write_outputs(self, task: TagTask, params, predictions, directory: str) -> dict:
    """Per split, `word gold predicted` per token of each predicted sentence
    (spaces inside a word become underscores, as conlleval needs)."""
    del params
    names = task.tags.itos
    for split, predicted in predictions.items():
      data = task.data[split]
      name = self.PREDICTION_FILES[0].format(split=split)
      with open(os.path.join(directory, name), 'w', encoding='utf-8') as f:
        for words, gold, guess in zip(data.words, data.tags, predicted):
          if guess is None:
            continue
          for w, g, p in zip(words, gold, guess):
            f.write(f'{w.replace(" ", "_")} {names[g]} {names[p]}\n')
          f.write('\n')
    return vectors.summary(task.pretrained)

  def exports(self, task: TagTask, params) -> dict:
    """`predict`: tag ids of padded word ids (models.tagger)."""
    return tagger.exports(task.model, params, task.pad)

  def predict(self, task: TagTask, params, lines: list[str]) -> list[dict]:
    """The words and their tags, for each line of space-separated words
    (each written `word|feature|...` when the model reads feature columns);
    printed `word/TAG ...`."""
    sentences = tagged.parse_inputs(lines, task.config.data,
                                    placeholder_tag=task.tags.itos[0])
    task.add_split('input', sentences)
    predicted = driver.predict_split(self, task, params, 'input')
    return [{'words': words, 'tags': [task.tags.itos[t] for t in tags]}
            for (words, _, _), tags in zip(sentences, predicted)]

  def format_prediction(self, record) -> str:
    return ' '.join(map('/'.join, zip(record['words'], record['tags'])))
