"""The configuration the tinyshakespeare_<cell> presets of the matrix-memory
cells share: Tiny Shakespeare at the character level, three pre-norm
residual blocks of 256 channels in 4 heads with short convolutions (the way
these models are built), each 100-step batch one chunk, and
tinyshakespeare_lstm's training with EMA weights and the epoch selected on
valid."""

from rnn_jax.experiments.configs import tinyshakespeare_lstm


def config(cell: str):
  c = tinyshakespeare_lstm.get_config()
  c.model.update(cell=cell, hidden_size=256, num_heads=4, num_layers=3,
                 block='residual', mlp_ratio=4, short_conv=4, embed_size=0,
                 chunk_size=100, dropout=0.2)
  c.train.update(num_epochs=8, average='ema', select_by='valid/perplexity')
  return c
