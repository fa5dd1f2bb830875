"""The multi30k_gru_attn model without attention, for comparison.

Command:  python launch.py --preset=multi30k_gru
Expected: not yet measured; under multi30k_gru_attn's 50 minutes.
"""

from rnn_jax.experiments.configs import multi30k_gru_attn

EXPERIMENT = 'seq2seq'


def get_config():
  """d2l's encoder-decoder: the decoder reads the encoder's final state as
  its context at every step instead of attending over the source."""
  c = multi30k_gru_attn.get_config()
  c.model.attention = 'none'
  return c
