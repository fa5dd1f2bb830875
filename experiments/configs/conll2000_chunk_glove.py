"""conll2000_chunk_bilstm_crf starting from GloVe 6B 50d word vectors.

Command:  python launch.py --preset=conll2000_chunk_glove
          (the vectors: pip install -e ".[vectors]")
Expected: the README's results table has the measured numbers.
"""

from rnn_jax.experiments.configs import conll2000_chunk_bilstm_crf

EXPERIMENT = 'tag'


def get_config():
  """The chunker (two BiLSTM layers, characters, POS tags, CRF) with 50-d
  word embeddings initialised from GloVe 6B and trained on; selected by the
  F1 of valid (10% of train)."""
  c = conll2000_chunk_bilstm_crf.get_config()
  c.model.embed_size = 50
  c.model.pretrained_embeddings = 'glove.6B.50d'
  return c
