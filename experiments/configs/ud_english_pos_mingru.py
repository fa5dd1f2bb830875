"""The ud_english_pos_bilstm tagger with bidirectional minGRUs (the word and
the character RNNs), everything else equal.

Command:  python launch.py --preset=ud_english_pos_mingru
Expected: (being measured)
"""

from experiments.configs import ud_english_pos_bilstm

EXPERIMENT = 'tag'


def get_config():
  c = ud_english_pos_bilstm.get_config()
  c.model.cell = 'mingru'
  return c
