"""An LSTM with dropout on The Time Machine, character level.

Command:  python launch.py --preset=timemachine_lstm
Expected: valid perplexity 4.03, test 4.16 (measured); about 8 minutes on 2
CPU cores.
"""

from rnn_jax.experiments import lm

EXPERIMENT = 'lm'


def get_config():
  c = lm.LanguageModelling().get_config()
  c.model.update(cell='lstm', hidden_size=256, embed_size=32, dropout=0.3)
  c.data.update(num_steps=50)
  c.train.update(optimizer='adam', learning_rate=0.002, clip_norm=1.0,
                 schedule='cosine', warmup_steps=100, num_epochs=30)
  return c
