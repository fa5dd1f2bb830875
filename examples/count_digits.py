"""Count one digit among random digits: an experiment of one's own.

Each example is `data.length` random digits, its label how many of them are
`data.digit`. python launch.py --experiment=count_digits.py --workdir=W
"""

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError

FIELDS = {
    **configlib.run_fields('count_digits', None),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      cell='gru', hidden_size=64),
    'data.digit': Field(7, 'the digit to count', at_least=0, at_most=9),
    'data.length': Field(12, 'digits per example', at_least=1),
    'data.train_size': Field(4096, 'training examples', at_least=1),
    'data.eval_size': Field(512, 'valid and test examples, each', at_least=1),
    'data.batch_size': Field(64, 'examples per batch', at_least=1),
    **configlib.group('train', training.FIELDS, optimizer='adam',
                      learning_rate=0.01, num_epochs=4, log_every_steps=32),
}


class Counter(nn.Module):
  cell: str
  hidden_size: int
  num_classes: int

  @nn.compact
  def __call__(self, digits):                                # [B, T] ids
    xs = nn.Embed(10, 16)(digits)                            # [B, T, 16]
    ys, _ = layers.RNNStack(self.cell, self.hidden_size)(xs)  # [B, T, H]
    return nn.Dense(self.num_classes)(ys[:, -1])             # [B, classes]


class CountTask:
  """What the training loop asks of a task (rnn_jax.training.Task)."""
  reset_carry_every_batch = True   # each batch starts from a zero state

  def __init__(self, config, data):
    self.config, self.data, self.vocabs = config, data, {}
    dc = config.data
    self.model = Counter(config.model.cell, config.model.hidden_size,
                         dc.length + 1)
    self.steps_per_epoch = dc.train_size // dc.batch_size

  def describe(self):
    dc = self.config.data
    return f'count the {dc.digit}s among {dc.length} digits'

  def init_params(self, rng):
    digits = jnp.zeros((1, self.config.data.length), jnp.int32)
    return self.model.init(rng, digits)['params']

  def initial_carry(self, split):
    return ()

  def train_batch(self, epoch, index):   # a pure function of (epoch, index)
    digits, counts = self.data['train']
    size = self.config.data.batch_size
    order = np.random.default_rng([self.config.seed, epoch]).permutation(
        len(counts))[index * size:(index + 1) * size]
    return {'digits': digits[order], 'counts': counts[order]}

  def eval_batches(self, split):
    digits, counts = self.data[split]
    size = self.config.data.batch_size
    for start in range(0, len(counts), size):
      yield {'digits': digits[start:start + size],
             'counts': counts[start:start + size]}

  def num_tokens(self, batch):
    return batch['digits'].size

  def loss(self, params, batch, carry, rng, train):
    logits = self.model.apply({'params': params}, batch['digits'])
    nll, count = metrics.cross_entropy(logits, batch['counts'])
    correct, _ = metrics.accuracy(logits, batch['counts'])
    stats = {'loss': nll, 'count': count, 'accuracy': correct}   # sums
    return nll / count, (stats, carry)

  def derived_metrics(self, m):
    return {}


class CountDigits(experiment.Experiment):
  """Count one digit among random digits (many-to-one)."""
  NAME = 'count_digits'
  FIELDS = FIELDS
  SWEEP_METRICS = ('valid/accuracy', 'test/accuracy')

  def load_data(self, config):
    dc, data = config.data, {}
    for i, split in enumerate(('train', 'valid', 'test')):
      size = dc.train_size if split == 'train' else dc.eval_size
      rng = np.random.default_rng([config.seed, i])
      digits = rng.integers(0, 10, (size, dc.length)).astype(np.int32)
      data[split] = (digits, (digits == dc.digit).sum(1).astype(np.int32))
    return data

  def make_task(self, config, data, workdir, vocabs=None):
    return CountTask(config, data)

  def predict(self, task, params, lines):
    length = task.config.data.length
    for number, line in enumerate(lines, 1):
      if len(line) != length or not set(line) <= set('0123456789'):
        raise InputError(f'input line {number}: give {length} digits')
    digits = jnp.asarray([[int(c) for c in line] for line in lines])
    logits = task.model.apply({'params': params}, digits)
    return [{'count': int(k)} for k in logits.argmax(-1)]
