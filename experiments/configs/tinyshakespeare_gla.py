"""GLA on Tiny Shakespeare, character level: three pre-norm residual blocks
of 256 channels in 4 heads with short convolutions
(_tinyshakespeare_matrix), 8 epochs.

Command:  python launch.py --preset=tinyshakespeare_gla
Expected: valid perplexity 4.76, test 5.32 (1.560 / 1.672 nats per char;
the last epoch selected), measured; 103 minutes on 2 CPU cores, shared
with another run for its first half. Behind tinyshakespeare_gated_deltanet
(1.524 / 1.649) and tinyshakespeare_mlstm (1.551 / 1.669) with the same
model and training: its training loss, under dropout, was 1.71 at the end
against a valid loss of 1.56, so it underfits in these 8 epochs like them.
Its decay has one value per key channel, which makes it the slowest of the
three here: 1.8 s a step alone, and 2.7 s against the mLSTM's 1.75 beside
the same other run.
"""

from rnn_jax.experiments.configs import _tinyshakespeare_matrix

EXPERIMENT = 'lm'


def get_config():
  return _tinyshakespeare_matrix.config('gla')
