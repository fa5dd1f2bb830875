"""A GRU with dropout on The Time Machine, character level.

Command:  python launch.py --preset=timemachine_gru
Expected: valid perplexity 4.17, test 4.31 (measured); about 6 minutes on 2
CPU cores.
"""

from rnn_jax.experiments.configs import timemachine_lstm

EXPERIMENT = 'lm'


def get_config():
  """timemachine_lstm with the cell swapped: the d2l one-line ablation."""
  c = timemachine_lstm.get_config()
  c.model.cell = 'gru'
  return c
