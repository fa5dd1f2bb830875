"""BiLSTM-CRF for CoNLL-2000 chunking, reading words, characters and POS tags.

Command:  python launch.py --preset=conll2000_chunk_bilstm_crf
Expected: test F1 93.86 (P 93.81, R 93.90; token accuracy 96.04%), valid
(10% of train) F1 94.45 at the selected epoch 27 of 30 (measured); 27
minutes on 2 CPU cores. Huang et al. (2015), BI-LSTM-CRF with Senna
embeddings and hand-made features: 94.46. The one-layer model without the
regularisers (this preset before): test 93.57, valid 93.69.
"""

from rnn_jax.experiments import tag

EXPERIMENT = 'tag'


def get_config():
  """The NER model (100-d words, a character BiLSTM, CRF, dropout 0.5) with
  two BiLSTM 200 layers, a 50-unit character BiLSTM, variational dropout,
  and the shared task's POS tags as a second input (25-d); valid = 10% of
  train, carved by data.split_seed, selects the reported epoch."""
  c = tag.Tagging().get_config()
  c.data.name = 'conll2000'
  c.data.column = 'chunk'
  c.data.features = 'pos'
  c.model.update(num_layers=2, char_hidden_size=50, variational=True)
  c.train.select_by = 'valid/f1'
  return c
