"""A 3-layer mingru language model on Tiny Shakespeare, character level, in
pre-norm residual blocks with an MLP (model.block=residual), the kind of
stack the linear-recurrence papers build their language models from.

Command:  python launch.py --preset=tinyshakespeare_mingru
Expected: valid perplexity 4.29, test 4.88 (1.457 / 1.585 nats per char;
2.10 / 2.29 bits), measured; 21 minutes alone on 2 CPU cores (46 while
tinyshakespeare_minlstm trained on the same cores; the same metrics).
"""

from rnn_jax.experiments.configs import tinyshakespeare_lstm

EXPERIMENT = 'lm'


def get_config():
  """tinyshakespeare_lstm's data and training, the model in residual
  blocks."""
  c = tinyshakespeare_lstm.get_config()
  c.model.update(cell='mingru', num_layers=3, block='residual', mlp_ratio=4)
  return c
