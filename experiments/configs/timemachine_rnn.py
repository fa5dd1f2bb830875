"""The lecture's vanilla RNN on The Time Machine, character level (the default).

Command:  python launch.py --experiment=lm
Expected: valid perplexity 5.37, test 5.61 (measured); 75 seconds on the
idle 2-core CPU.
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  return lm.get_config()
