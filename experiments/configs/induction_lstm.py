"""Induction heads as in induction_deltanet, by an LSTM: the same two
pre-norm residual blocks of 128 channels, training and data, with the LSTM
in place of DeltaNet and no short convolutions.

Command:  python launch.py --experiment=memory --preset=induction_lstm
Expected: test accuracy 7.4%, 6.9%, 7.8%, 6.2% and 7.0% at lengths 256,
512, 1024, 2048 and 4096 (chance 7.1%; valid 6.6%), measured: its loss
stays at ln 14, the answer's entropy, for all 1,000 steps. 18 minutes on
one of 2 CPU cores, the other busy.
"""

from rnn_jax.experiments.configs import induction_deltanet

EXPERIMENT = 'memory'


def get_config():
  c = induction_deltanet.get_config()
  c.model.update(cell='lstm', short_conv=0)
  return c
