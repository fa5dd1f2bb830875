"""Long-range memory: which recurrence carries information T steps back.

The lecture's RNN (tanh, and ReLU from the identity: IRNN), the GRU, the
LSTM and the linear recurrences (minGRU, minLSTM, LRU, RG-LRU), each on the
adding problem and on copy memory at delays T = 50, 100, 200, 400, with
everything else equal: one layer of 128, Adam at 0.01, clipping at 1,
1,200 steps of 50 fresh examples. The table gives the final test MSE or
recall accuracy and `solved_step`, the first evaluation (every 100 steps)
at which valid MSE <= 0.01 or recall accuracy >= 99% (experiments/memory.py
SOLVED). Every run records the gradient reaching each step at
initialisation and at the end (rnn_jax.gradflow); plots/grad_flow_init_*.png
set the cells' curves side by side, one panel per delay.

Command: python launch.py --experiment=memory --ablation=memory
"""

import json
import os

from rnn_jax import plots

BASES = {'memory': ('adding_t200_lstm', {
    'train.num_epochs': 12, 'data.train_size': 5000,
    'train.grad_flow_every_steps': 1200})}
GRID = {'data.name': ['adding', 'copy'],
        'model.cell': ['rnn', 'irnn', 'gru', 'lstm', 'mingru', 'minlstm',
                       'lru', 'rglru'],
        'data.delay': [50, 100, 200, 400]}
METRICS = ('test/mse', 'test/accuracy', 'solved_step')
CURVES = ('valid/mse', 'valid/accuracy')


def plot(rows, workdir):
  """plots/grad_flow_init_<task>.png: ||dL/dh_t|| at step 0, one panel
  per delay, one curve per cell."""
  for task in GRID['data.name']:
    panels = {}
    for row in rows:
      path = os.path.join(workdir, row['run'], 'grad_flow.jsonl')
      if row['data.name'] != task or not os.path.isfile(path):
        continue
      with open(path) as f:
        first = json.loads(f.readline())
      if first['step'] == 0:
        panels.setdefault(f'T = {row["data.delay"]}', {})[
            row['model.cell']] = list(enumerate(first['norms'], start=1))
    if panels:
      plots.panels(os.path.join(workdir, 'plots',
                                f'grad_flow_init_{task}.png'), panels,
                   xlabel='time step t', ylabel='||dL/dh_t|| at step 0',
                   title=task)
