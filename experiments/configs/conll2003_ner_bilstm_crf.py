"""BiLSTM-CRF with character features for CoNLL-2003 English NER.

Command:  python launch.py --experiment=tag   (or --preset=conll2003_ner_bilstm_crf)
Expected: eng.testb F1 83.96 (P 83.85, R 84.08; token accuracy 96.81%),
eng.testa F1 89.95 (measured; the conlleval script gives the same on
test_predictions.conll); 30 epochs of 439 steps, 165 ms a step on one CPU
core: about 40 minutes on 2 CPU cores. Lample et al. (2016)'s LSTM-CRF
reaches 90.94 with pretrained word embeddings, which this preset does
without.
"""

from rnn_jax.experiments import tag

EXPERIMENT = 'tag'


def get_config():
  """Lample et al. (2016)'s LSTM-CRF without pretrained embeddings: 100-d
  word embeddings (digits as 0, case kept), a 25-d character BiLSTM, a
  BiLSTM 200 per direction, CRF, dropout 0.5, word dropout 0.05; Adam
  2e-3 with a cosine decay, clip 5, batch 32."""
  return tag.Tagging().get_config()
