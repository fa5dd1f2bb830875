"""Length extrapolation: induction heads trained at 256 steps and tested at
256, 512, 1024, 2048 and 4096 (the Mamba paper's test, shortened), for
every family -- the lecture's RNN, the LSTM, the minGRU, the LRU, and the
mLSTM, GLA, DeltaNet, Gated DeltaNet and Mamba-2 -- with the
induction_deltanet preset's model and training, everything else
equal. The table gives test/accuracy@L per length; plots/extrapolation.png
draws them, one line per cell.

Command: python launch.py --experiment=memory --ablation=extrapolation
"""

import os

from rnn_jax import plots

LENGTHS = (256, 512, 1024, 2048, 4096)
BASES = {'memory': ('induction_deltanet', {
    'data.eval_lengths': ','.join(map(str, LENGTHS))})}
CELLS = ('rnn', 'lstm', 'mingru', 'lru', 'mlstm', 'gla', 'deltanet',
         'gated_deltanet', 'mamba2')
# The matrix cells (the last five) with short convolutions.
ZIP = {'model.cell': list(CELLS),
       'model.short_conv': [4 if i >= 4 else 0 for i in range(len(CELLS))]}
METRICS = tuple(f'test/accuracy@{n}' for n in LENGTHS) + ('state_size',)


def plot(rows, workdir):
  plot_lengths(rows, workdir, LENGTHS, 'extrapolation.png',
               'test length (trained at 256)', 'induction test accuracy',
               'length extrapolation')


def plot_lengths(rows, workdir, lengths, name, xlabel, ylabel, title):
  """plots/<name>: each cell's test/accuracy@L against L."""
  series = {row['model.cell']: [(n, row[f'test/accuracy@{n}'])
                                for n in lengths
                                if row.get(f'test/accuracy@{n}') is not None]
            for row in rows}
  series = {cell: points for cell, points in series.items() if points}
  if series:
    plots.lines(os.path.join(workdir, 'plots', name), series, xlabel=xlabel,
                ylabel=ylabel, logy=False, title=title)
