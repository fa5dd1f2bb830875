"""Zaremba et al. (2014) small: 2x200 LSTM on Penn Treebank, no dropout.

Command:  python launch.py --preset=ptb_small
Expected: test perplexity 113.1, valid 117.0 (measured; the paper: 114.5 and
120.7); about an hour on 2 idle CPU cores.
Zaremba's lr 1 and clip 5 act on the loss summed over the 20 steps and
averaged over the batch, hence train.loss_reduction=sequence_sum.
"""

from rnn_jax.experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.LanguageModelling().get_config()
  c.model.update(cell='lstm', hidden_size=200, num_layers=2, embed_size=200,
                 dropout=0.0, init_scale=0.1)
  c.data.update(name='ptb', level='word', preprocess='none', eos=True,
                batch_size=20, num_steps=20, eval_batch_size=1)
  c.train.update(optimizer='sgd', learning_rate=1.0, clip_norm=5.0,
                 loss_reduction='sequence_sum', schedule='step',
                 decay_after_epochs=4, decay_rate=0.5, num_epochs=13,
                 eval_every_epochs=1, log_every_steps=200,
                 checkpoint_every_steps=1000)
  c.generate.update(prefix='the meaning of life is', num_tokens=20)
  return c
