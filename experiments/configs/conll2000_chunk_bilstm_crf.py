"""BiLSTM-CRF for CoNLL-2000 chunking, reading words, characters and POS tags.

Command:  python launch.py --preset=conll2000_chunk_bilstm_crf
Expected: test F1 93.57 (P 93.45, R 93.69; token accuracy 95.90%; the
conlleval script gives the same), valid (10% of train) F1 93.69 (measured);
about 30 minutes on 2 CPU cores. Huang et al. (2015), BI-LSTM-CRF with Senna embeddings and
hand-made features: 94.46.
"""

from rnn_jax.experiments import tag

EXPERIMENT = 'tag'


def get_config():
  """The NER model (100-d words, 25-d character BiLSTM, BiLSTM 200, CRF,
  dropout 0.5) with the shared task's POS tags as a second input (25-d);
  valid = 10% of train, carved by data.split_seed."""
  c = tag.get_config()
  c.data.name = 'conll2000'
  c.data.column = 'chunk'
  c.data.features = 'pos'
  return c
