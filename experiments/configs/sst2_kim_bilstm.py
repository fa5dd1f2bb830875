"""BiLSTM with attention pooling on Kim (2014)'s sentence-level SST-2.

Command:  python launch.py --preset=sst2_kim_bilstm
Expected: not yet measured.
"""

from experiments.configs import sst2_bilstm

EXPERIMENT = 'classify'


def get_config():
  """sst2_bilstm on 6,920 whole training sentences instead of GLUE's 67k
  phrases: 10x fewer steps per epoch, so more epochs."""
  c = sst2_bilstm.get_config()
  c.data.name = 'sst2/kim2014'
  c.train.num_epochs = 20
  return c
