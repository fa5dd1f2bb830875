"""ptb_small's model (2x200 LSTM) with the recurrent regularisers.

Command:  python launch.py --preset=ptb_small_reg
Expected: test perplexity 98.0, valid 102.8 (measured; ptb_small without
the regularisers: 113.1 / 117.0); 80 minutes on 2 shared CPU cores.
Variational dropout on the inputs, between the layers and before the
readout, DropConnect on W_hh, whole-word embedding dropout and AR/TAR
(AWD-LSTM's regularisers, Merity et al. 2018), tied input and output
embeddings (Press & Wolf 2017), weights averaged by NT-ASGD once the
validation perplexity stalls, and the checkpoint selected on it.
"""

from rnn_jax.experiments.configs import ptb_small

EXPERIMENT = 'lm'


def get_config():
  c = ptb_small.get_config()
  c.model.update(dropout=0.3, variational=True, weight_dropout=0.3,
                 embed_word_dropout=0.1, tie_weights=True)
  c.data.update(num_steps=35)
  c.train.update(decay_after_epochs=8, decay_rate=0.7, num_epochs=18,
                 activation_reg=2.0, temporal_activation_reg=1.0,
                 average='ntasgd', ntasgd_nonmono=3,
                 select_by='valid/perplexity')
  return c
