"""mr_bilstm starting from GloVe 6B 50d word vectors (10-fold CV).

Command:  python launch.py --preset=mr_glove
          (the vectors: pip install -e ".[vectors]")
Expected: the README's results table has the measured numbers.
"""

from rnn_jax.experiments.configs import mr_bilstm

EXPERIMENT = 'classify'


def get_config():
  """MR with 50-d word embeddings initialised from GloVe 6B and trained on,
  dropout 0.2 on them (trec_glove's choice); each fold evaluated after every
  epoch and selected by the accuracy of its valid (10% of its training
  part)."""
  c = mr_bilstm.get_config()
  c.model.update(embed_size=50, pretrained_embeddings='glove.6B.50d',
                 embed_dropout=0.2)
  c.train.update(eval_every_epochs=1, select_by='valid/accuracy')
  return c
