"""Many-to-many, aligned: one tag per word, with an optional CRF."""

from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import crf as crf_lib
from rnn_jax import layers
from rnn_jax import recurrence
from rnn_jax.models.common import embed_words, word_dropout


class Tagger(layers.StackFields, kw_only=True):
  """Aligned many-to-many: one tag score vector per input token.

  Each word's input is the concatenation of its embedding, the embeddings
  of its extra feature ids (POS tags for chunking, say) and, with
  `char_vocab_size` > 0, the final states of a bidirectional character
  RNN over its spelling (Lample et al. 2016). A (bidirectional) RNNStack
  reads the sentence, and a dense layer maps each output to `num_tags`
  emission scores. With `crf`, the model also holds the parameters of a
  linear-chain CRF over those scores (`crf_params`); without it, the
  scores are a per-token softmax's logits. Padding is masked in every
  RNN, so it changes no real token's scores.
  """
  vocab_size: int
  num_tags: int
  embed_size: int = 100
  feature_vocab_sizes: tuple[int, ...] = ()
  feature_embed_size: int = 25
  char_vocab_size: int = 0
  char_embed_size: int = 25
  char_hidden_size: int = 25
  crf: bool = True
  word_dropout: float = 0.0
  unk_id: int = 0
  hidden_size: int = 200
  bidirectional: bool = True
  dropout: float = 0.5
  # The stack's other fields: layers.StackFields.

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_size)
    self.feature_embeds = [nn.Embed(n, self.feature_embed_size)
                           for n in self.feature_vocab_sizes]
    if self.char_vocab_size:
      self.char_embed = nn.Embed(self.char_vocab_size, self.char_embed_size)
      self.char_rnn = layers.RNNStack(
          time_major=True,
          cell=self.cell, hidden_size=self.char_hidden_size,
          bidirectional=True,
          **{name: getattr(self, name) for name in layers.RUN_FIELDS})
    self.stack = self.make_stack(time_major=True)
    self.output = nn.Dense(self.num_tags)
    self.drop = layers.dropout(self.dropout, self.variational)
    if self.crf:
      k = self.num_tags
      self.transitions = self.param('transitions', nn.initializers.zeros,
                                    (k, k))
      self.start = self.param('start', nn.initializers.zeros, (k,))
      self.end = self.param('end', nn.initializers.zeros, (k,))

  def _spelling(self, chars, char_lengths):
    """chars [B, T, L] -> [T, B, 2 * char_hidden_size]: the final forward
    state after each word's last character and the final backward state
    after its first."""
    b, t, l = chars.shape
    flat = chars.reshape(b * t, l).T                                # [L, BT]
    mask = recurrence.lengths_to_mask(char_lengths.reshape(-1), l)
    _, final = self.char_rnn(self.char_embed(flat), mask=mask)
    cell = self.char_rnn.make_cell()
    states = jnp.concatenate([cell.hidden(c) for c in final], -1)
    return jnp.swapaxes(states.reshape(b, t, -1), 0, 1)

  def __call__(self, tokens, lengths, features=None, chars=None,
               char_lengths=None, vectors=None, *, train: bool = False):
    """tokens [B, T], lengths [B], features [B, T, F], chars [B, T, L],
    char_lengths [B, T], vectors [B, T, embed_size] (pretrained vectors of
    the ids past the vocabulary: `common.embed_words`) -> emission scores
    [B, T, num_tags]."""
    chex.assert_rank(tokens, 2)
    mask = recurrence.lengths_to_mask(lengths, tokens.shape[1])   # [T, B]
    tokens = tokens.T
    if train:
      tokens = word_dropout(self, tokens, self.word_dropout, self.unk_id)
    parts = [embed_words(self.embed, tokens, self.unk_id, vectors)]
    for f, embed in enumerate(self.feature_embeds):
      parts.append(embed(features[:, :, f].T))
    if self.char_vocab_size:
      parts.append(self._spelling(chars, char_lengths))
    xs = self.drop(jnp.concatenate(parts, -1), deterministic=not train)
    hs, _ = self.stack(xs, mask=mask, train=train)
    hs = self.drop(hs, deterministic=not train)
    return jnp.swapaxes(self.output(hs), 0, 1)

  def crf_params(self) -> crf_lib.Params:
    return crf_lib.Params(self.transitions, self.start, self.end)


def exports(model: Tagger, params, pad_id: int) -> dict:
  """The function `--mode=export` serialises, with symbolic batch, time and
  word length: `predict`, each word's tag id (the CRF's Viterbi path, or
  the argmax of the softmax), from the inputs the model reads, with its
  argument specs and a description of its inputs and outputs."""
  b, t, l = jax.export.symbolic_shape('batch, time, chars')
  inputs = [
      ('tokens', (b, t), ['batch', 'time'], 'word ids (vocabs/vocab.json) '
       f'as data.* tokenizes them, padded with {pad_id} (<pad>)'),
      ('lengths', (b,), ['batch'], 'the number of words of each row')]
  if model.feature_vocab_sizes:
    f = len(model.feature_vocab_sizes)
    inputs.append(('features', (b, t, f), ['batch', 'time', f],
                   'each word\'s feature ids (vocabs/features*.json, in '
                   'data.features order)'))
  if model.char_vocab_size:
    inputs += [('chars', (b, t, l), ['batch', 'time', 'chars'],
                'each word\'s character ids (vocabs/chars.json), padded'),
               ('char_lengths', (b, t), ['batch', 'time'],
                'the number of characters of each word')]

  def predict(*args):
    named = {name: x for (name, *_), x in zip(inputs, args)}
    emissions = model.apply({'params': params}, **named)
    if not model.crf:
      return {'tags': emissions.argmax(-1).astype(jnp.int32)}
    crf_params = model.apply({'params': params}, method=Tagger.crf_params)
    return {'tags': crf_lib.viterbi(crf_params, emissions,
                                    named['lengths'])[0].astype(jnp.int32)}

  specs = tuple(jax.ShapeDtypeStruct(shape, jnp.int32)
                for _, shape, _, _ in inputs)
  return {'predict': (predict, specs, {
      'inputs': [{'name': n, 'shape': s, 'dtype': 'int32', 'meaning': m}
                 for n, _, s, m in inputs],
      'outputs': [{'name': 'tags', 'shape': ['batch', 'time'],
                   'dtype': 'int32', 'meaning': 'each word\'s tag id '
                   '(vocabs/tags.json); rows past their length are padding'}],
  })}
