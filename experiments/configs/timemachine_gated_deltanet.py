"""Gated DeltaNet on The Time Machine, character level: two pre-norm residual
blocks of 128 channels in 4 heads, the chunkwise form, and
timemachine_lstm's training (_timemachine_matrix).

Command:  python launch.py --preset=timemachine_gated_deltanet
Expected: valid perplexity 4.43, test 4.60 (1.489 / 1.525 nats per char),
measured; 13 minutes on 2 CPU cores shared with other runs.
"""

from rnn_jax.experiments.configs import _timemachine_matrix

EXPERIMENT = 'lm'


def get_config():
  return _timemachine_matrix.config('gated_deltanet')
