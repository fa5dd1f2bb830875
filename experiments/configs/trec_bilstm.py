"""BiLSTM with attention pooling on TREC-6 question classification.

Command:  python launch.py --preset=trec_bilstm
Expected: not yet measured.
"""

from experiments import classify

EXPERIMENT = 'classify'


def get_config():
  """Kim (2014)'s TREC set-up: case kept, 10% of train held out as valid."""
  c = classify.get_config()
  c.data.name = 'trec'
  c.data.lowercase = False
  c.train.num_epochs = 20
  c.train.eval_every_epochs = 5
  return c
