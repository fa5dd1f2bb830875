"""The lecture's vanilla RNN on The Time Machine, character level (the default).

Command:  python launch.py --experiment=lm
Expected: valid perplexity ~TBD, about TBD on a 2-core CPU.
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  return lm.get_config()
