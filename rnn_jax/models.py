"""Models over the recurrent core. Batch-major at this edge: tokens [B, T]."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import layers


def _uniform(scale: float):
  """U(-scale, scale), Zaremba et al.'s initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


class LanguageModel(nn.Module):
  """Next-token model: embed -> RNNStack -> o_t = W_ho h_t + b_o.

  `embed_size=0` feeds one-hot vectors straight into the first cell, which is
  the lecture's character model (its W_xh then plays the embedding's role).
  Dropout follows Zaremba et al.: on the embeddings, between layers and before
  the output layer.
  """
  vocab_size: int
  embed_size: int = 0
  cell: str = 'rnn'
  hidden_size: int = 256
  num_layers: int = 1
  dropout: float = 0.0
  activation: str = 'tanh'
  init_scale: float | None = None
  recurrent: bool = True
  tie_weights: bool = False
  unroll: int = 1

  def setup(self):
    if self.tie_weights and self.embed_size != self.hidden_size:
      raise ValueError('tie_weights needs embed_size == hidden_size')
    init = _uniform(self.init_scale) if self.init_scale else None
    if self.embed_size:
      kwargs = {'embedding_init': init} if init else {}
      self.embed = nn.Embed(self.vocab_size, self.embed_size, **kwargs)
    self.stack = self._make_stack(parent=self)
    if not self.tie_weights:
      kwargs = {'kernel_init': init, 'bias_init': init} if init else {}
      self.readout = nn.Dense(self.vocab_size, **kwargs)
    else:
      self.readout_bias = self.param('readout_bias', nn.initializers.zeros,
                                     (self.vocab_size,))
    self.drop = nn.Dropout(self.dropout)

  def _make_stack(self, parent):
    return layers.RNNStack(
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, dropout=self.dropout,
        activation=self.activation, init_scale=self.init_scale,
        recurrent=self.recurrent, unroll=self.unroll, parent=parent)

  def initial_carry(self, batch_size: int):
    """Zero state for a batch; needs no params (works on an unbound model)."""
    return self._make_stack(parent=None).initial_carry(batch_size)

  def __call__(self, tokens, carry=None, *, train: bool = False):
    """tokens [B, T] int -> (logits [B, T, V], final carry)."""
    chex.assert_rank(tokens, 2)
    tokens = tokens.T  # time-major inside
    if self.embed_size:
      xs = self.embed(tokens)
    else:
      xs = jax.nn.one_hot(tokens, self.vocab_size)
    xs = self.drop(xs, deterministic=not train)
    hs, carry = self.stack(xs, carry, train=train)
    hs = self.drop(hs, deterministic=not train)
    if self.tie_weights:
      logits = self.embed.attend(hs) + self.readout_bias
    else:
      logits = self.readout(hs)
    return jnp.swapaxes(logits, 0, 1), carry
