"""Multi-query associative recall as in mqar_deltanet, by an LSTM: the
same two pre-norm residual blocks of 64 channels, training and data, with
the LSTM in place of DeltaNet and no short convolutions. Its state is
2 x 64 floats per layer, DeltaNet's 64 x 64.

Command:  python launch.py --experiment=memory --preset=mqar_lstm
Expected: test accuracy 0.72% on the queried values (valid 0.73%; chance
0.78%), measured: its loss stays at ln 128, the values' entropy, for all
1,000 steps. 9.4 minutes on one of 2 CPU cores, the other busy.
"""

from rnn_jax.experiments.configs import mqar_deltanet

EXPERIMENT = 'memory'


def get_config():
  c = mqar_deltanet.get_config()
  c.model.update(cell='lstm', short_conv=0)
  return c
