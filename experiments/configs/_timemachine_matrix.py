"""The configuration the timemachine_<cell> presets of the matrix-memory
cells share: The Time Machine at the character level, two pre-norm residual
blocks of 128 channels in 4 heads (the way these models are built), and
timemachine_lstm's training."""

from rnn_jax.experiments.configs import timemachine_lstm


def config(cell: str):
  c = timemachine_lstm.get_config()
  c.model.update(cell=cell, hidden_size=128, num_heads=4, num_layers=2,
                 block='residual', embed_size=0, dropout=0.2)
  c.data.update(num_steps=64)
  return c
