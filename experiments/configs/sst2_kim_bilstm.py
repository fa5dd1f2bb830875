"""BiLSTM with attention pooling on Kim (2014)'s sentence-level SST-2.

Command:  python launch.py --preset=sst2_kim_bilstm
Expected: test accuracy 81.5%, valid 79.5% (measured; Kim 2014's CNN-rand:
82.7% test); about 7 minutes on 2 CPU cores.
"""

from rnn_jax.experiments.configs import sst2_bilstm

EXPERIMENT = 'classify'


def get_config():
  """sst2_bilstm on 6,920 whole training sentences instead of GLUE's 67k
  phrases; at this size Adam, as for MR and TREC."""
  c = sst2_bilstm.get_config()
  c.data.name = 'sst2/kim2014'
  c.train.optimizer = 'adam'
  c.train.learning_rate = 1e-3
  c.train.weight_decay = 0.0
  c.train.num_epochs = 6
  return c
