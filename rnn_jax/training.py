"""The one training loop that every experiment uses.

An experiment describes itself as a `Task` (data, model, loss); this module
owns everything else: the jitted train and eval steps, the optimizer,
logging (stdout with ETA, metrics.jsonl, TensorBoard, PNG curves),
checkpoints and exact resumption.

Resumption is exact because everything a step depends on is a function of
the restored `TrainState`: the batch is `task.train_batch(epoch, index)` with
`(epoch, index) = divmod(step, steps_per_epoch)`, the dropout key is
`fold_in(rng, step)`, and the recurrent carry and running epoch sums are part
of the state.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import math
import os
import re
import signal
import threading
import time
from typing import Any, Iterable, Protocol

from absl import logging as absl_logging
import flax
import ml_collections
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from rnn_jax import configlib
from rnn_jax import distributed
from rnn_jax import gradflow
from rnn_jax import optim
from rnn_jax import records
from rnn_jax.configlib import Field
from rnn_jax.data import vectors
from rnn_jax.errors import InputError

Batch = dict[str, np.ndarray]


class Task(Protocol):
  """What an experiment gives the loop.

  `loss` returns `(mean loss to differentiate, (stats, new_carry))`, where
  stats are sums: always 'loss' (summed loss) and 'count' (what it was summed
  over); any other sum is reported divided by 'count'.
  """
  steps_per_epoch: int
  reset_carry_every_batch: bool

  def init_params(self, rng: jax.Array) -> Any: ...
  def initial_carry(self, split: str) -> Any: ...
  def loss(self, params, batch: Batch, carry, rng, train: bool): ...
  def train_batch(self, epoch: int, index: int) -> Batch: ...
  def eval_batches(self, split: str) -> Iterable[Batch]: ...
  def num_tokens(self, batch: Batch) -> int: ...
  def derived_metrics(self, metrics: dict[str, float]) -> dict[str, float]: ...


class SentenceTask:
  """The `Task` defaults of an experiment over padded sentence batches
  (`self.batches`: split -> `pipelines.BucketedBatches`): no state flows
  from batch to batch, and a batch's tokens are its `lengths`."""
  reset_carry_every_batch = True
  batches: dict

  @property
  def steps_per_epoch(self) -> int:
    return (self.batches['train'].steps_per_epoch if 'train' in self.batches
            else 0)

  def initial_carry(self, split):
    del split
    return ()

  def train_batch(self, epoch, index):
    return self.batches['train'].batch(epoch, index)

  def eval_batches(self, split):
    return self.batches[split].eval_batches()

  def num_tokens(self, batch):
    return int(batch['lengths'].sum())


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array        # raw uint32 key, so that it checkpoints as an array
  carry: Any            # recurrent state handed from batch k to batch k+1
  epoch_loss: jax.Array  # sums over the current epoch's training batches
  epoch_count: jax.Array
  nonfinite: jax.Array   # updates skipped for a non-finite loss or gradient
  nonfinite_run: jax.Array  # ... of them in a row, up to this step
  # Weight averaging (`train.average`; () when off): the averaged params,
  # and for NT-ASGD the step its average starts from (-1: not yet).
  average: Any
  average_since: jax.Array
  # The monitored validation metric (`train.select_by`, else valid/loss) at
  # each evaluation so far, lower is better (negated where higher is), NaN
  # beyond `num_evals`: model selection, early stopping and NT-ASGD's
  # trigger read it, and a resumed run has it back.
  monitor: jax.Array
  monitor_steps: jax.Array  # the step of each, -1 beyond num_evals
  num_evals: jax.Array


class Interrupted(Exception):
  """SIGTERM or SIGINT arrived: a checkpoint was written, the run can resume."""

  def __init__(self, signum: int, step: int, workdir: str):
    super().__init__(f'{signal.Signals(signum).name} at step {step}: '
                     f'checkpoint saved in {workdir}; rerun the same command '
                     'to resume')
    self.signum = signum


