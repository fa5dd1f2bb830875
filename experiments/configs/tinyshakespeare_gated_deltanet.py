"""Gated DeltaNet on Tiny Shakespeare, character level: three pre-norm
residual blocks of 256 channels in 4 heads with short convolutions
(_tinyshakespeare_matrix), 8 epochs.

Command:  python launch.py --preset=tinyshakespeare_gated_deltanet
Expected: valid perplexity 4.59, test 5.20 (1.524 / 1.649 nats per char;
the last epoch selected), measured; 79 minutes on 2 CPU cores shared with
two to three other jobs throughout. Behind tinyshakespeare_mingru (1.457 /
1.585) and tinyshakespeare_lstm_reg (1.341 / 1.483): its training loss,
under dropout, stayed above the valid loss to the end (1.76 against 1.52),
so it underfits in these 8 epochs; at about 2,000 characters per second
here, more epochs cost more time than the 2x512 LSTM's.
"""

from rnn_jax.experiments.configs import _tinyshakespeare_matrix

EXPERIMENT = 'lm'


def get_config():
  return _tinyshakespeare_matrix.config('gated_deltanet')
