"""The ud_english_pos_bilstm tagger with bidirectional Gated DeltaNets (4
heads) for the words and the characters (24 character units, which the
heads divide), everything else equal.

Command:  python launch.py --preset=ud_english_pos_gated_deltanet
Expected: test UPOS accuracy 94.91%, valid 94.66% (the evaluation selected
on valid; measured; the BiLSTM: 95.29% / 95.49%); 30 minutes on 2 CPU
cores.
"""

from rnn_jax.experiments.configs import ud_english_pos_bilstm

EXPERIMENT = 'tag'


def get_config():
  c = ud_english_pos_bilstm.get_config()
  c.model.update(cell='gated_deltanet', num_heads=4, char_hidden_size=24)
  return c