AVERAGES = ('none', 'ema', 'ntasgd')
# The `train` group every experiment shares (configlib.group('train',
# FIELDS, ...) sets an experiment's own defaults).
FIELDS = {
    'optimizer': Field('sgd', 'the update rule', choices=optim.OPTIMIZERS),
    'learning_rate': Field(1.0, 'the peak rate of the schedule', at_least=0),
    'momentum': Field(0.0, 'sgd: heavy-ball momentum', at_least=0),
    'weight_decay': Field(0.0, 'L2 for sgd and adam, decoupled for adamw',
                          at_least=0),
    'clip_norm': Field(1.0, 'clip the gradient to this global norm (0: off)',
                       at_least=0),
    'schedule': Field('constant', 'the learning rate over training (cosine: '
                      'to 0 at the end)', choices=optim.SCHEDULES),
    'decay_after_epochs': Field(0, 'step schedule: epochs at the full rate',
                                at_least=0),
    'decay_rate': Field(1.0, 'step schedule: x this every epoch after them',
                        above=0),
    'warmup_steps': Field(0, 'linear warm-up from 0', at_least=0),
    'num_epochs': Field(10, 'epochs; the schedule spans them', at_least=1),
    'max_steps': Field(0, '>0: stop (and evaluate) after this many steps; '
                       'the schedule still spans num_epochs', at_least=0),
    'log_every_steps': Field(100, 'a training record every this many steps',
                             at_least=1),
    'eval_every_epochs': Field(1, 'evaluate every this many epochs (and at '
                               'the end)', at_least=1),
    'eval_steps': Field(0, '>0: evaluate only the first batches of a split',
                        at_least=0),
    'checkpoint_every_steps': Field(1000, 'a checkpoint every this many '
                                    'steps (and at the end)', at_least=0),
    'checkpoints_to_keep': Field(2, 'the newest checkpoints kept', at_least=1),
    'nonfinite_patience': Field(20, 'a non-finite loss or gradient skips '
                                'the update; this many in a row stop the run '
                                '(0: never)', at_least=0),
    'grad_flow_every_steps': Field(0, '>0: ||dL/dh_t|| of a fixed batch '
                                   'every this many steps (rnn_jax.gradflow)',
                                   at_least=0),
    'select_by': Field('', 'a valid/ metric: report and keep (in '
                       '<workdir>/best) the evaluation best by it; '
                       "'': the last step"),
    'early_stopping_patience': Field(0, '>0: stop after this many '
                                     'evaluations without improving '
                                     'select_by', at_least=0),
    'average': Field('none', 'evaluate, report and export averaged '
                     'weights: an EMA, or NT-ASGD (Merity et al. 2018)',
                     choices=AVERAGES),
    'ema_decay': configlib.fraction(0.999, 'ema: avg <- d avg + (1 - d) '
                                    'params, each step'),
    'ntasgd_nonmono': Field(5, 'ntasgd: start averaging once an evaluation '
                            'is worse than the best of those more than this '
                            'many before', at_least=1),
}

# Room for the monitored metric's evaluations (a fixed size, so that a run
# resumed with more epochs still fits its checkpoint).
MAX_EVALS = 4096
# Metrics of which less is better; of any other, more is.
_LOWER_IS_BETTER = re.compile(r'loss|perplexity|bits_per|mse|mae|error')


def validate_config(config):
  """What the `train` fields' declarations cannot say on their own."""
  tc = config.train
  if tc.select_by and not tc.select_by.startswith('valid/'):
    raise InputError(f'config field train.select_by={tc.select_by!r}: select '
                     'by a validation metric, valid/<name> (never by test)')
  if tc.early_stopping_patience and not tc.select_by:
    raise InputError('config field train.early_stopping_patience: name the '
                     'metric it watches in train.select_by')


# ----------------------------------------------------------------------------
# Output: stdout, metrics.jsonl, TensorBoard, plots.


