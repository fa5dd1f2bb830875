"""Gated linear attention (GLA) on The Time Machine, character level: two
pre-norm residual blocks of 128 channels in 4 heads, the chunkwise form, and
timemachine_lstm's training (_timemachine_matrix).

Command:  python launch.py --preset=timemachine_gla
Expected: valid perplexity 4.54, test 4.66 (1.512 / 1.540 nats per char),
measured; 10 minutes on 2 CPU cores shared with other runs.
"""

from rnn_jax.experiments.configs import _timemachine_matrix

EXPERIMENT = 'lm'


def get_config():
  return _timemachine_matrix.config('gla')
