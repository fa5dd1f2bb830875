"""Model selection and early stopping on a validation metric
(`train.select_by`, `train.early_stopping_patience`), and the trigger of
NT-ASGD's averaging (`train.average=ntasgd`).

The history of the watched metric lives in the `TrainState` (`monitor`,
`monitor_steps`, `num_evals`), so that a resumed run decides as the
uninterrupted one would.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from rnn_jax import distributed
from rnn_jax import metrics
from rnn_jax.errors import InputError


# Room for the monitored metric's evaluations (a fixed size, so that a run
# resumed with more epochs still fits its checkpoint).
MAX_EVALS = 4096


def check_select_by(select_by: str, names):
  """Refuses a `train.select_by` that is not among the validation's metric
  `names` (before anything is written)."""
  name = select_by.partition('/')[2]
  if select_by and name not in names:
    raise InputError(f'config field train.select_by={select_by!r}: this '
                     'experiment reports '
                     + ', '.join(f'valid/{k}' for k in sorted(names)))


class Monitor:
  """Watches the validation metric `train.select_by` (valid/loss without
  it) at each evaluation. Its history lives in the `TrainState` (so a
  resumed run decides as the uninterrupted one would); a better value saves
  the evaluated weights to <workdir>/best (one checkpoint); it decides
  early stopping and when NT-ASGD starts averaging."""

  def __init__(self, tc, workdir: str):
    self.tc = tc
    self.name = (tc.select_by or 'valid/loss').split('/', 1)[1]
    self.sign = -1.0 if metrics.higher_is_better(self.name) else 1.0
    self.best = None
    if tc.select_by:
      self.best = ocp.CheckpointManager(
          os.path.abspath(os.path.join(workdir, 'best')),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=1, create=True, enable_async_checkpointing=False))

  @staticmethod
  def _history(state) -> tuple[np.ndarray, np.ndarray]:
    """(values, steps) of the evaluations so far."""
    n = int(state.num_evals)
    values, steps = jax.device_get((state.monitor, state.monitor_steps))
    return np.asarray(values)[:n], np.asarray(steps)[:n]

  def _best_index(self, values: np.ndarray) -> int | None:
    finite = np.flatnonzero(np.isfinite(values))
    return int(finite[np.argmin(values[finite])]) if finite.size else None

  def seen(self, state, step: int) -> bool:
    """Whether the evaluation of `step` is already in the history."""
    steps = self._history(state)[1]
    return steps.size > 0 and steps[-1] == step

  def update(self, state, valid: dict[str, float], step: int,
             params) -> tuple:
    """Records `valid` (the metrics of `params` at `step`); returns the new
    state and whether early stopping says stop."""
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
      self.best.save(step, args=ocp.args.StandardSave({'params': params}))
      self.best.wait_until_finished()
    patience = self.tc.early_stopping_patience
    stop = bool(patience) and best is not None and n - best >= patience
    return state, stop

  def selected(self, state, last_step: int, params):
    """(step, params) that the run reports: the best evaluation's with
    `select_by`, else the last step's (`params`)."""
    values, steps = self._history(state)
    best = self._best_index(values) if self.best is not None else None
    if best is None or steps[best] == last_step:
      return last_step, params
    step = int(steps[best])
    restored = self.best.restore(step, args=ocp.args.StandardRestore(
        {'params': params}))
    return step, restored['params']
