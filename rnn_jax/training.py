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

import os
import signal
import threading
import time
from typing import Any, Iterable, Protocol

import jax
import numpy as np
import orbax.checkpoint as ocp

from rnn_jax import configlib
from rnn_jax import distributed
from rnn_jax import evaluation
from rnn_jax import gradflow
from rnn_jax import optim
from rnn_jax import records
from rnn_jax import selection
from rnn_jax import steps
from rnn_jax import workdir as workdir_lib
from rnn_jax.configlib import Field
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


# ----------------------------------------------------------------------------
# The loop.


def _zero():
  # A fresh buffer each call: the train step donates the whole state.
  return distributed.replicate(np.zeros((), np.float32))


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


def train_and_evaluate(task: Task, config, workdir: str,
                       evaluate_more=None) -> dict[str, Any]:
  """Trains `task` as `config.train` says; returns {'summary': the final
  metrics and facts of the run, 'state': the final `TrainState` with the
  reported params, host-local}.

  Resumes from the newest checkpoint in `<workdir>/checkpoints` if any.
  `evaluate_more(params, split) -> metrics`, when given, adds the metrics
  it `names` (computed from predictions) to every validation.
  """
  wall_start = time.time()
  run = _Run(task, config, workdir, evaluate_more)
  signals = _StopSignals()
  stopped = None
  try:
    for step in range(run.start_step, run.total_steps):
      logged = run.step(step)
      if signals.received is not None:
        run.save(step + 1)
        run.close()
        raise Interrupted(signals.received, step + 1, workdir)
      stopped = logged and run.stop_reason()
      if stopped:
        break
  finally:
    signals.restore()
  return run.finish(stopped or None, wall_start)


