"""Many-to-one: a stack over the words, pooled into one vector, an MLP,
the labels."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import layers
from rnn_jax import recurrence
from rnn_jax.models.common import embed_words, padded_ids, word_dropout


READOUTS = ('last', 'mean', 'max', 'attention')


class Classifier(layers.StackFields, kw_only=True):
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
  readout: str = 'last'
  attention_size: int = 0        # 0: hidden_size
  mlp_size: int = 0              # 0: a linear layer straight to the logits
  embed_dropout: float = 0.0
  word_dropout: float = 0.0
  unk_id: int = 0
  hidden_size: int = 256
  bidirectional: bool = True
  # The stack's other fields: layers.StackFields (`dropout` also in the MLP).

  def _stack(self, parent):
    return self.make_stack(time_major=True, parent=parent)

  @nn.compact
  def __call__(self, tokens, lengths, vectors=None, *, train: bool = False):
    """tokens [B, T] int, lengths [B], vectors [B, T, embed_size]
    (pretrained vectors of the ids past the vocabulary:
    `common.embed_words`) -> logits [B, num_classes]."""
    chex.assert_rank(tokens, 2)
    if self.readout not in READOUTS:
      raise ValueError(f'readout must be one of {READOUTS}')
    mask = recurrence.lengths_to_mask(lengths, tokens.shape[1])  # [T, B]
    tokens = tokens.T
    if train:
      tokens = word_dropout(self, tokens, self.word_dropout, self.unk_id)
    xs = embed_words(nn.Embed(self.vocab_size, self.embed_size, name='embed'),
                     tokens, self.unk_id, vectors)
    xs = layers.dropout(self.embed_dropout, self.variational)(
        xs, deterministic=not train)
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


def exports(model: Classifier, params, pad_id: int) -> dict:
  """The function `--mode=export` serialises, with symbolic batch and time:
  `predict`, the class probabilities of padded token ids and their
  lengths, with its argument specs and a description of its inputs and
  outputs."""
  def predict(tokens, lengths):
    return {'probabilities': jax.nn.softmax(
        model.apply({'params': params}, tokens, lengths))}
  specs, inputs = padded_ids('word ids (vocabs/vocab.json) of each text as '
                             'data.* tokenizes it', pad_id)
  return {'predict': (predict, specs, {
      'inputs': inputs,
      'outputs': [
          {'name': 'probabilities', 'shape': ['batch', model.num_classes],
           'dtype': 'float32',
           'meaning': 'class probabilities, classes as in vocabs/labels.json'}],
  })}
