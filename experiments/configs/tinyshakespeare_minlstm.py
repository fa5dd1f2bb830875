"""A 3-layer minlstm language model on Tiny Shakespeare, character level, in
pre-norm residual blocks with an MLP (model.block=residual), the kind of
stack the linear-recurrence papers build their language models from.

Command:  python launch.py --preset=tinyshakespeare_minlstm
Expected: valid perplexity 4.26, test 4.94 (1.449 / 1.597 nats per char;
2.09 / 2.30 bits), measured; 27 minutes on 2 CPU cores with light work
beside it (47 while tinyshakespeare_mingru trained on the same cores).
"""

from rnn_jax.experiments.configs import tinyshakespeare_mingru

EXPERIMENT = 'lm'


def get_config():
  c = tinyshakespeare_mingru.get_config()
  c.model.cell = 'minlstm'
  return c
