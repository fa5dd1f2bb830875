"""Gradient flow through time: ||dL/dh_t|| for every step t of a fixed batch.

Backpropagation through T steps multiplies T Jacobians, so the gradient
that reaches an early state from a late loss shrinks or grows geometrically
with the distance. This measures it directly: a zero perturbation is added
to every step's state of one recurrent layer (`recurrence.run(perturb=)`)
and the loss is differentiated with respect to it, which gives dL/dh_t, the
gradient with respect to each step's state through the whole recurrence.

The layer is the first layer (forward direction) of the last `RNNStack`
the task's loss runs: the one stack of the language model, classifier and
memory model, the word-level stack of the tagger, the encoder of a flat
seq2seq model and the statement-level encoder of a hierarchical one.

`--config.train.grad_flow_every_steps=N` records it at step 0 and every N
steps into `<workdir>/grad_flow.jsonl` (one line per record: the step, the
norm at every t, and for the lecture's RNN the spectral radius of W_hh) and
plots it in `plots/grad_flow.png`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import distributed
from rnn_jax import plots
from rnn_jax import records

FILE = 'grad_flow.jsonl'
# Cells whose W_hh is the lecture's: their spectral radius is recorded.
SPECTRAL_CELLS = ('rnn', 'irnn')

_PROBE: contextvars.ContextVar[Probe | None] = contextvars.ContextVar(
    'rnn_jax_gradflow_probe', default=None)


class Probe:
  """What `RNNStack` reports while tracing under `probing()`: per call, its
  module path, cell name and state shape; and where `perturbation` is set,
  the call (by index) that adds it to its first layer's states."""

  def __init__(self, perturbation=None, target: int = -1):
    self.perturbation, self.target = perturbation, target
    self.calls: list[dict[str, Any]] = []

  def visit(self, path: tuple[str, ...], cell: str, shape, dtype):
    """Called by each RNNStack; returns the perturbation for its first
    layer, or None."""
    self.calls.append({'path': path, 'cell': cell, 'shape': tuple(shape),
                       'dtype': dtype})
    if self.perturbation is not None and len(self.calls) - 1 == self.target:
      return self.perturbation
    return None


@contextlib.contextmanager
def probing(probe: Probe):
  token = _PROBE.set(probe)
  try:
    yield probe
  finally:
    _PROBE.reset(token)


def active_probe() -> Probe | None:
  return _PROBE.get()


def state_gradients(task, params, batch, carry) -> tuple[np.ndarray, dict]:
  """dL/dh_t [T, B, S] of the task's (eval-mode) loss on `batch`, and the
  probed layer's call record."""
  loss = lambda p: task.loss(p, batch, carry, None, False)[0]
  probe = Probe()
  with probing(probe):
    jax.eval_shape(loss, params)
  if not probe.calls:
    raise ValueError('the loss runs no RNNStack: nothing to measure')
  target = len(probe.calls) - 1
  call = probe.calls[target]

  def perturbed(eps, p):
    with probing(Probe(eps, target)):
      return loss(p)
  grads = jax.jit(jax.grad(perturbed))(jnp.zeros(call['shape'], call['dtype']),
                                       jax.tree.map(jnp.asarray, params))
  return np.asarray(grads), call


def norms_over_time(grads: np.ndarray) -> np.ndarray:
  """[T, B, S] -> [T]: the norm over the batch and the state at each t."""
  return np.sqrt((np.abs(grads.astype(np.float64)) ** 2).sum(axis=(1, 2)))


def spectral_radius(params, call) -> float | None:
  """max |eigenvalue| of the probed stack's first-layer W_hh (RNN cells)."""
  if call['cell'] not in SPECTRAL_CELLS:
    return None
  tree = params
  for name in call['path']:
    tree = tree[name]
  w = np.asarray(tree['layer0']['W_hh'], np.float64)
  return float(np.abs(np.linalg.eigvals(w)).max())


class Recorder:
  """Appends a record to grad_flow.jsonl at step 0 and every `every` steps
  (the training loop calls `record` at those steps)."""

  def __init__(self, task, workdir: str, every: int):
    self.task, self.every = task, every
    self.path = os.path.join(workdir, FILE)
    self.workdir = workdir
    self.active = every > 0 and distributed.is_primary()
    if self.active:
      self.batch = task.train_batch(0, 0)
      self.carry = task.initial_carry('train')

  def record(self, step: int, params):
    params = distributed.host_local(params)
    grads, call = state_gradients(self.task, params, self.batch, self.carry)
    record = {'step': step, 'norms': norms_over_time(grads).tolist()}
    radius = spectral_radius(params, call)
    if radius is not None:
      record['spectral_radius'] = radius
    with open(self.path, 'a') as f:
      f.write(json.dumps(record) + '\n')

  def plot(self):
    if self.active:
      plot(self.workdir)


def read(workdir: str) -> list[dict]:
  return records.read(os.path.join(workdir, FILE))


def plot(workdir: str):
  """plots/grad_flow.png: the norm against t, one curve per recorded step
  (log scale); beside it the spectral radius of W_hh where recorded."""
  rows = read(workdir)
  if not rows:
    return
  series = {f'step {r["step"]}': list(enumerate(r['norms'], start=1))
            for r in rows}
  radius = [(r['step'], r['spectral_radius']) for r in rows
            if 'spectral_radius' in r]
  plots.curves(os.path.join(workdir, 'plots', 'grad_flow.png'), series,
               xlabel='time step t', ylabel='||dL/dh_t||',
               title='gradient reaching each step', side=radius,
               side_label='spectral radius of W_hh')
