"""The jitted parts of training: the state, the train step (update,
non-finite guard, weight averaging, truncated BPTT) and the eval step.

Pure functions of their inputs: everything a step depends on is in the
`TrainState`, which is what makes resumption exact.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnn_jax import distributed
from rnn_jax import selection


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


def initial_state(task, tx: optax.GradientTransformation,
                  seed: int, average: str = 'none') -> TrainState:
  """Step 0, replicated over the `data` mesh but for the carry, which goes
  with the batch and is split like it. The parameters are initialised
  eagerly, op by op (`models.init_params`): compiled, some differ in the
  last bit (the tagging and classification presets' embeddings, the
  LRU's weights), and published numbers were measured with the eager
  values. `average` keeps a copy of the params to average (see
  `train.average`)."""
  init_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed))
  params = task.init_params(init_rng)
  state = distributed.replicate(TrainState(
      step=np.zeros((), np.int32), params=params, opt_state=tx.init(params),
      rng=train_rng, carry=None, epoch_loss=np.zeros((), np.float32),
      epoch_count=np.zeros((), np.float32), nonfinite=np.zeros((), np.int32),
      nonfinite_run=np.zeros((), np.int32),
      average=(() if average == 'none' else
               jax.tree.map(lambda x: np.array(x, copy=True), params)),
      average_since=np.full((), -1, np.int32),
      monitor=np.full((selection.MAX_EVALS,), np.nan, np.float32),
      monitor_steps=np.full((selection.MAX_EVALS,), -1, np.int32),
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


def make_train_step(task, tx: optax.GradientTransformation,
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


def make_eval_step(task):
  """The jitted `(params, batch, carry) -> (stats, carry)` of evaluation."""
  def eval_step(params, batch, carry):
    _, (stats, carry) = task.loss(params, batch, carry, None, False)
    return stats, carry
  return jax.jit(eval_step)
