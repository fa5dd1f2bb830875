"""The language model: embedding (or one-hot), a recurrent stack, a
readout over the vocabulary."""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import layers
from rnn_jax.models.common import mixed_dense_dot, uniform


class LanguageModel(layers.StackFields, kw_only=True):
  """Next-token model: embed -> RNNStack -> o_t = W_ho h_t + b_o.

  `embed_size=0` feeds one-hot vectors straight into the first cell, which is
  the lecture's character model (its W_xh then plays the embedding's role).
  Dropout follows Zaremba et al.: on the embeddings, between layers and before
  the output layer, each with one mask per sequence when `variational`
  (Gal & Ghahramani 2016). AWD-LSTM's other regularisers (Merity et al.
  2018): `embed_word_dropout` zeroes whole words -- rows of the embedding
  (of W_xh for one-hot inputs), one mask per batch -- and the stack's
  `recurrent_dropout` and `weight_dropout` (see layers.RNNStack). The top
  layer's outputs are sown as 'intermediates' ('outputs', before the output
  dropout, and 'dropped', after it) for activation regularisation.
  """
  vocab_size: int
  embed_size: int = 0
  embed_word_dropout: float = 0.0
  tie_weights: bool = False
  cell: str = 'rnn'
  hidden_size: int = 256
  # The stack's other fields: layers.StackFields. With `compute_dtype` (e.g.
  # jnp.bfloat16) the matmuls' operands, accumulated in float32; parameters,
  # states and logits stay float32.

  def setup(self):
    if self.tie_weights and self.embed_size != self.hidden_size:
      raise ValueError('tie_weights needs embed_size == hidden_size')
    init = uniform(self.init_scale) if self.init_scale else None
    if self.embed_size:
      kwargs = {'embedding_init': init} if init else {}
      self.embed = nn.Embed(self.vocab_size, self.embed_size, **kwargs)
    self.stack = self._make_stack(parent=self)
    if not self.tie_weights:
      kwargs = {'kernel_init': init, 'bias_init': init} if init else {}
      if self.compute_dtype is not None:
        kwargs['dot_general'] = functools.partial(mixed_dense_dot,
                                                  dtype=self.compute_dtype)
      self.readout = nn.Dense(self.vocab_size, **kwargs)
    else:
      self.readout_bias = self.param('readout_bias', nn.initializers.zeros,
                                     (self.vocab_size,))
    self.drop = layers.dropout(self.dropout, self.variational)

  def _make_stack(self, parent):
    return self.make_stack(
        time_major=True, parent=parent,
        one_hot_size=0 if self.embed_size else self.vocab_size)

  def initial_carry(self, batch_size: int):
    """Zero state for a batch; needs no params (works on an unbound model)."""
    return self._make_stack(parent=None).initial_carry(batch_size)

  def __call__(self, tokens, carry=None, *, train: bool = False):
    """tokens [B, T] int -> (logits [B, T, V], final carry)."""
    chex.assert_rank(tokens, 2)
    tokens = tokens.T  # time-major inside
    words = None
    if train and self.embed_word_dropout > 0:
      keep = 1.0 - self.embed_word_dropout
      words = jax.random.bernoulli(self.make_rng('dropout'), keep,
                                   (self.vocab_size,))[tokens, None] / keep
    if self.embed_size:
      xs = self.embed(tokens)
      xs = self.drop(xs if words is None else xs * words,
                     deterministic=not train)
    elif train and (self.dropout > 0 or words is not None):
      xs = jax.nn.one_hot(tokens, self.vocab_size)
      xs = self.drop(xs if words is None else xs * words, deterministic=False)
    else:
      # The same one-hot inputs, as their indices: the first layer looks up
      # rows of W_xh instead of multiplying by [T, B, V] vectors.
      xs = tokens
    hs, carry = self.stack(xs, carry, train=train)
    self.sow('intermediates', 'outputs', hs)
    hs = self.drop(hs, deterministic=not train)
    self.sow('intermediates', 'dropped', hs)
    # Back to batch-major before the readout (moving [T, B, H] is cheaper
    # than moving the [T, B, V] logits and their gradient), and flat: as one
    # [B*T, H] x [H, V] matmul, the weight gradient needs no transposed copy
    # of the logits' gradient.
    hs = jnp.swapaxes(hs, 0, 1)
    batch, num_steps = tokens.shape[1], tokens.shape[0]
    hs = hs.reshape(batch * num_steps, -1)
    if self.tie_weights:
      logits = self.embed.attend(hs) + self.readout_bias
    else:
      logits = self.readout(hs)
    return logits.reshape(batch, num_steps, -1), carry
