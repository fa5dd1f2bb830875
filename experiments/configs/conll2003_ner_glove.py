"""conll2003_ner_bilstm_crf starting from GloVe 6B 50d word vectors.

Command:  python launch.py --preset=conll2003_ner_glove
          (the vectors: pip install -e ".[vectors]")
Expected: eng.testb F1 89.52 (P 89.25, R 89.80; token accuracy 97.90%),
eng.testa F1 93.72 at the selected epoch 27 of 30 (measured); 72 minutes on
2 CPU cores shared with three other runs (its steps at 180-250 ms; the
preset without vectors takes about 40 minutes alone). 94.4% of eng.testb's
words (95.8% of its tokens) have a GloVe vector. Without the vectors:
83.96. Huang et al. (2015)'s BiLSTM-CRF with Senna vectors: 88.83; Lample
et al. (2016): 90.94.
"""

from rnn_jax.experiments.configs import conll2003_ner_bilstm_crf

EXPERIMENT = 'tag'


def get_config():
  """The BiLSTM-CRF with its character BiLSTM (which keeps the case the
  uncased vectors lack), 50-d word embeddings initialised from GloVe 6B and
  trained on; a word of valid or test outside the training vocabulary reads
  its GloVe vector. The reported epoch is selected by valid (eng.testa) F1."""
  c = conll2003_ner_bilstm_crf.get_config()
  c.model.embed_size = 50
  c.model.pretrained_embeddings = 'glove.6B.50d'
  c.train.select_by = 'valid/f1'
  return c
