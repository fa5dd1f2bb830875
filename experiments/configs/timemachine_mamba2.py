"""Mamba-2's SSD on The Time Machine, character level: two pre-norm residual
blocks of 128 channels in 4 heads, the chunkwise form, and
timemachine_lstm's training (_timemachine_matrix).

Command:  python launch.py --preset=timemachine_mamba2
Expected: valid perplexity 4.74, test 4.88 (1.556 / 1.585 nats per char),
measured; 7 minutes on 2 CPU cores shared with other runs.
"""

from rnn_jax.experiments.configs import _timemachine_matrix

EXPERIMENT = 'lm'


def get_config():
  return _timemachine_matrix.config('mamba2')
