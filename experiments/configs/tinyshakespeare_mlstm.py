"""mLSTM on Tiny Shakespeare, character level: three pre-norm residual
blocks of 256 channels in 4 heads with short convolutions
(_tinyshakespeare_matrix), 8 epochs.

Command:  python launch.py --preset=tinyshakespeare_mlstm
Expected: valid perplexity 4.72, test 5.30 (1.551 / 1.669 nats per char;
the last epoch selected), measured; 77 minutes on 2 CPU cores shared with
the matrix benchmark and other jobs throughout. Behind
tinyshakespeare_gated_deltanet (1.524 / 1.649) with the same model and
training: its training loss, under dropout, was 1.77 at the end against a
valid loss of 1.55, and its valid loss still fell by 0.02-0.04 an epoch.
"""

from rnn_jax.experiments.configs import _tinyshakespeare_matrix

EXPERIMENT = 'lm'


def get_config():
  return _tinyshakespeare_matrix.config('mlstm')
