"""A 2-layer LSTM on Tiny Shakespeare, character level (char-rnn's corpus).

Command:  python launch.py --preset=tinyshakespeare_lstm
Expected: valid perplexity 4.30, test 4.80 (2.10 / 2.26 bits per char,
measured); about 15 minutes on 2 CPU cores.
"""

from rnn_jax.experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.LanguageModelling().get_config()
  c.model.update(cell='lstm', hidden_size=256, num_layers=2, embed_size=64,
                 dropout=0.2)
  c.data.update(name='tinyshakespeare', level='char', preprocess='none',
                batch_size=32, num_steps=100, eval_batch_size=10)
  c.train.update(optimizer='adam', learning_rate=0.002, clip_norm=1.0,
                 schedule='cosine', warmup_steps=200, num_epochs=10,
                 eval_every_epochs=1, log_every_steps=100)
  c.generate.update(prefix='ROMEO:', num_tokens=200, temperature=0.8)
  return c
