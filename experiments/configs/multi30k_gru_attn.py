"""BiGRU encoder, GRU decoder with additive attention: Multi30k de->en.

Command:  python launch.py --preset=multi30k_gru_attn
Expected: not yet measured.
"""

from experiments import seq2seq

EXPERIMENT = 'seq2seq'


def get_config():
  """The defaults of the seq2seq experiment."""
  return seq2seq.get_config()
