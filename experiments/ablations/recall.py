"""Multi-query associative recall against the size of the state (the figure
of Zoology, Arora et al. 2023): the lecture's RNN, the LSTM, the minGRU and
the LRU (vector states) beside the mLSTM, GLA, DeltaNet and Gated DeltaNet
(a matrix per head, with short convolutions), each in two pre-norm
residual blocks with the mqar_deltanet preset's training, at length 128
for 1,000 steps, everything else equal.

Two slices of one grid: the width (so the state) at 16 pairs, and the
number of pairs at width 64. The table gives each run's test accuracy on
the queried values and `state_size`, the floats every layer's state holds
(`cells.Cell.state_size`); plots/recall_state.png draws accuracy against
state size, one line per cell, and plots/recall_pairs.png accuracy against
the number of pairs.

Command: python launch.py --experiment=memory --ablation=recall
"""

import os

from rnn_jax import plots

CELLS = ('rnn', 'lstm', 'mingru', 'lru', 'mlstm', 'gla', 'deltanet',
         'gated_deltanet')
MATRIX = ('mlstm', 'gla', 'deltanet', 'gated_deltanet')  # short convolutions
WIDTHS = (32, 64, 128)
PAIRS = (4, 8, 16, 32)
WIDTH, NUM_PAIRS = 64, 16  # where the two slices cross

POINTS = list(dict.fromkeys(
    [(cell, width, NUM_PAIRS) for cell in CELLS for width in WIDTHS]
    + [(cell, WIDTH, pairs) for cell in CELLS for pairs in PAIRS]))
# Length 128 (mqar_deltanet: 256) and the preset's 1,000 steps, to keep the
# 48 runs short.
BASES = {'memory': ('mqar_deltanet', {'data.delay': 128})}
ZIP = {'model.cell': [cell for cell, _, _ in POINTS],
       'model.hidden_size': [width for _, width, _ in POINTS],
       'data.num_pairs': [pairs for _, _, pairs in POINTS],
       'model.short_conv': [4 if cell in MATRIX else 0
                            for cell, _, _ in POINTS]}
METRICS = ('test/accuracy', 'state_size', 'solved_step')


def plot(rows, workdir):
  """plots/recall_state.png and plots/recall_pairs.png (see above)."""
  by_state, by_pairs = {}, {}
  for row in rows:
    accuracy = row.get('test/accuracy')
    if accuracy is None:
      continue
    cell, pairs = row['model.cell'], int(row['data.num_pairs'])
    if pairs == NUM_PAIRS:
      by_state.setdefault(cell, []).append((row['state_size'], accuracy))
    if int(row['model.hidden_size']) == WIDTH:
      by_pairs.setdefault(cell, []).append((pairs, accuracy))
  folder = os.path.join(workdir, 'plots')
  if by_state:
    plots.lines(os.path.join(folder, 'recall_state.png'), by_state,
                xlabel='state size (floats, all layers)',
                ylabel='MQAR test accuracy', logy=False,
                title=f'MQAR, {NUM_PAIRS} pairs')
  if by_pairs:
    plots.lines(os.path.join(folder, 'recall_pairs.png'), by_pairs,
                xlabel='key-value pairs', ylabel='MQAR test accuracy',
                logy=False, title=f'MQAR, width {WIDTH}')
