"""The adding problem at T = 200 with an LSTM (Hochreiter & Schmidhuber
1997; the setting of Le, Jaitly & Hinton 2015).

Command:  python launch.py --experiment=memory --preset=adding_t200_lstm
Expected: test MSE 0.00020 (valid 0.00019; always answering 1 scores
0.167), measured; the valid MSE leaves the plateau after 1,000 of the
6,000 steps; 17 minutes on 2 CPU cores.
"""

from rnn_jax.experiments import memory

EXPERIMENT = 'memory'


def get_config():
  """The memory experiment's defaults are this preset."""
  return memory.Memory().get_config()
