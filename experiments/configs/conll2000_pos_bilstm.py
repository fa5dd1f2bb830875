"""BiLSTM with a softmax per token for CoNLL-2000 POS tagging (WSJ tags).

Command:  python launch.py --preset=conll2000_pos_bilstm
Expected: test accuracy 98.11%, valid (10% of train) 98.17% (measured);
about 17 minutes on 2 CPU cores. The CoNLL-2000
POS column was tagged by a Brill tagger, so this learns that tagger's
output rather than gold treebank tags.
"""

from rnn_jax.experiments import tag

EXPERIMENT = 'tag'


def get_config():
  """Words and a character BiLSTM into a BiLSTM 200, a softmax per token
  (no CRF); valid = 10% of train, carved by data.split_seed."""
  c = tag.Tagging().get_config()
  c.data.name = 'conll2000'
  c.data.column = 'pos'
  c.model.crf = False
  c.train.num_epochs = 20
  return c
