"""The ud_english_pos_bilstm tagger with bidirectional minGRUs (the word and
the character RNNs), everything else equal.

Command:  python launch.py --preset=ud_english_pos_mingru
Expected: test UPOS accuracy 93.98%, valid 94.11% (the last epoch
selected; measured; the BiLSTM: 95.29% / 95.49%); 4.6 minutes on 2 CPU
cores (the BiLSTM: 12).
"""

from rnn_jax.experiments.configs import ud_english_pos_bilstm

EXPERIMENT = 'tag'


def get_config():
  c = ud_english_pos_bilstm.get_config()
  c.model.cell = 'mingru'
  return c
