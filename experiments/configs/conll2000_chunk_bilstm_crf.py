"""BiLSTM-CRF for CoNLL-2000 chunking, reading words, characters and POS tags.

Command:  python launch.py --preset=conll2000_chunk_bilstm_crf
Expected: not yet measured.
"""

from experiments import tag

EXPERIMENT = 'tag'


def get_config():
  """The NER model (100-d words, 25-d character BiLSTM, BiLSTM 200, CRF,
  dropout 0.5) with the shared task's POS tags as a second input (25-d);
  valid = 10% of train, carved by data.split_seed."""
  c = tag.get_config()
  c.data.name = 'conll2000'
  c.data.column = 'chunk'
  c.data.features = 'pos'
  c.train.num_epochs = 30
  return c
