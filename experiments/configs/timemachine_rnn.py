"""The lecture's vanilla RNN on The Time Machine, character level (the default).

Command:  python launch.py --experiment=lm
Expected: valid perplexity 5.34, test 5.55 (measured); 44-50 seconds on
the 2-core CPU, as busy as the shared host is.
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  return lm.get_config()
