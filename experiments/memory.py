"""Long-range memory: tasks whose answer depends on inputs a known number of
steps back, generated from the seed (no files).

- adding: T steps of (value ~ U(0, 1), marker); exactly two markers, one in
  each half of the sequence; the target is the sum of the two marked values,
  read after the last step (Hochreiter & Schmidhuber 1997; Le, Jaitly &
  Hinton 2015). Metric: MSE; always answering 1 scores 1/6 ~ 0.167.
- copy: `length` symbols from 1..`alphabet`, T - 1 blanks (0), a cue
  (`alphabet` + 1) and `length` more blanks; the target is blank everywhere
  but the last `length` steps, which repeat the symbols (Arjovsky, Shah &
  Bengio 2016). Metrics: cross-entropy per step (a model that only knows the
  layout scores length * log(alphabet) / (T + 2 * length)) and accuracy on
  the symbols to recall.
- selective_copy: the `length` symbols sit at random steps among T blanks
  and must be recalled in order after T steps, one cue per symbol (Gu & Dao
  2023). The same metrics.

`python launch.py --experiment=memory` runs the adding problem at T = 200
with an LSTM (the `adding_t200_lstm` preset).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import records
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError

TASKS = ('adding', 'copy', 'selective_copy')
SPLITS = ('train', 'valid', 'test')


FIELDS = {
    **configlib.run_fields('memory', 'adding_t200_lstm'),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      'num_layers', 'activation', *layers.RUN_FIELDS,
                      hidden_size=128),
    'data.name': Field('adding', 'the task', choices=TASKS),
    'data.delay': Field(200, "T: the adding problem's length; the copy "
                        "tasks' distance between symbols and recall",
                        at_least=2),
    'data.alphabet': Field(8, 'copy tasks: symbols 1..alphabet', at_least=2),
    'data.length': Field(10, 'copy tasks: symbols to recall', at_least=1),
    'data.batch_size': Field(50, 'sequences per training batch', at_least=1),
    'data.eval_batch_size': Field(500, 'sequences per evaluation batch',
                                  at_least=1),
    'data.train_size': Field(10_000, 'fresh examples per epoch (never '
                             'repeated)', at_least=1),
    'data.valid_size': Field(1000, 'the fixed valid set: examples '
                             '0..size-1 of the split', at_least=1),
    'data.test_size': Field(1000, 'the fixed test set, likewise',
                            at_least=1),
    # The LSTM left the adding problem's plateau after 1,000 steps at 0.01;
    # at 1e-3, not in 3,800.
    **configlib.group('train', training.FIELDS, optimizer='adam',
                      learning_rate=0.01, clip_norm=1.0, num_epochs=30),
}


def example(dc, seed: int, split: str, index: int):
  """Example `index` of `split`: (inputs, targets), a pure function of
  (the data config, seed, split, index). Adding: inputs [T, 2] float32
  (value, marker), target a float32 scalar. Copy tasks: inputs and targets
  [L] int32, 0 the blank, `alphabet` + 1 the cue."""
  rng = np.random.default_rng([seed, SPLITS.index(split), index])
  t = dc.delay
  if dc.name == 'adding':
    values = rng.uniform(0.0, 1.0, t)
    first, second = rng.integers(0, t // 2), rng.integers(t // 2, t)
    marks = np.zeros(t)
    marks[[first, second]] = 1.0
    return (np.stack([values, marks], -1).astype(np.float32),
            np.float32(values[first] + values[second]))
  symbols = rng.integers(1, dc.alphabet + 1, dc.length)
  cue = dc.alphabet + 1
  if dc.name == 'copy':
    inputs = np.zeros(t + 2 * dc.length, np.int32)
    inputs[:dc.length] = symbols
    inputs[dc.length + t - 1] = cue
  else:  # selective_copy
    inputs = np.zeros(t + dc.length, np.int32)
    inputs[np.sort(rng.choice(t, dc.length, replace=False))] = symbols
    inputs[t:] = cue
  targets = np.zeros_like(inputs)
  targets[-dc.length:] = symbols
  return inputs, targets


class MemoryTask:
  """A memory task as a `training.Task`: fresh training examples at every
  step, fixed valid and test sets."""
  reset_carry_every_batch = True

  def __init__(self, config, data, workdir: str, vocabs=None):
    del data, workdir
    self.config = config
    self.vocabs = vocabs if vocabs is not None else {}
    dc = config.data
    self.adding = dc.name == 'adding'
    self.num_symbols = dc.alphabet + 2  # blank, symbols, cue
    self.model = models.MemoryModel(
        outputs=1 if self.adding else self.num_symbols,
        one_hot_size=0 if self.adding else self.num_symbols,
        every_step=not self.adding, **config.model)
    self.steps_per_epoch = dc.train_size // dc.batch_size
    self.fixed = {split: self._batch(split, 0, size) for split, size in
                  (('valid', dc.valid_size), ('test', dc.test_size))}

  def _batch(self, split: str, start: int, size: int):
    inputs, targets = zip(*(example(self.config.data, self.config.seed, split,
                                    i) for i in range(start, start + size)))
    batch = {'inputs': np.stack(inputs), 'targets': np.stack(targets)}
    if not self.adding:  # the steps whose symbols are to be recalled
      recall = np.zeros(batch['targets'].shape, np.float32)
      recall[:, -self.config.data.length:] = 1.0
      batch['recall'] = recall
    return batch

  def describe(self) -> str:
    dc = self.config.data
    if self.adding:
      floor = 'answering 1: MSE 0.167'
    else:
      steps = dc.delay + (2 if dc.name == 'copy' else 1) * dc.length
      floor = (f'knowing only the layout: {dc.length * math.log(dc.alphabet) / steps:.4f}'
               ' nats per step')
    return (f'{dc.name}, T={dc.delay}: {dc.train_size:,} fresh examples per '
            f'epoch, valid {dc.valid_size:,}, test {dc.test_size:,}; {floor}')

  def init_params(self, rng):
    return self.model.init(rng, self.fixed['valid']['inputs'][:1])['params']

  def initial_carry(self, split):
    del split
    return ()

  def train_batch(self, epoch, index):
    size = self.config.data.batch_size
    return self._batch('train', (epoch * self.steps_per_epoch + index) * size,
                       size)

  def eval_batches(self, split):
    fixed, size = self.fixed[split], self.config.data.eval_batch_size
    for start in range(0, len(fixed['inputs']), size):
      yield {k: v[start:start + size] for k, v in fixed.items()}

  def num_tokens(self, batch):
    return int(np.prod(batch['inputs'].shape[:2]))

  def loss(self, params, batch, carry, rng, train):
    del rng, train
    outputs = self.model.apply({'params': params}, batch['inputs'])
    if self.adding:
      squared = jnp.sum((outputs[:, 0] - batch['targets']) ** 2)
      count = jnp.float32(batch['targets'].shape[0])
      stats = {'loss': squared, 'count': count, 'mse': squared}
    else:
      nll, count = metrics.cross_entropy(outputs, batch['targets'])
      correct = (outputs.argmax(-1) == batch['targets']) * batch['recall']
      # An array: summed over batches, turned into accuracy by
      # derived_metrics, not reported itself.
      stats = {'loss': nll, 'count': count, 'recall': jnp.stack(
          [correct.sum(), batch['recall'].sum()])}
    return stats['loss'] / count, (stats, carry)

  def derived_metrics(self, m):
    if 'recall' not in m:
      return {}
    return {'accuracy': m['recall'][0] / max(m['recall'][1], 1.0)}


# When a task counts as solved: a valid metric past a threshold.
SOLVED = {'adding': ('valid/mse', 0.01), 'copy': ('valid/accuracy', 0.99),
          'selective_copy': ('valid/accuracy', 0.99)}


def solved_step(name: str, records: list[dict]) -> int | None:
  """The first step whose valid metric passed `SOLVED[name]`, or None."""
  key, threshold = SOLVED[name]
  higher = metrics.higher_is_better(key)
  steps = [r['step'] for r in records if key in r
           and (r[key] >= threshold if higher else r[key] <= threshold)]
  return min(steps) if steps else None


class Memory(experiment.Experiment):
  """How far back a state carries one thing: adding, copy, selective copy."""
  NAME = 'memory'
  DEFAULT_PRESET = 'adding_t200_lstm'
  FIELDS = FIELDS
  SWEEP_METRICS = ('test/mse', 'test/accuracy', 'solved_step')

  def make_task(self, config, data, workdir, vocabs=None):
    return MemoryTask(config, data, workdir, vocabs)

  def validate(self, config):
    """What the declarations cannot say: fields that constrain each other."""
    layers.check_fields(config)
    dc = config.data
    if dc.train_size < dc.batch_size:
      raise InputError(f'config field data.train_size={dc.train_size}: at '
                       f'least one batch (data.batch_size={dc.batch_size})')
    if dc.name == 'selective_copy' and dc.length > dc.delay:
      raise InputError(f'config field data.length={dc.length}: selective_copy '
                       f'places the symbols among the {dc.delay} steps of '
                       'data.delay; give at most that many')

  def load_data(self, config):
    del config  # generated, see `example`
    return None

  def write_outputs(self, task, params, predictions, directory: str) -> dict:
    """`solved_step` (see `SOLVED`) from a training run's metrics.jsonl."""
    del params, predictions
    history = records.read_metrics(directory)
    if not history:  # an evaluation of a checkpoint: no history here
      return {}
    return {'solved_step': solved_step(task.config.data.name, history)}
