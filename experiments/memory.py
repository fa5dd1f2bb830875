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

Recall and state tracking, T steps each, the loss and accuracy on the
marked steps only (`recall_mask`):
- mqar: multi-query associative recall (Arora et al. 2023, Zoology):
  `num_pairs` key-value pairs k1 v1 k2 v2 ... (distinct keys from the lower
  half of the vocabulary, values from the upper half), then blanks (0) with
  `num_queries` keys at random later steps; at each queried key, the output
  is the value paired with it. Chance: 2 / vocab_size.
- induction: random tokens with a trigger token (the vocabulary's last)
  once at a random step and again at the last; there, the output is the
  token that followed the first trigger (the induction head of Olsson et
  al. 2022, as the Mamba paper sets it). Chance: 1 / (vocab_size - 2).
- modular_sum: digits 0..m-1, the output at each step the sum of the digits
  so far mod m (m = 2: parity), a state-tracking task that diagonal linear
  recurrences with decays in (0, 1) cannot do at every length (Grazzi et al.
  2025). Chance: 1 / m.
With `data.eval_lengths`, the final model is also tested at other lengths
(length extrapolation): `test/accuracy@L` in summary.json and
plots/extrapolation.png.

`python launch.py --experiment=memory` runs the adding problem at T = 200
with an LSTM (the `adding_t200_lstm` preset).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import plots
from rnn_jax import records
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError

TASKS = ('adding', 'copy', 'selective_copy', 'mqar', 'induction',
         'modular_sum')
# The tasks scored (loss and accuracy) on their marked steps only, whose
# length may change at test time.
RECALL = ('mqar', 'induction', 'modular_sum')
SPLITS = ('train', 'valid', 'test')


FIELDS = {
    **configlib.run_fields('memory', 'adding_t200_lstm'),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      'num_layers', 'activation', 'block', *layers.RUN_FIELDS,
                      hidden_size=128),
    'data.name': Field('adding', 'the task', choices=TASKS),
    'data.delay': Field(200, "T: the sequences' length (the copy tasks: "
                        'the distance between symbols and recall)',
                        at_least=2),
    'data.alphabet': Field(8, 'copy tasks: symbols 1..alphabet', at_least=2),
    'data.length': Field(10, 'copy tasks: symbols to recall', at_least=1),
    'data.vocab_size': Field(256, 'mqar, induction: the tokens', at_least=4),
    'data.num_pairs': Field(16, 'mqar: key-value pairs per sequence',
                            at_least=1),
    'data.num_queries': Field(0, 'mqar: keys queried per sequence (0: as '
                              'many as pairs)', at_least=0),
    'data.modulus': Field(2, 'modular_sum: m (2: parity)', at_least=2),
    'data.eval_lengths': Field('', 'mqar, induction, modular_sum: '
                               'comma-separated lengths at which the final '
                               'model is also tested (test/accuracy@L)'),
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


def example(dc, seed: int, split: str, index: int, length: int = 0):
  """Example `index` of `split`: (inputs, targets), a pure function of
  (the data config, seed, split, index) and the length T (`length`, else
  data.delay). Adding: inputs [T, 2] float32 (value, marker), target a
  float32 scalar. The others: inputs and targets [L] int32 (the copy tasks:
  0 the blank, `alphabet` + 1 the cue)."""
  rng = np.random.default_rng([seed, SPLITS.index(split), index])
  t = length or dc.delay
  if dc.name == 'adding':
    values = rng.uniform(0.0, 1.0, t)
    first, second = rng.integers(0, t // 2), rng.integers(t // 2, t)
    marks = np.zeros(t)
    marks[[first, second]] = 1.0
    return (np.stack([values, marks], -1).astype(np.float32),
            np.float32(values[first] + values[second]))
  if dc.name in RECALL:
    return _RECALL_TASKS[dc.name](dc, rng, t)
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


def _mqar(dc, rng, t):
  """Pairs, then blanks with queried keys; the targets are the values at
  the queries, 0 elsewhere."""
  half, pairs = dc.vocab_size // 2, dc.num_pairs
  queries = dc.num_queries or pairs
  keys = rng.choice(np.arange(1, half), pairs, replace=False)
  values = rng.integers(half, dc.vocab_size, pairs)
  inputs = np.zeros(t, np.int32)
  inputs[0:2 * pairs:2], inputs[1:2 * pairs:2] = keys, values
  asked = rng.choice(pairs, queries, replace=queries > pairs)
  steps = np.sort(rng.choice(np.arange(2 * pairs, t), queries,
                             replace=False))
  inputs[steps] = keys[asked]
  targets = np.zeros(t, np.int32)
  targets[steps] = values[asked]
  return inputs, targets


def _induction(dc, rng, t):
  """Tokens 1..V-2; the trigger V-1 at a random step and the last; the
  target, at the last step, the token after the first trigger."""
  trigger = dc.vocab_size - 1
  inputs = rng.integers(1, trigger, t).astype(np.int32)
  first = rng.integers(0, t - 2)
  inputs[first] = inputs[-1] = trigger
  targets = np.zeros(t, np.int32)
  targets[-1] = inputs[first + 1]
  return inputs, targets


def _modular_sum(dc, rng, t):
  inputs = rng.integers(0, dc.modulus, t).astype(np.int32)
  return inputs, (np.cumsum(inputs) % dc.modulus).astype(np.int32)


_RECALL_TASKS = {'mqar': _mqar, 'induction': _induction,
                 'modular_sum': _modular_sum}


def recall_mask(dc, targets: np.ndarray) -> np.ndarray:
  """[..., T] float32, 1 on the steps a token task is scored on: the copy
  tasks' last `length`, mqar's queries (its values are never 0),
  induction's last step, every step of modular_sum."""
  mask = np.zeros(targets.shape, np.float32)
  if dc.name == 'mqar':
    mask[targets != 0] = 1.0
  elif dc.name == 'modular_sum':
    mask[:] = 1.0
  else:
    mask[..., -(1 if dc.name == 'induction' else dc.length):] = 1.0
  return mask


def eval_lengths(dc) -> list[int]:
  """data.eval_lengths as ints (InputError naming the field otherwise)."""
  text = dc.eval_lengths.strip()
  try:
    lengths = [int(x) for x in text.split(',')] if text else []
  except ValueError:
    lengths = [0]
  if any(n < 3 for n in lengths):
    raise InputError(f'config field data.eval_lengths={dc.eval_lengths!r}: '
                     'expected comma-separated lengths of at least 3 steps')
  return lengths


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
    self.num_symbols = {'adding': 1, 'mqar': dc.vocab_size,
                        'induction': dc.vocab_size,
                        'modular_sum': dc.modulus}.get(
                            dc.name, dc.alphabet + 2)  # blank, symbols, cue
    self.model = models.MemoryModel(
        outputs=self.num_symbols,
        one_hot_size=0 if self.adding else self.num_symbols,
        every_step=not self.adding, **config.model)
    self.steps_per_epoch = dc.train_size // dc.batch_size
    self.fixed = {split: self._batch(split, 0, size) for split, size in
                  (('valid', dc.valid_size), ('test', dc.test_size))}

  def _batch(self, split: str, start: int, size: int, length: int = 0):
    dc = self.config.data
    inputs, targets = zip(*(example(dc, self.config.seed, split, i, length)
                            for i in range(start, start + size)))
    batch = {'inputs': np.stack(inputs), 'targets': np.stack(targets)}
    if not self.adding:  # the steps whose symbols are to be recalled
      batch['recall'] = recall_mask(dc, batch['targets'])
    return batch

  def describe(self) -> str:
    dc = self.config.data
    if self.adding:
      floor = 'answering 1: MSE 0.167'
    elif dc.name in RECALL:
      chance = {'mqar': 1 / (dc.vocab_size - dc.vocab_size // 2),
                'induction': 1 / (dc.vocab_size - 2),
                'modular_sum': 1 / dc.modulus}[dc.name]
      floor = f'chance accuracy {chance:.2%}'
    else:
      steps = dc.delay + (2 if dc.name == 'copy' else 1) * dc.length
      floor = (f'knowing only the layout: {dc.length * math.log(dc.alphabet) / steps:.4f}'
               ' nats per step')
    return (f'{dc.name}, T={dc.delay}: {dc.train_size:,} fresh examples per '
            f'epoch, valid {dc.valid_size:,}, test {dc.test_size:,}; {floor}')

  def init_params(self, rng):
    return models.init_params(self.model, rng,
                              self.fixed['valid']['inputs'][:1])

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
      scored = (batch['recall'] if self.config.data.name in RECALL
                else None)  # the copy tasks: every step
      nll, count = metrics.cross_entropy(outputs, batch['targets'], scored)
      stats = {'loss': nll, 'count': count, 'recall': _correct(outputs,
                                                               batch)}
    return stats['loss'] / count, (stats, carry)

  def derived_metrics(self, m):
    if 'recall' not in m:
      return {}
    return {'accuracy': m['recall'][0] / max(m['recall'][1], 1.0)}

  def accuracy_at(self, params, length: int) -> float:
    """Accuracy on the test examples at `length` steps, in batches of
    about data.eval_batch_size * data.delay tokens."""
    dc = self.config.data
    rows = max(1, dc.eval_batch_size * dc.delay // length)
    correct = jax.jit(lambda p, b: _correct(
        self.model.apply({'params': p}, b['inputs']), b))
    total = np.zeros(2)
    for start in range(0, dc.test_size, rows):
      total += np.asarray(correct(params, self._batch(
          'test', start, min(rows, dc.test_size - start), length)))
    return float(total[0] / max(total[1], 1.0))


def _correct(outputs, batch):
  """[recalled correctly, to recall]: an array, summed over batches and
  turned into accuracy by `derived_metrics` (not reported itself)."""
  correct = (outputs.argmax(-1) == batch['targets']) * batch['recall']
  return jnp.stack([correct.sum(), batch['recall'].sum()])


# When a task counts as solved: a valid metric past a threshold.
SOLVED = {'adding': ('valid/mse', 0.01),
          **{name: ('valid/accuracy', 0.99) for name in TASKS[1:]}}


def solved_step(name: str, records: list[dict]) -> int | None:
  """The first step whose valid metric passed `SOLVED[name]`, or None."""
  key, threshold = SOLVED[name]
  higher = metrics.higher_is_better(key)
  steps = [r['step'] for r in records if key in r
           and (r[key] >= threshold if higher else r[key] <= threshold)]
  return min(steps) if steps else None


class Memory(experiment.Experiment):
  """How far back a state carries one thing (adding, copy, selective copy),
  how many associations it recalls (mqar, induction), and whether it tracks
  a state (modular_sum); at other lengths too."""
  NAME = 'memory'
  DEFAULT_PRESET = 'adding_t200_lstm'
  FIELDS = FIELDS
  SWEEP_METRICS = ('test/mse', 'test/accuracy', 'solved_step')
  # summary.json's test/accuracy@L (data.eval_lengths) join the sweep
  # tables that name them.

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
    lengths = eval_lengths(dc)
    if lengths and dc.name not in RECALL:
      raise InputError(f'config field data.eval_lengths: {dc.name} is tested '
                       f'at its own length only; the tasks of {RECALL} take '
                       'other lengths')
    if dc.name == 'mqar':
      if dc.num_pairs > dc.vocab_size // 2 - 1:
        raise InputError(f'config field data.num_pairs={dc.num_pairs}: mqar '
                         'draws distinct keys from 1..vocab_size/2-1 '
                         f'(data.vocab_size={dc.vocab_size}); give at most '
                         f'{dc.vocab_size // 2 - 1}')
      need = 2 * dc.num_pairs + (dc.num_queries or dc.num_pairs)
      for field, t in [('data.delay', dc.delay)] + [
          ('data.eval_lengths', n) for n in lengths]:
        if t < need:
          raise InputError(f'config field {field}: mqar with {dc.num_pairs} '
                           'pairs and their queries needs sequences of at '
                           f'least {need} steps, got {t}')

  def load_data(self, config):
    del config  # generated, see `example`
    return None

  def write_outputs(self, task, params, predictions, directory: str) -> dict:
    """test/accuracy@L at each of data.eval_lengths (and
    plots/extrapolation.png), `state_size` (the floats of every layer's
    state, `cells.Cell.state_size`) and `solved_step` (see `SOLVED`) from a
    training run's metrics.jsonl."""
    del predictions
    dc = task.config.data
    out = {f'test/accuracy@{n}': task.accuracy_at(params, n)
           for n in eval_lengths(dc)}
    if out:
      plots.lines(os.path.join(directory, 'plots', 'extrapolation.png'),
                  {task.config.model.cell: [
                      (int(k.split('@')[1]), v) for k, v in out.items()]},
                  xlabel=f'test length (trained at {dc.delay})',
                  ylabel='test accuracy', title=dc.name, logy=False)
    stack = task.model.make_stack(parent=None)
    out['state_size'] = (stack.num_layers * stack.num_directions
                         * stack.make_cell().state_size())
    history = records.read_metrics(directory)
    if history:  # not an evaluation of a checkpoint, which has none
      out['solved_step'] = solved_step(dc.name, history)
    return out