class _Run:
  """The moving parts of one training run: its state, steps, records,
  checkpoints and the validation metric it watches (`selection`)."""

  def __init__(self, task: Task, config, workdir: str, evaluate_more):
    self.task, self.workdir, self.evaluate_more = task, workdir, evaluate_more
    tc = self.tc = config.train
    self.spe = spe = task.steps_per_epoch
    self.total_steps = min(tc.num_epochs * spe,
                           tc.max_steps or tc.num_epochs * spe)
    tx, schedule = optim.from_config(
        tc, spe, config.model.get('freeze_embeddings', False))
    self.train_step = steps.make_train_step(task, tx, schedule,
                                      tc.nonfinite_patience, tc.average,
                                      tc.ema_decay)
    self.eval_step = steps.make_eval_step(task)
    self.state = steps.initial_state(task, tx, config.seed, average=tc.average)
    self.num_params = sum(x.size for x in jax.tree.leaves(self.state.params))
    self.monitor = selection.Monitor(tc, workdir)
    self.manager = ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, 'checkpoints')),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=tc.checkpoints_to_keep, create=True,
            enable_async_checkpointing=False))
    self._restore()
    self.start_step = int(self.state.step)
    self.writer = records.MetricWriter(workdir, self.start_step)
    self.grad_flow = gradflow.Recorder(task, workdir, tc.grad_flow_every_steps)
    if self.grad_flow.active:
      records.keep(self.grad_flow.path, self.start_step)
      if self.start_step == 0:
        self.grad_flow.record(0, self.state.params)
    devices = distributed.mesh().size
    print(f'{self.num_params:,} parameters; {self.total_steps} steps ({spe} '
          'per epoch)' + (f'; batches split over {devices} devices in '
                          f'{jax.process_count()} process(es)'
                          if devices > 1 else ''), flush=True)
    self.timer = _Throughput()
    self.shapes = set()
    self.early_stop = False

  def _restore(self):
    step = self.manager.latest_step()
    if step is None:
      return
    try:
      with workdir_lib.quiet_absl():
        self.state = self.manager.restore(
            step, args=ocp.args.StandardRestore(self.state))
    except (ValueError, TypeError, KeyError) as e:
      raise InputError(f'the checkpoint at step {step} in {self.workdir} '
                       'does not fit this model (shapes or structure differ: '
                       f'{str(e).splitlines()[0][:200]}); use another '
                       '--workdir') from None
    print(f'resumed from step {step} in {self.workdir}', flush=True)

  def save(self, step: int):
    if self.manager.latest_step() != step:
      self.manager.save(step, args=ocp.args.StandardSave(self.state))

  def close(self):
    self.manager.wait_until_finished()
    self.writer.close()

  def step(self, step: int) -> bool:
    """Trains step `step` (0-based), then logs, evaluates, records gradient
    flow and checkpoints as the config says; returns whether it logged."""
    task, tc, timer = self.task, self.tc, self.timer
    epoch, index = divmod(step, self.spe)
    if index == 0:
      self.state = self.state.replace(
          carry=distributed.shard(task.initial_carry('train')),
          epoch_loss=_zero(), epoch_count=_zero())
    elif task.reset_carry_every_batch:
      self.state = self.state.replace(
          carry=distributed.shard(task.initial_carry('train')))
    batch = task.train_batch(epoch, index)
    # A batch of a shape not seen before compiles: keep it out of the timing.
    shape = tuple(np.shape(x) for x in jax.tree.leaves(batch))
    compiles = shape not in self.shapes
    if compiles:
      timer.stop(self.state.step)
      self.shapes.add(shape)
    self.state, metrics = self.train_step(self.state, distributed.shard(batch))
    last_step = step + 1
    if compiles:
      jax.block_until_ready(self.state.step)
    else:
      timer.count(task.num_tokens(batch))
    end_of_epoch = last_step % self.spe == 0
    is_last = last_step == self.total_steps
    logged = last_step % tc.log_every_steps == 0 or end_of_epoch or is_last
    if logged:
      timer.stop(self.state.step)
      self._log(last_step, epoch, jax.device_get(metrics))
      if (end_of_epoch and (epoch + 1) % tc.eval_every_epochs == 0
          and not is_last):
        self.early_stop = self.validate(last_step, f'epoch {epoch + 1}')
    # Every record of a step is written before its checkpoint: a run
    # killed after the checkpoint resumes past the step.
    if self.grad_flow.active and last_step % self.grad_flow.every == 0:
      timer.stop(self.state.step)
      self.grad_flow.record(last_step, self.state.params)
    if (tc.checkpoint_every_steps
        and last_step % tc.checkpoint_every_steps == 0):
      timer.stop(self.state.step)
      self.save(last_step)
    timer.start()
    return logged

  def _log(self, last_step: int, epoch: int, metrics: dict):
    timer = self.timer
    record = {f'train/{k}': v for k, v in metrics.items()}
    record['train/tokens_per_sec'] = timer.tokens_per_sec
    record.update({f'train/{k}': v for k, v in self.task.derived_metrics(
        {'loss': float(metrics['loss'])}).items()})
    self.writer.write(last_step, record)
    eta = timer.seconds_per_step * (self.total_steps - last_step)
    print(f'step {last_step}/{self.total_steps} epoch {epoch + 1} | '
          f'{records.format_metrics({k.split("/")[1]: v for k, v in record.items()})}'
          f' | {1000 * timer.seconds_per_step:.1f} ms/step | ETA '
          f'{_format_seconds(eta)}', flush=True)

  def validate(self, step: int, what: str) -> bool:
    """Evaluates valid (and `evaluate_more`'s metrics) at `step`, records
    it and hands it to the monitor; returns whether early stopping says
    stop."""
    params = steps.eval_params(self.state)
    valid = evaluation.evaluate(self.task, self.eval_step, params, 'valid',
                     self.tc.eval_steps)
    if self.evaluate_more is not None:
      valid.update(self.evaluate_more(distributed.host_local(params),
                                      'valid'))
    self.writer.write(step, {f'valid/{k}': v for k, v in valid.items()})
    print(f'{what} valid | {records.format_metrics(valid)}', flush=True)
    self.state, stop = self.monitor.update(self.state, valid, step, params)
    return stop

  def stop_reason(self) -> str | None:
    """Why training stops after a logged step, if it does."""
    tc, step = self.tc, int(self.state.step)
    patience = tc.nonfinite_patience
    if self.early_stop:
      print(f'stopping at step {step}: {tc.select_by} has not improved in '
            f'{tc.early_stopping_patience} evaluations '
            '(train.early_stopping_patience)', flush=True)
      return 'early_stopping'
    if patience and int(self.state.nonfinite_run) >= patience:
      print(f'stopping at step {step}: {patience} non-finite losses or '
            'gradients in a row (train.nonfinite_patience)', flush=True)
      return 'nonfinite'
    return None

  def finish(self, stopped: str | None, wall_start: float) -> dict[str, Any]:
    """The last checkpoint, the selected params' final valid and test
    metrics, the plots, and the summary."""
    state, tc = self.state, self.tc
    if int(state.nonfinite):
      print(f'{int(state.nonfinite)} updates skipped for a non-finite loss '
            'or gradient', flush=True)
    last_step = int(state.step)
    if tc.select_by and not self.monitor.seen(state, last_step):
      self.validate(last_step, f'step {last_step}')  # a candidate too
      state = self.state
    self.save(last_step)
    self.manager.wait_until_finished()
    selected_step, params = self.monitor.selected(state, last_step,
                                                  steps.eval_params(state))
    train = evaluation.summarize(self.task, {'loss': float(state.epoch_loss),
                                  'count': float(state.epoch_count)})
    if selected_step != last_step:
      print(f'selected step {selected_step} by {tc.select_by}', flush=True)
    final = evaluation.evaluate_splits(self.task, self.eval_step, params, tc.eval_steps)
    # With selection the valid metrics are already in metrics.jsonl, at the
    # steps they were measured.
    self.writer.write(last_step, {
        k: v for k, v in final.items()
        if not (tc.select_by and k.startswith('valid/'))})
    self.writer.close()
    summary = {
        **{f'train/{k}': v for k, v in train.items()}, **final,
        'selected_step': selected_step,
        'selected_by': tc.select_by or 'last step',
        'train/tokens_per_sec': self.timer.tokens_per_sec or None,
        'steps': last_step,
        'nonfinite_steps': int(state.nonfinite),
        'stopped': stopped,
        **({'average_since': int(state.average_since)
            if int(state.average_since) >= 0 else None}
           if tc.average == 'ntasgd' else {}),
        'num_params': int(self.num_params),
        'wall_seconds': time.time() - wall_start,
    }
    if distributed.is_primary():
      records.plot_curves(self.workdir)
      self.grad_flow.plot()
    # Generation, decoding and predictions after training run in each process
    # on its own copy of the parameters.
    return {'summary': summary,
            'state': state.replace(params=distributed.host_local(params))}


