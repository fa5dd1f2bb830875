"""Models over the recurrent core. Batch-major at this edge: tokens [B, T]."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import layers
from rnn_jax import recurrence


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


READOUTS = ('last', 'mean', 'max', 'attention')


class Classifier(nn.Module):
  """Many-to-one: embed -> RNNStack (masked) -> readout -> MLP -> logits.

  Readouts of the top layer, each blind to padding:
    'last': the final state of every direction -- the forward one after the
      sentence's true last token, the backward one after its first token;
    'mean' / 'max': over the valid steps of the outputs;
    'attention': additive attention pooling, weights
      softmax_t(v . tanh(W h_t + b)) over the valid steps.
  Regularisation: word dropout (a token becomes `unk_id` with probability
  `word_dropout`), dropout on the embeddings, between layers and before each
  dense layer of the MLP.
  """
  vocab_size: int
  num_classes: int
  embed_size: int = 300
  cell: str = 'lstm'
  hidden_size: int = 256
  num_layers: int = 1
  bidirectional: bool = True
  readout: str = 'last'
  attention_size: int = 0        # 0: hidden_size
  mlp_size: int = 0              # 0: a linear layer straight to the logits
  dropout: float = 0.0           # between layers and in the MLP
  embed_dropout: float = 0.0
  word_dropout: float = 0.0
  unk_id: int = 0
  activation: str = 'tanh'
  init_scale: float | None = None
  unroll: int = 1

  def _stack(self, parent):
    return layers.RNNStack(
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, bidirectional=self.bidirectional,
        dropout=self.dropout, activation=self.activation,
        init_scale=self.init_scale, unroll=self.unroll, parent=parent)

  @nn.compact
  def __call__(self, tokens, lengths, *, train: bool = False):
    """tokens [B, T] int, lengths [B] -> logits [B, num_classes]."""
    chex.assert_rank(tokens, 2)
    if self.readout not in READOUTS:
      raise ValueError(f'readout must be one of {READOUTS}')
    mask = recurrence.lengths_to_mask(lengths, tokens.shape[1])  # [T, B]
    tokens = tokens.T
    if train and self.word_dropout > 0:
      drop = jax.random.bernoulli(self.make_rng('dropout'), self.word_dropout,
                                  tokens.shape)
      tokens = jnp.where(drop, self.unk_id, tokens)
    xs = nn.Embed(self.vocab_size, self.embed_size, name='embed')(tokens)
    xs = nn.Dropout(self.embed_dropout, deterministic=not train)(xs)
    stack = self._stack(parent=self)
    hs, carry = stack(xs, mask=mask, train=train)            # [T, B, H*dirs]
    valid = mask[:, :, None]
    if self.readout == 'last':
      cell = stack.make_cell()
      top = carry[-stack.num_directions:]
      pooled = jnp.concatenate([cell.hidden(c) for c in top], axis=-1)
    elif self.readout == 'mean':
      count = jnp.maximum(lengths, 1)[:, None].astype(hs.dtype)
      pooled = jnp.where(valid, hs, 0).sum(0) / count
    elif self.readout == 'max':
      pooled = jnp.where(valid, hs, -jnp.inf).max(0)
      pooled = jnp.where(lengths[:, None] > 0, pooled, 0)
    else:
      size = self.attention_size or self.hidden_size
      keys = jnp.tanh(nn.Dense(size, name='attention_key')(hs))
      scores = nn.Dense(1, use_bias=False, name='attention_score')(keys)[..., 0]
      # Padding gets weight 0; an empty sentence attends nowhere.
      weights = jnp.where(mask, jax.nn.softmax(scores, axis=0, where=mask), 0)
      pooled = (weights[:, :, None] * hs).sum(0)
    if self.mlp_size:
      pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
      pooled = jnp.tanh(nn.Dense(self.mlp_size, name='mlp')(pooled))
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    return nn.Dense(self.num_classes, name='output')(pooled)
