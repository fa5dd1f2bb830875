"""Zaremba et al. (2014) medium: 2x650 LSTM, dropout 0.5, on Penn Treebank.

Command:  python launch.py --preset=ptb_medium
Expected: test perplexity 82.7 in the paper; not yet measured here. It is
about 8x the compute of ptb_small: a GPU job (hours on 2 CPU cores). As in ptb_small, lr 1 and clip 5 act on the loss summed over the
unrolled steps.
"""

from rnn_jax.experiments.configs import ptb_small

EXPERIMENT = 'lm'


def get_config():
  """The paper's medium model: ptb_small, wider, regularised, longer."""
  c = ptb_small.get_config()
  c.model.update(hidden_size=650, embed_size=650, dropout=0.5,
                 init_scale=0.05)
  c.data.update(num_steps=35)
  c.train.update(decay_after_epochs=6, decay_rate=0.8, num_epochs=39)
  return c
