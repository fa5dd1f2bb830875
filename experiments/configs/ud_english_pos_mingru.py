"""The ud_english_pos_bilstm tagger with bidirectional minGRUs (the word and
the character RNNs), everything else equal.

Command:  python launch.py --preset=ud_english_pos_mingru
Expected: test UPOS accuracy 93.48%, valid 93.34% (measured; the BiLSTM:
94.81% / 95.00%); 3.7 minutes on 2 CPU cores (the BiLSTM: 12.6).
"""

from rnn_jax.experiments.configs import ud_english_pos_bilstm

EXPERIMENT = 'tag'


def get_config():
  c = ud_english_pos_bilstm.get_config()
  c.model.cell = 'mingru'
  return c