class MetricWriter:
  """Appends one JSON object per record to metrics.jsonl and TensorBoard."""

  def __init__(self, workdir: str, resume_step: int):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.active = distributed.is_primary()  # one writer per run
    if not self.active:
      return
    records.keep(self.path, resume_step)
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self.tb = SummaryWriter(os.path.join(workdir, 'tensorboard'),
                            purge_step=resume_step + 1)

  def write(self, step: int, metrics: dict[str, float]):
    if not self.active:
      return
    record = {'step': step, **{k: float(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')
    for k, v in metrics.items():
      if math.isfinite(float(v)):
        self.tb.add_scalar(k, float(v), step)

  def close(self):
    if self.active:
      self.tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
  return records.read(os.path.join(workdir, 'metrics.jsonl'))


def plot_curves(workdir: str):
  """plots/<metric>.png: train and valid curves against the step."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = read_metrics(workdir)
  os.makedirs(os.path.join(workdir, 'plots'), exist_ok=True)
  names = sorted({k.split('/', 1)[1] for r in rows for k in r
                  if '/' in k and k.split('/', 1)[0] in ('train', 'valid')}
                 - {'num_targets'})
  for name in names:
    fig, ax = plt.subplots(figsize=(6, 4))
    for split in ('train', 'valid'):
      points = [(r['step'], r[f'{split}/{name}']) for r in rows
                if f'{split}/{name}' in r and math.isfinite(r[f'{split}/{name}'])]
      if points:
        ax.plot(*zip(*points), label=split, marker='o' if split == 'valid' else None)
    ax.set_xlabel('step')
    ax.set_ylabel(name)
    if name in ('perplexity', 'grad_norm'):
      ax.set_yscale('log')
    if ax.get_legend_handles_labels()[0]:
      ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, 'plots', f'{name}.png'), dpi=100)
    plt.close(fig)


class _Throughput:
  """Steady-state speed: time spent in train steps only, compilation,
  evaluation and checkpointing excluded."""

  def __init__(self):
    self.seconds, self.tokens, self.steps = 0.0, 0, 0
    self._since = None
    self._pending_tokens = self._pending_steps = 0

  def start(self):
    if self._since is None:
      self._since = time.time()

  def count(self, tokens: int):
    self._pending_tokens += tokens
    self._pending_steps += 1

  def stop(self, sync_on):
    """Waits for the device, then books the steps since `start`."""
    jax.block_until_ready(sync_on)
    if self._since is not None:
      self.seconds += time.time() - self._since
      self.tokens += self._pending_tokens
      self.steps += self._pending_steps
    self._since, self._pending_tokens, self._pending_steps = None, 0, 0

  @property
  def tokens_per_sec(self) -> float:
    return self.tokens / self.seconds if self.seconds else 0.0

  @property
  def seconds_per_step(self) -> float:
    return self.seconds / self.steps if self.steps else 0.0


def _format_seconds(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


_LOG_ORDER = ('loss', 'perplexity', 'bits_per_token', 'accuracy', 'grad_norm',
              'param_norm', 'learning_rate', 'tokens_per_sec')


def _format_metrics(metrics: dict[str, float]) -> str:
  names = sorted(metrics, key=lambda k: (
      _LOG_ORDER.index(k) if k in _LOG_ORDER else len(_LOG_ORDER), k))
  return ' '.join(f'{k} {metrics[k]:.4g}' for k in names)


# ----------------------------------------------------------------------------
# The loop.


def _zero():
  # A fresh buffer each call: the train step donates the whole state.
  return distributed.replicate(np.zeros((), np.float32))


def _eval_sums(task: Task, eval_step, params, split: str,
               max_batches: int = 0) -> dict[str, Any]:
  """The stats of `split` (or its first `max_batches`) summed, the carry
  flowing from batch to batch."""
  carry = distributed.shard(task.initial_carry(split))
  sums: dict[str, Any] = {}
  batches = task.eval_batches(split)
  if max_batches:
    batches = itertools.islice(batches, max_batches)
  for batch in batches:
    stats, carry = eval_step(params, distributed.shard(batch), carry)
    for k, v in jax.device_get(stats).items():
      sums[k] = sums.get(k, 0.0) + np.asarray(v, np.float64)
  return sums


def evaluate(task: Task, eval_step, params, split: str,
             max_batches: int = 0) -> dict[str, float]:
  """The metrics of `split` (or of its first `max_batches`)."""
  return summarize(task, _eval_sums(task, eval_step, params, split,
                                    max_batches))


def make_eval_step(task: Task):
  """The jitted `(params, batch, carry) -> (stats, carry)` of evaluation."""
  def eval_step(params, batch, carry):
    _, (stats, carry) = task.loss(params, batch, carry, None, False)
    return stats, carry
  return jax.jit(eval_step)


def evaluate_splits(task: Task, eval_step, params,
                    max_batches: int = 0) -> dict[str, float]:
  """The final metrics, 'valid/...' and 'test/...' (with `num_targets`, what
  the loss was averaged over), printed as they come: what a training run
  reports at its end and `--mode=eval` recomputes."""
  final = {}
  params = distributed.replicate(params)
  for split in ('valid', 'test'):
    sums = _eval_sums(task, eval_step, params, split, max_batches)
    metrics = summarize(task, sums)
    if metrics:
      metrics['num_targets'] = int(sums['count'])
      print(f'final {split} | {_format_metrics(metrics)}', flush=True)
    final.update({f'{split}/{k}': v for k, v in metrics.items()})
  return final


def summarize(task: Task, sums: dict[str, Any]) -> dict[str, float]:
  """Scalar sums become means over 'count'; array sums (a confusion matrix)
  are handed to `task.derived_metrics` as they are; scalars are returned."""
  sums = dict(sums)
  count = float(sums.pop('count', 0.0))
  if not count:
    return {}
  metrics = {k: float(v) / count if np.ndim(v) == 0 else v
             for k, v in sums.items()}
  metrics.update(task.derived_metrics(metrics))
  return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}


class _StopSignals:
  """Records SIGTERM / SIGINT instead of dying, so that the loop can write
  a checkpoint first; `restore` puts the previous handlers back."""

  def __init__(self):
    self.received = None
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)

  def _handle(self, signum, frame):
    del frame
    self.received = signum

  def restore(self):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def make_optimizer(tc, steps_per_epoch: int, freeze_embeddings: bool = False):
  """`(tx, schedule)` of a `train` config group. The schedule spans
  `num_epochs`; `max_steps` only stops a run early. `freeze_embeddings`
  leaves the word embedding table (`vectors.EMBEDDING`) as it is."""
  schedule = optim.make_schedule(
      tc.schedule, tc.learning_rate, steps_per_epoch,
      tc.num_epochs * steps_per_epoch,
      decay_after_epochs=tc.decay_after_epochs, decay_rate=tc.decay_rate,
      warmup_steps=tc.warmup_steps)
  tx = optim.make_optimizer(tc.optimizer, schedule, clip_norm=tc.clip_norm,
                            momentum=tc.momentum, weight_decay=tc.weight_decay)
  if freeze_embeddings:
    frozen = lambda path: tuple(getattr(k, 'key', k) for k in path[:2]) == (
        vectors.EMBEDDING)
    tx = optax.multi_transform(
        {'train': tx, 'frozen': optax.set_to_zero()},
        lambda params: jax.tree_util.tree_map_with_path(
            lambda path, _: 'frozen' if frozen(path) else 'train', params))
  return tx, schedule


def initial_state(task: Task, tx: optax.GradientTransformation,
                  seed: int, jit_init: bool = False,
                  average: str = 'none') -> TrainState:
  """Step 0, replicated over the `data` mesh but for the carry, which goes
  with the batch and is split like it. `jit_init` compiles the
  initialisation: faster for large models, but its values may differ from
  the eager ones in the last bit (an orthogonal init's QR), so runs use the
  eager one, which published numbers were measured with. `average` keeps a
  copy of the params to average (see `train.average`)."""
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed))
  init = jax.jit(task.init_params) if jit_init else task.init_params
  params = init(init_rng)
  state = distributed.replicate(TrainState(
      step=np.zeros((), np.int32), params=params, opt_state=tx.init(params),
      rng=train_rng, carry=None, epoch_loss=np.zeros((), np.float32),
      epoch_count=np.zeros((), np.float32), nonfinite=np.zeros((), np.int32),
      nonfinite_run=np.zeros((), np.int32),
      average=(() if average == 'none' else
               jax.tree.map(lambda x: np.array(x, copy=True), params)),
      average_since=np.full((), -1, np.int32),
      monitor=np.full((MAX_EVALS,), np.nan, np.float32),
      monitor_steps=np.full((MAX_EVALS,), -1, np.int32),
      num_evals=np.zeros((), np.int32)))
  return state.replace(carry=distributed.shard(task.initial_carry('train')))


def _averaged(state: TrainState, params, average: str, ema_decay: float):
  """The average after a step that produced `params` (see `train.average`):
  an exponential moving average, or NT-ASGD's mean of the iterates since
  `average_since` (the params themselves before it starts)."""
  if average == 'ema':
    return jax.tree.map(lambda a, p: ema_decay * a + (1 - ema_decay) * p,
                        state.average, params)
  if average == 'ntasgd':
    # Iterates averaged after this step: those of steps average_since ..
    # step + 1.
    n = (state.step + 2 - state.average_since).astype(jnp.float32)
    return jax.tree.map(
        lambda a, p: jnp.where(state.average_since >= 0, a + (p - a) / n, p),
        state.average, params)
  return state.average


def eval_params(state: TrainState):
  """The weights a run evaluates and keeps: the average when it averages."""
  return state.params if state.average == () else state.average


def make_train_step(task: Task, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, patience: int = 0,
                    average: str = 'none', ema_decay: float = 0.0):
  """The jitted `(state, batch) -> (state, metrics)` of training; the state
  is donated. `patience` > 0 makes `nonfinite_run` stick once it reaches
  it (the loop stops there); `average` and `ema_decay` as in `train`."""

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
      return task.loss(params, batch, state.carry, rng, True)

    (_, (stats, carry)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    grad_norm = optax.global_norm(grads)  # before clipping
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # A non-finite loss, gradient or updated parameter leaves params,
    # optimizer state, carry and the epoch sums as they were: nothing
    # non-finite is ever kept (or checkpointed).
    finite = (jnp.isfinite(stats['loss']) & jnp.isfinite(grad_norm)
              & jnp.isfinite(optax.global_norm(params)))
    keep = lambda new, old: jax.tree.map(
        lambda n, o: jnp.where(finite, n, o), new, old)
    params = keep(params, state.params)
    metrics = {
        'loss': stats['loss'] / stats['count'],
        'grad_norm': grad_norm,
        'param_norm': optax.global_norm(params),
        'learning_rate': schedule(state.step),
    }
    skipped = 1 - finite.astype(jnp.int32)
    state = state.replace(
        step=state.step + 1, params=params,
        opt_state=keep(opt_state, state.opt_state),
        average=keep(_averaged(state, params, average, ema_decay),
                     state.average),
        # Truncated BPTT: the next batch starts from this state, but its
        # gradient stops here (PyTorch's repackage_hidden).
        carry=keep(jax.lax.stop_gradient(carry), state.carry),
        epoch_loss=state.epoch_loss + jnp.where(finite, stats['loss'], 0.0),
        epoch_count=state.epoch_count + jnp.where(finite, stats['count'], 0.0),
        nonfinite=state.nonfinite + skipped,
        # Sticky once it reaches the patience, so that the loop, which
        # looks only when it logs, still sees it.
        nonfinite_run=jnp.where(
            patience and state.nonfinite_run >= patience, state.nonfinite_run,
            (state.nonfinite_run + skipped) * skipped))
    metrics['nonfinite'] = state.nonfinite
    return state, metrics

  return jax.jit(train_step, donate_argnums=0)

def train_and_evaluate(task: Task, config, workdir: str) -> dict[str, Any]:
  """Trains `task` as `config.train` says and returns the final summary.

  Resumes from the newest checkpoint in `<workdir>/checkpoints` if any.
  """
  wall_start = time.time()
  tc = config.train
  spe = task.steps_per_epoch
  total_steps = min(tc.num_epochs * spe, tc.max_steps or tc.num_epochs * spe)
  tx, schedule = make_optimizer(
      tc, spe, config.model.get('freeze_embeddings', False))

  patience = tc.nonfinite_patience
  train_step = make_train_step(task, tx, schedule, patience, tc.average,
                               tc.ema_decay)
  eval_step = make_eval_step(task)

  state = initial_state(task, tx, config.seed, average=tc.average)
  num_params = sum(x.size for x in jax.tree.leaves(state.params))
  monitor = _Monitor(task, eval_step, tc, workdir)

  manager = ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=tc.checkpoints_to_keep, create=True,
          enable_async_checkpointing=False))
  if manager.latest_step() is not None:
    restored_step = manager.latest_step()
    try:
      with _quiet_absl():
        state = manager.restore(restored_step,
                                args=ocp.args.StandardRestore(state))
    except (ValueError, TypeError, KeyError) as e:
      raise InputError(f'the checkpoint at step {restored_step} in {workdir} '
                       'does not fit this model (shapes or structure differ: '
                       f'{str(e).splitlines()[0][:200]}); use another '
                       '--workdir') from None
    print(f'resumed from step {restored_step} in {workdir}', flush=True)
  start_step = int(state.step)
  writer = MetricWriter(workdir, start_step)
  grad_flow = gradflow.Recorder(task, workdir, tc.grad_flow_every_steps)
  if grad_flow.active:
    records.keep(grad_flow.path, start_step)
    if start_step == 0:
      grad_flow.record(0, state.params)

  def save(step: int):
    if manager.latest_step() != step:
      manager.save(step, args=ocp.args.StandardSave(state))

  if start_step == 0:
    monitor.check_name(state)
  devices = distributed.mesh().size
  print(f'{num_params:,} parameters; {total_steps} steps ({spe} per epoch)'
        + (f'; batches split over {devices} devices in '
           f'{jax.process_count()} process(es)' if devices > 1 else ''),
        flush=True)
  timer = _Throughput()
  shapes = set()
  signals = _StopSignals()
  stopped = None
  early_stop = False
  try:
    for step in range(start_step, total_steps):
      epoch, index = divmod(step, spe)
      if index == 0:
        state = state.replace(
            carry=distributed.shard(task.initial_carry('train')),
            epoch_loss=_zero(), epoch_count=_zero())
      elif task.reset_carry_every_batch:
        state = state.replace(
            carry=distributed.shard(task.initial_carry('train')))
      batch = task.train_batch(epoch, index)
      # A batch of a shape not seen before compiles: keep it out of the timing.
      shape = tuple(np.shape(x) for x in jax.tree.leaves(batch))
      compiles = shape not in shapes
      if compiles:
        timer.stop(state.step)
        shapes.add(shape)
      state, metrics = train_step(state, distributed.shard(batch))
      last_step = step + 1
      if compiles:
        jax.block_until_ready(state.step)
      else:
        timer.count(task.num_tokens(batch))

      end_of_epoch = last_step % spe == 0
      is_last = last_step == total_steps
      logged = last_step % tc.log_every_steps == 0 or end_of_epoch or is_last
      if logged:
        timer.stop(state.step)
        metrics = jax.device_get(metrics)
        record = {f'train/{k}': v for k, v in metrics.items()}
        record['train/tokens_per_sec'] = timer.tokens_per_sec
        record.update({f'train/{k}': v for k, v in task.derived_metrics(
            {'loss': float(metrics['loss'])}).items()})
        writer.write(last_step, record)
        print(f'step {last_step}/{total_steps} epoch {epoch + 1} | '
              f'{_format_metrics({k.split("/")[1]: v for k, v in record.items()})}'
              f' | {1000 * timer.seconds_per_step:.1f} ms/step | ETA '
              f'{_format_seconds(timer.seconds_per_step * (total_steps - last_step))}',
              flush=True)
        if end_of_epoch and (epoch + 1) % tc.eval_every_epochs == 0 and not is_last:
          valid = evaluate(task, eval_step, eval_params(state), 'valid',
                           tc.eval_steps)
          writer.write(last_step, {f'valid/{k}': v for k, v in valid.items()})
          print(f'epoch {epoch + 1} valid | {_format_metrics(valid)}',
                flush=True)
          state, early_stop = monitor.update(state, valid, last_step)
      # Every record of a step is written before its checkpoint: a run
      # killed after the checkpoint resumes past the step.
      if grad_flow.active and last_step % grad_flow.every == 0:
        timer.stop(state.step)
        grad_flow.record(last_step, state.params)
      if tc.checkpoint_every_steps and last_step % tc.checkpoint_every_steps == 0:
        timer.stop(state.step)
        save(last_step)
      timer.start()

      if signals.received is not None:
        save(last_step)
        manager.wait_until_finished()
        writer.close()
        raise Interrupted(signals.received, last_step, workdir)
      if logged and early_stop:
        print(f'stopping at step {last_step}: {tc.select_by} has not improved '
              f'in {tc.early_stopping_patience} evaluations '
              '(train.early_stopping_patience)', flush=True)
        stopped = 'early_stopping'
        break
      if logged and patience and int(state.nonfinite_run) >= patience:
        print(f'stopping at step {last_step}: {patience} non-finite losses '
              'or gradients in a row (train.nonfinite_patience)', flush=True)
        stopped = 'nonfinite'
        break
  finally:
    signals.restore()
  if int(state.nonfinite):
    print(f'{int(state.nonfinite)} updates skipped for a non-finite loss or '
          'gradient', flush=True)

  last_step = int(state.step)
  if tc.select_by and not monitor.seen(state, last_step):
    # The last step is a candidate too.
    valid = evaluate(task, eval_step, eval_params(state), 'valid',
                     tc.eval_steps)
    writer.write(last_step, {f'valid/{k}': v for k, v in valid.items()})
    print(f'step {last_step} valid | {_format_metrics(valid)}', flush=True)
    state, _ = monitor.update(state, valid, last_step)
  save(last_step)
  manager.wait_until_finished()
  selected_step, params = monitor.selected(state, last_step)

  summary: dict[str, Any] = {}
  train = summarize(task, {'loss': float(state.epoch_loss),
                           'count': float(state.epoch_count)})
  summary.update({f'train/{k}': v for k, v in train.items()})
  if selected_step != last_step:
    print(f'selected step {selected_step} by {tc.select_by}', flush=True)
  final = evaluate_splits(task, eval_step, params, tc.eval_steps)
  # With selection the valid metrics are already in metrics.jsonl, at the
  # steps they were measured.
  writer.write(last_step, {k: v for k, v in final.items()
                           if not (tc.select_by and k.startswith('valid/'))})
  writer.close()
  summary.update(final)
  summary.update({
      'selected_step': selected_step,
      'selected_by': tc.select_by or 'last step',
      'train/tokens_per_sec': timer.tokens_per_sec or None,
      'steps': int(state.step),
      'nonfinite_steps': int(state.nonfinite),
      'stopped': stopped,
      **({'average_since': int(state.average_since)
          if int(state.average_since) >= 0 else None}
         if tc.average == 'ntasgd' else {}),
      'num_params': int(num_params),
      'wall_seconds': time.time() - wall_start,
  })
  if distributed.is_primary():
    plot_curves(workdir)
    grad_flow.plot()
  # Generation, decoding and predictions after training run in each process
  # on its own copy of the parameters.
  return {'summary': summary,
          'state': state.replace(params=distributed.host_local(params))}


class _Monitor:
  """Watches the validation metric `train.select_by` (valid/loss without
  it) at each evaluation. Its history lives in the `TrainState` (so a
  resumed run decides as the uninterrupted one would); a better value saves
  the evaluated weights to <workdir>/best (one checkpoint); it decides
  early stopping and when NT-ASGD starts averaging."""

  def __init__(self, task: Task, eval_step, tc, workdir: str):
    self.task, self.eval_step, self.tc = task, eval_step, tc
    self.name = (tc.select_by or 'valid/loss').split('/', 1)[1]
    self.sign = 1.0 if _LOWER_IS_BETTER.search(self.name) else -1.0
    self.best = None
    if tc.select_by:
      self.best = ocp.CheckpointManager(
          os.path.abspath(os.path.join(workdir, 'best')),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=1, create=True, enable_async_checkpointing=False))

  def check_name(self, state: TrainState):
    """Refuses an unknown select_by before training (one batch)."""
    if not self.tc.select_by:
      return
    names = evaluate(self.task, self.eval_step, eval_params(state), 'valid', 1)
    if self.name not in names:
      raise InputError(f'config field train.select_by={self.tc.select_by!r}: '
                       'this experiment reports '
                       + ', '.join(f'valid/{k}' for k in sorted(names)))

  @staticmethod
  def _history(state: TrainState) -> tuple[np.ndarray, np.ndarray]:
    """(values, steps) of the evaluations so far."""
    n = int(state.num_evals)
    values, steps = jax.device_get((state.monitor, state.monitor_steps))
    return np.asarray(values)[:n], np.asarray(steps)[:n]

  def _best_index(self, values: np.ndarray) -> int | None:
    finite = np.flatnonzero(np.isfinite(values))
    return int(finite[np.argmin(values[finite])]) if finite.size else None

  def seen(self, state: TrainState, step: int) -> bool:
    """Whether the evaluation of `step` is already in the history."""
    steps = self._history(state)[1]
    return steps.size > 0 and steps[-1] == step

  def update(self, state: TrainState, valid: dict[str, float],
             step: int) -> tuple[TrainState, bool]:
    """Records `valid` (the metrics at `step`); returns the new state and
    whether early stopping says stop."""
    values, steps = self._history(state)
    value = np.float32(self.sign * valid.get(self.name, np.nan))
    n = values.size
    if n == MAX_EVALS:
      raise InputError(f'more than {MAX_EVALS} evaluations: raise '
                       'train.eval_every_epochs')
    since = int(state.average_since)
    if self.tc.average == 'ntasgd' and since < 0 and n > self.tc.ntasgd_nonmono:
      earlier = values[:-self.tc.ntasgd_nonmono]
      earlier = earlier[np.isfinite(earlier)]
      if earlier.size and value > earlier.min():
        since = step
        print(f'step {step}: {self.name} worse than {self.tc.ntasgd_nonmono} '
              'evaluations ago: averaging the weights from here (NT-ASGD)',
              flush=True)
    values, steps = np.append(values, value), np.append(steps, step)
    room = state.monitor.shape[0]
    state = state.replace(
        monitor=distributed.replicate(np.pad(
            values, (0, room - n - 1), constant_values=np.nan)),
        monitor_steps=distributed.replicate(np.pad(
            steps.astype(np.int32), (0, room - n - 1), constant_values=-1)),
        num_evals=distributed.replicate(np.int32(n + 1)),
        average_since=distributed.replicate(np.int32(since)))
    best = self._best_index(values)
    if self.best is not None and best == n:
      for old in self.best.all_steps():
        self.best.delete(old)
      self.best.save(step, args=ocp.args.StandardSave(
          {'params': eval_params(state)}))
      self.best.wait_until_finished()
    patience = self.tc.early_stopping_patience
    stop = bool(patience) and best is not None and n - best >= patience
    return state, stop

  def selected(self, state: TrainState, last_step: int):
    """(step, params) that the run reports: the best evaluation's with
    `select_by`, else the last step's."""
    values, steps = self._history(state)
    best = self._best_index(values) if self.best is not None else None
    if best is None or steps[best] == last_step:
      return last_step, eval_params(state)
    step = int(steps[best])
    restored = self.best.restore(step, args=ocp.args.StandardRestore(
        {'params': eval_params(state)}))
    return step, restored['params']


_LOCKS: dict[str, Any] = {}   # workdir -> open lock file, for the process
# Model fields that may change between a run and its resumption.
_SHAPELESS = re.compile(r'dropout|variational|unroll|remat_chunk|dtype|cudnn')


def write_config(workdir: str, config):
  """Claims `workdir` for this process and writes config.json there.

  Refuses (InputError) a workdir that another live run holds, and one whose
  checkpoints were trained with different `model.*` fields (resuming them
  would not fit; dropout rates, `variational`, `unroll`, `remat_chunk`,
  `dtype` and `cudnn` may change). Every experiment calls this before writing anything else.
  """
  os.makedirs(workdir, exist_ok=True)
  key = os.path.realpath(workdir)
  # The other processes of a multi-process run share the primary's workdir.
  if key not in _LOCKS and distributed.is_primary():
    lock = open(os.path.join(workdir, '.lock'), 'a')
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      lock.close()
      raise InputError(f'{workdir} is in use by another run') from None
    _LOCKS[key] = lock
  path = os.path.join(workdir, 'config.json')
  if os.path.isfile(path) and os.path.isdir(os.path.join(workdir,
                                                         'checkpoints')):
    with open(path) as f:
      saved = configlib.flatten(ml_collections.ConfigDict(json.load(f)))
    for field, value in configlib.flatten(config).items():
      if (field.startswith('model.') and field in saved
          and saved[field] != value and not _SHAPELESS.search(field)):
        raise InputError(
            f'{workdir} holds checkpoints of a model with {field}='
            f'{saved[field]!r}; this run asks for {value!r} (use another '
            '--workdir, or the same value to resume)')
  if distributed.is_primary():
    with open(path, 'w') as f:
      f.write(config.to_json_best_effort(indent=2))


def write_summary(workdir: str, summary: dict[str, Any]) -> dict[str, Any]:
  """summary.json, with non-finite floats (a diverged run) as null."""
  def clean(v):
    if isinstance(v, float) and not math.isfinite(v):
      return None
    if isinstance(v, dict):
      return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
      return [clean(x) for x in v]
    return v
  summary = clean(summary)
  if distributed.is_primary():
    with open(os.path.join(workdir, 'summary.json'), 'w') as f:
      json.dump(summary, f, indent=2)
  return summary


@contextlib.contextmanager
def _quiet_absl():
  """Orbax logs a failed read at ERROR before raising; the raised error
  becomes the one line the user sees."""
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.FATAL)
  try:
    yield
  finally:
    absl_logging.set_verbosity(verbosity)


def load_params(workdir: str, step: int | None = None):
  """`(params, step)` of a run's weights: those it reported (the checkpoint
  <workdir>/best that `train.select_by` chose, else the newest), or those of
  the given step; averaged weights where the run averaged them."""
  steps = {}
  with _quiet_absl():
    for folder in ('checkpoints', 'best'):
      directory = os.path.abspath(os.path.join(workdir, folder))
      if os.path.isdir(directory):
        manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(create=False))
        steps.update(dict.fromkeys(manager.all_steps(), manager))
        if folder == 'best' and step is None and manager.all_steps():
          step = max(manager.all_steps())
    if not steps:
      raise InputError(f'no checkpoints in {workdir}: nothing trained there '
                       'yet')
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise InputError(f'--checkpoint={step}: {workdir} holds the checkpoints '
                       f'of steps {", ".join(map(str, sorted(steps)))}')
    try:
      restored = steps[step].restore(step, args=ocp.args.StandardRestore())
    except Exception as e:  # pylint: disable=broad-except
      raise InputError(f'the checkpoint of step {step} in {workdir} cannot be '
                       f'read ({type(e).__name__}: '
                       f'{str(e).splitlines()[0][:200]})') from None
  params = restored.get('average') or restored['params']
  return jax.device_get(params), step
