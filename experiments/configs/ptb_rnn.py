"""The lecture's vanilla (tanh) RNN as a word-level language model on PTB.

Command:  python launch.py --preset=ptb_rnn
Expected: test perplexity 120.6, valid 128.9 (measured; Mikolov's RNN-LM:
124.7); about 90 minutes on 2 CPU cores.
Plain SGD at lr 1 (Zaremba's LSTM setting) diverges for this tanh RNN even
with clipping; Adam with a per-epoch halving trains it reliably.
"""

from rnn_jax.experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.LanguageModelling().get_config()
  c.model.update(cell='rnn', activation='tanh', hidden_size=300, num_layers=1,
                 embed_size=300, dropout=0.4, init_scale=0.1, tie_weights=True)
  c.data.update(name='ptb', level='word', preprocess='none', eos=True,
                batch_size=20, num_steps=35, eval_batch_size=1)
  c.train.update(optimizer='adam', learning_rate=0.002, clip_norm=1.0,
                 schedule='step', decay_after_epochs=4, decay_rate=0.5,
                 num_epochs=10, eval_every_epochs=1, log_every_steps=200,
                 checkpoint_every_steps=1000)
  c.generate.update(prefix='the meaning of life is', num_tokens=20)
  return c
