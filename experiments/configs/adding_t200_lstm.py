"""The adding problem at T = 200 with an LSTM (Hochreiter & Schmidhuber
1997; the setting of Le, Jaitly & Hinton 2015).

Command:  python launch.py --experiment=memory --preset=adding_t200_lstm
Expected: not measured yet.
"""

from experiments import memory

EXPERIMENT = 'memory'


def get_config():
  """The memory experiment's defaults are this preset."""
  return memory.get_config()
