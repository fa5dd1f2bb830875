"""BiLSTM with attention pooling on GLUE SST-2 (flax/examples/sst2's setting).

Command:  python launch.py --experiment=classify   (or --preset=sst2_bilstm)
Expected: not yet measured.
"""

from experiments import classify

EXPERIMENT = 'classify'


def get_config():
  return classify.get_config()
