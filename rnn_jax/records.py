"""A run's records: JSON-lines files (metrics.jsonl, grad_flow.jsonl), one
object per line, each with the `step` it was measured at; TensorBoard
events; and the learning curves drawn from them."""

from __future__ import annotations

import json
import math
import os

from rnn_jax import distributed


def read(path: str) -> list[dict]:
  """Every record of the file, in order ([] when there is no file)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def keep(path: str, last_step: int):
  """Drops the records after `last_step` (those written after the
  checkpoint a run resumes from: it writes them again)."""
  if not os.path.exists(path):
    return
  kept = [r for r in read(path) if r['step'] <= last_step]
  with open(path + '.tmp', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in kept)
  os.replace(path + '.tmp', path)


class MetricWriter:
  """Appends one JSON object per record to metrics.jsonl and TensorBoard."""

  def __init__(self, workdir: str, resume_step: int):
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self.active = distributed.is_primary()  # one writer per run
    if not self.active:
      return
    keep(self.path, resume_step)
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
  return read(os.path.join(workdir, 'metrics.jsonl'))


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


LOG_ORDER = ('loss', 'perplexity', 'bits_per_token', 'accuracy', 'grad_norm',
              'param_norm', 'learning_rate', 'tokens_per_sec')


def format_metrics(metrics: dict[str, float]) -> str:
  names = sorted(metrics, key=lambda k: (
      LOG_ORDER.index(k) if k in LOG_ORDER else len(LOG_ORDER), k))
  return ' '.join(f'{k} {metrics[k]:.4g}' for k in names)
