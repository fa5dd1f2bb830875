"""Zaremba et al. (2014) medium: 2x650 LSTM, dropout 0.5, on Penn Treebank.

Command:  python launch.py --preset=ptb_medium
Expected: test perplexity 82.7 in the paper; not yet measured here. It is
about 8x the compute of ptb_small (roughly 8-10 hours on a 2-core CPU);
use a GPU (python launch.py --preset=ptb_medium on a CUDA jaxlib).
As in ptb_small, lr 1 and clip 5 act on the loss summed over the 35 steps.
"""

from experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.get_config()
  c.model.update(cell='lstm', hidden_size=650, num_layers=2, embed_size=650,
                 dropout=0.5, init_scale=0.05)
  c.data.update(name='ptb', level='word', preprocess='none', eos=True,
                batch_size=20, num_steps=35, eval_batch_size=1)
  c.train.update(optimizer='sgd', learning_rate=1.0, clip_norm=5.0,
                 loss_reduction='sequence_sum', schedule='step',
                 decay_after_epochs=6, decay_rate=0.8, num_epochs=39,
                 eval_every_epochs=1, log_every_steps=200,
                 checkpoint_every_steps=1000)
  c.generate.update(prefix='the meaning of life is', num_tokens=20)
  return c
