"""The lecture's vanilla RNN on The Time Machine, character level (the default).

Command:  python launch.py --experiment=lm
Expected: valid perplexity 5.33, test 5.55 (measured); under a minute on 2
CPU cores.
"""

from rnn_jax.experiments import lm

EXPERIMENT = 'lm'


def get_config():
  return lm.LanguageModelling().get_config()
