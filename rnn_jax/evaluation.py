"""Evaluation of a split: the loss's sums over its batches, the state
flowing from batch to batch, turned into metrics.

Metrics are kept as sums and counts so that batches combine exactly:
a split's metric does not depend on how its batches are cut.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import numpy as np

from rnn_jax import distributed
from rnn_jax import records


def _eval_sums(task, eval_step, params, split: str,
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


def evaluate(task, eval_step, params, split: str,
             max_batches: int = 0) -> dict[str, float]:
  """The metrics of `split` (or of its first `max_batches`)."""
  return summarize(task, _eval_sums(task, eval_step, params, split,
                                    max_batches))


def evaluate_splits(task, eval_step, params,
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
      print(f'final {split} | {records.format_metrics(metrics)}', flush=True)
    final.update({f'{split}/{k}': v for k, v in metrics.items()})
  return final


def metric_names(task) -> set[str]:
  """The metrics an evaluation of valid reports, from the shapes of the
  evaluation's sums alone (traced, nothing computed)."""
  batch = next(iter(task.eval_batches('valid')), None)
  if batch is None:
    return set()
  params = jax.eval_shape(task.init_params, jax.random.PRNGKey(0))
  stats = jax.eval_shape(lambda p, b, c: task.loss(p, b, c, None, False)[1][0],
                         params, batch, task.initial_carry('valid'))
  return set(summarize(task, {k: np.ones(v.shape, v.dtype)
                              for k, v in stats.items()}))


def summarize(task, sums: dict[str, Any]) -> dict[str, float]:
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
