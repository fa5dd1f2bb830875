"""Text classification (many-to-one): read a sentence, emit one label.

Default: a BiLSTM with attention pooling on GLUE's SST-2,
`python launch.py --experiment=classify` (the `sst2_bilstm` preset).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import driver
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import plots
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.data import builders
from rnn_jax.data import labelled
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vectors
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError
from rnn_jax.models import classifier

FIELDS = {
    **configlib.run_fields('classify', None),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      'num_layers', 'bidirectional', 'activation',
                      *layers.RUN_FIELDS),
    'model.readout': Field('attention', 'how the outputs become one vector',
                           choices=models.READOUTS),
    'model.attention_size': Field(0, 'attention readout: 0 = hidden_size',
                                  at_least=0),
    'model.mlp_size': Field(256, 'the MLP before the labels (0: linear '
                            'readout)', at_least=0),
    'model.embed_size': Field(300, 'word embeddings', at_least=1),
    'model.dropout': configlib.fraction(0.5, 'between layers and in the '
                                        'MLP'),
    'model.embed_dropout': configlib.fraction(0.5, 'on the embeddings'),
    'model.word_dropout': configlib.fraction(0.1, 'a token becomes <unk> '
                                             'with this probability'),
    **configlib.group('model', layers.REGULARISERS),
    **configlib.group('model', vectors.FIELDS),
    'data.name': Field('sst2', 'the dataset; files: data.train, data.valid, '
                       'data.test', choices=(*builders.registered('classify'),
                                             'files')),
    'data.tokenizer': Field('whitespace', "kim: Kim (2014)'s clean-up",
                            choices=pipelines.TOKENIZERS),
    'data.lowercase': Field(True, 'lower-case the text'),
    'data.min_freq': Field(1, 'rarer words are <unk>', at_least=1),
    'data.max_length': Field(0, '>0: truncate longer sentences', at_least=0),
    **configlib.group('data', pipelines.SENTENCE_FIELDS),
    **driver.CV_FIELDS,
    'data.valid_as_test': Field(False, 'the valid split is the reported one '
                                "(GLUE SST-2's dev set): it becomes test, "
                                'and valid is carved off train'),
    **readers.file_fields('label<TAB>text lines'),
    'data.header': Field('auto', 'a first line of column names; auto: one '
                         'that no later line repeats', choices=readers.HEADERS),
    **configlib.group('train', training.FIELDS, optimizer='adam',
                      learning_rate=1e-3, clip_norm=5.0, schedule='cosine'),
}


class ClassifyTask(training.SentenceTask):
  """Classification as a `training.Task`."""

  def __init__(self, config, pairs, workdir: str, vocabs=None):
    del workdir
    dc = config.data
    self.config = config
    self.vocabs = (vocabs if vocabs is not None
                   else labelled.build_vocabs(pairs, dc))
    vocab, self.labels = self.vocabs['vocab'], self.vocabs['labels']
    self.num_classes = len(self.labels)
    self.model = models.Classifier(
        vocab_size=len(vocab), num_classes=self.num_classes,
        unk_id=vocab.unk_id, **vectors.module_fields(config.model))
    self.pretrained = vectors.make(config.model, vocab.itos,
                                   labelled.all_words(pairs, dc))
    self.pad = vocab.stoi[vocab_lib.PAD]
    self.data, self.batches = {}, {}
    for split, split_pairs in (pairs or {}).items():
      self.add_split(split, split_pairs)
    self.probabilities = jax.jit(
        lambda params, batch: jax.nn.softmax(self.logits(params, batch)))

  def add_split(self, split: str, pairs):
    """Encodes and batches (text, label) pairs ('' for no label)."""
    dc = self.config.data
    self.data[split] = data = labelled.Encoded(pairs, self.vocabs, dc,
                                               self.pretrained, split)
    if data.ids:
      self.batches[split] = pipelines.BucketedBatches(
          data.ids, data.labels,
          dc.batch_size if split == 'train' else dc.eval_batch_size,
          pad_id=self.pad, seed=self.config.seed,
          bucket_width=dc.bucket_width, max_length=dc.max_length,
          vectors=self.pretrained)

  def describe(self) -> str:
    return (f'{self.config.data.name}: vocab {len(self.vocabs["vocab"])}, '
            f'{self.num_classes} classes, examples '
            + ', '.join(f'{s} {len(d.ids):,}' for s, d in self.data.items()))

  def init_params(self, rng):
    batch = self.batches['train'].batch(0, 0)
    params = models.init_params(self.model, rng, batch['tokens'],
                                batch['lengths'], batch.get('vectors'))
    return vectors.initialise(self.pretrained, params)

  def logits(self, params, batch, rng=None, train=False):
    rngs = {'dropout': rng} if train else {}
    return self.model.apply({'params': params}, batch['tokens'],
                            batch['lengths'], batch.get('vectors'),
                            train=train, rngs=rngs)

  def loss(self, params, batch, carry, rng, train):
    logits = self.logits(params, batch, rng, train)
    weights = batch['weights']  # 0 on the rows that only fill the batch
    nll, count = metrics.cross_entropy(logits, batch['labels'], weights)
    correct, _ = metrics.accuracy(logits, batch['labels'], weights)
    confusion = jnp.einsum(
        'b,bi,bj->ij', weights,
        jax.nn.one_hot(batch['labels'], self.num_classes),
        jax.nn.one_hot(logits.argmax(-1), self.num_classes))
    stats = {'loss': nll, 'count': count, 'accuracy': correct,
             'confusion': confusion}
    return nll / jnp.maximum(count, 1.0), (stats, carry)

  def eval_batches(self, split):
    if split not in self.batches or not self.data[split].labelled:
      return iter(())   # no labels (GLUE's test): nothing to score
    return super().eval_batches(split)

  def derived_metrics(self, m):
    if 'confusion' not in m:
      return {}
    return {'macro_f1': metrics.macro_f1(m['confusion'])}


class Classification(experiment.Experiment):
  """Read a sentence, emit one label."""
  NAME = 'classify'
  DEFAULT_PRESET = None   # the declared defaults: sst2_bilstm with Adam
  FIELDS = FIELDS
  # gold<TAB>predicted<TAB>text, the text escaped (readers.escape_field).
  PREDICTION_FILES = ('{split}_predictions.tsv',)
  SWEEP_METRICS = ('valid/accuracy', 'test/accuracy')
  CROSS_VALIDATES = True

  def make_task(self, config, data, workdir, vocabs=None):
    return ClassifyTask(config, data, workdir, vocabs)

  def predict_batch(self, task, params, batch, rng):
    """Each row's class probabilities [C]."""
    del rng
    return np.asarray(task.probabilities(params, batch))

  def validate(self, config):
    """What the declarations cannot say: fields that constrain each other."""
    layers.check_fields(config)
    vectors.check(config)

  def load_data(self, config):
    return labelled.load_splits(config.data)

  def write_outputs(self, task: ClassifyTask, params, predictions,
                    directory: str) -> dict:
    """Per split: gold, predicted label and text of each predicted example
    in the split's order (gold '' where labels are hidden), and the
    confusion matrix when labels are known."""
    del params
    names = task.labels.itos
    for split, probs in predictions.items():
      if split not in task.batches:
        continue
      data = task.data[split]
      done = [i for i, p in enumerate(probs) if p is not None]
      predicted = [int(probs[i].argmax()) for i in done]
      name = self.PREDICTION_FILES[0].format(split=split)
      with open(os.path.join(directory, name), 'w', encoding='utf-8') as f:
        for i, p in zip(done, predicted):
          gold = names[data.labels[i]] if data.labels[i] >= 0 else ''
          text = readers.escape_field(data.texts[i])
          f.write(f'{gold}\t{names[p]}\t{text}\n')
      if data.labelled:
        confusion = np.zeros((len(names), len(names)), np.int64)
        np.add.at(confusion, (data.labels[done], predicted), 1)
        plots.confusion(
            os.path.join(directory, 'plots', f'confusion_{split}.png'),
            confusion, names, f'{task.config.data.name} {split}')
    return vectors.summary(task.pretrained)

  def exports(self, task: ClassifyTask, params) -> dict:
    """`predict`: probabilities of padded ids (models.classifier)."""
    return classifier.exports(task.model, params, task.pad)

  def predict(self, task: ClassifyTask, params, texts: list[str]) -> list[dict]:
    """Each text's label, its probability, and every label's."""
    task.add_split('input', [(t, '') for t in texts])
    for number, ids in enumerate(task.data['input'].ids, 1):
      if not len(ids):
        raise InputError(f'input line {number}: no words in {texts[number - 1]!r}')
    return [{'label': task.labels.itos[int(p.argmax())],
             'probability': float(p.max()),
             'probabilities': dict(zip(task.labels.itos, p.tolist()))}
            for p in driver.predict_split(self, task, params, 'input')]

  def format_prediction(self, record) -> str:
    return f'{record["label"]}\t{record["probability"]:.4f}'
