"""Models over the recurrent core. Batch-major at this edge: tokens [B, T]."""

from __future__ import annotations

import functools
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax import crf as crf_lib
from rnn_jax import layers
from rnn_jax import recurrence


def _uniform(scale: float):
  """U(-scale, scale), Zaremba et al.'s initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


def _mixed_dense_dot(x, kernel, dimension_numbers, precision=None, *, dtype):
  """nn.Dense's matmul as `cells.mixed_dot` (a 2-D kernel contracts the
  inputs' last axis with its first)."""
  del dimension_numbers, precision
  return cells_lib.mixed_dot(x, kernel, dtype)


class LanguageModel(nn.Module):
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
  cell: str = 'rnn'
  hidden_size: int = 256
  num_layers: int = 1
  dropout: float = 0.0
  variational: bool = False
  recurrent_dropout: float = 0.0
  weight_dropout: float = 0.0
  embed_word_dropout: float = 0.0
  activation: str = 'tanh'
  init_scale: float | None = None
  recurrent: bool = True
  tie_weights: bool = False
  unroll: int = 1
  remat_chunk: int = 0  # see recurrence.run
  # The matmuls' operand dtype (e.g. jnp.bfloat16), accumulated in float32;
  # parameters, states and logits stay float32. None: all float32.
  compute_dtype: Any = None
  cudnn: bool = False  # LSTM through cuDNN on CUDA GPUs, see recurrence.run
  scan: str = 'auto'  # linear cells: parallel | sequential, see recurrence.run
  block: str = 'stack'  # stack | residual, see layers.RNNStack
  mlp_ratio: int = 4  # residual blocks' MLP width / stream width

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
      if self.compute_dtype is not None:
        kwargs['dot_general'] = functools.partial(_mixed_dense_dot,
                                                  dtype=self.compute_dtype)
      self.readout = nn.Dense(self.vocab_size, **kwargs)
    else:
      self.readout_bias = self.param('readout_bias', nn.initializers.zeros,
                                     (self.vocab_size,))
    self.drop = layers.dropout(self.dropout, self.variational)

  def _make_stack(self, parent):
    return layers.RNNStack(
        time_major=True,
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, dropout=self.dropout,
        **{k: getattr(self, k) for k in layers.REGULARISERS},
        activation=self.activation, init_scale=self.init_scale,
        recurrent=self.recurrent, unroll=self.unroll,
        remat_chunk=self.remat_chunk, compute_dtype=self.compute_dtype,
        cudnn=self.cudnn, scan=self.scan, block=self.block,
        mlp_ratio=self.mlp_ratio, one_hot_size=0 if self.embed_size else self.vocab_size, parent=parent)

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


class MemoryModel(nn.Module):
  """The memory tasks' model: inputs -> RNNStack -> o_t = W_ho h_t + b_o at
  every step ([B, T, O]; the copy tasks) or at the last step only ([B, O];
  the adding problem). Inputs are [B, T] ids of `one_hot_size`-wide one-hot
  vectors, or [B, T, D] values; every sequence has the same length."""
  outputs: int
  one_hot_size: int = 0
  every_step: bool = True
  cell: str = 'lstm'
  hidden_size: int = 128
  num_layers: int = 1
  activation: str = 'tanh'
  unroll: int = 1
  scan: str = 'auto'

  @nn.compact
  def __call__(self, inputs):
    hs, _ = layers.RNNStack(
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, activation=self.activation,
        unroll=self.unroll, scan=self.scan,
        one_hot_size=self.one_hot_size)(inputs)                  # [B, T, H]
    hs = hs if self.every_step else hs[:, -1]
    return nn.Dense(self.outputs)(hs)


READOUTS = ('last', 'mean', 'max', 'attention')


def word_dropout(module: nn.Module, tokens, rate: float, unk_id: int):
  """Each token becomes `unk_id` with probability `rate` (the module's
  'dropout' rng), so that the <unk> embedding is trained on real contexts."""
  if rate <= 0:
    return tokens
  drop = jax.random.bernoulli(module.make_rng('dropout'), rate, tokens.shape)
  return jnp.where(drop, unk_id, tokens)


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
  variational: bool = False      # see layers.RNNStack
  recurrent_dropout: float = 0.0
  weight_dropout: float = 0.0
  unk_id: int = 0
  activation: str = 'tanh'
  init_scale: float | None = None
  unroll: int = 1
  scan: str = 'auto'

  def _stack(self, parent):
    return layers.RNNStack(
        time_major=True,
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, bidirectional=self.bidirectional,
        dropout=self.dropout, activation=self.activation,
        init_scale=self.init_scale, unroll=self.unroll, scan=self.scan,
        **{k: getattr(self, k) for k in layers.REGULARISERS}, parent=parent)

  @nn.compact
  def __call__(self, tokens, lengths, *, train: bool = False):
    """tokens [B, T] int, lengths [B] -> logits [B, num_classes]."""
    chex.assert_rank(tokens, 2)
    if self.readout not in READOUTS:
      raise ValueError(f'readout must be one of {READOUTS}')
    mask = recurrence.lengths_to_mask(lengths, tokens.shape[1])  # [T, B]
    tokens = tokens.T
    if train:
      tokens = word_dropout(self, tokens, self.word_dropout, self.unk_id)
    xs = nn.Embed(self.vocab_size, self.embed_size, name='embed')(tokens)
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


class Tagger(nn.Module):
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
  cell: str = 'lstm'
  hidden_size: int = 200
  num_layers: int = 1
  bidirectional: bool = True
  crf: bool = True
  dropout: float = 0.5
  word_dropout: float = 0.0
  variational: bool = False      # see layers.RNNStack
  recurrent_dropout: float = 0.0
  weight_dropout: float = 0.0
  unk_id: int = 0
  unroll: int = 1
  scan: str = 'auto'

  def setup(self):
    self.embed = nn.Embed(self.vocab_size, self.embed_size)
    self.feature_embeds = [nn.Embed(n, self.feature_embed_size)
                           for n in self.feature_vocab_sizes]
    if self.char_vocab_size:
      self.char_embed = nn.Embed(self.char_vocab_size, self.char_embed_size)
      self.char_rnn = layers.RNNStack(
          time_major=True,
          cell=self.cell, hidden_size=self.char_hidden_size,
          bidirectional=True, unroll=self.unroll, scan=self.scan)
    self.stack = layers.RNNStack(
        time_major=True,
        cell=self.cell, hidden_size=self.hidden_size,
        num_layers=self.num_layers, bidirectional=self.bidirectional,
        dropout=self.dropout, unroll=self.unroll, scan=self.scan,
        **{k: getattr(self, k) for k in layers.REGULARISERS})
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
               char_lengths=None, *, train: bool = False):
    """tokens [B, T], lengths [B], features [B, T, F], chars [B, T, L],
    char_lengths [B, T] -> emission scores [B, T, num_tags]."""
    chex.assert_rank(tokens, 2)
    mask = recurrence.lengths_to_mask(lengths, tokens.shape[1])   # [T, B]
    tokens = tokens.T
    if train:
      tokens = word_dropout(self, tokens, self.word_dropout, self.unk_id)
    parts = [self.embed(tokens)]
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


ATTENTIONS = ('none', 'additive', 'multiplicative')


class Seq2Seq(nn.Module):
  """Many-to-many: an encoder RNNStack reads the source, a decoder writes the
  target one token per `step`.

  The decoder's initial state is tanh(W [final encoder states of the matching
  layer, both directions]). Its input at step t is the embedding of the
  previous target token together with a context vector:
    'none': the encoder's final top-layer state at every step (d2l's seq2seq);
    'additive' (Bahdanau et al. 2015): attention over the encoder outputs
      h_j queried by the previous decoder state s_{t-1}, scores
      v . tanh(W s_{t-1} + U h_j);
    'multiplicative' (Luong et al. 2015, 'general' with input feeding): the
      context is computed after the cell from s_t, scores s_t . W h_j, and
      the attentional state tanh(W_c [s_t; c_t]) is the output features and
      next step's extra input.
  For 'none' and 'additive' the output features are [s_t; c_t; e_t] (e_t the
  input embedding); `readout_size` > 0 passes them through a tanh layer of
  that size first (Bahdanau's deep output, and far fewer multiply-adds in
  the vocabulary projection). Padding of the source is masked everywhere:
  in the encoder scan and in the attention softmax.

  `hierarchical`: the source is statements (a bAbI story's sentences, then
  the question), each ended by the token `separator_id`. The encoder reads
  each statement on its own (its carry restarts at every statement); a
  statement's vector is its forward final state (with the backward one read
  from its first token); a learned embedding of its position counted from
  the end (the question 0, the last statement 1, ...) is added. An RNN
  reads these vectors, each beside the question's (the last statement's),
  so that what it keeps depends on what is asked; its outputs are added to
  the vectors (residually), and its final states start the decoder, which
  attends over the statements only: memory networks' reading of a story
  (Sukhbaatar et al. 2015), built from this project's recurrent layers.

  Use `encode` once per batch and then `step` per target position (the
  loops live outside the module; see `seq2seq_logits` and `decoding`).
  """
  source_vocab_size: int
  target_vocab_size: int
  embed_size: int = 256
  encoder_cell: str = 'gru'
  encoder_hidden_size: int = 256
  encoder_layers: int = 1
  bidirectional: bool = True
  decoder_cell: str = 'gru'
  hidden_size: int = 256
  decoder_layers: int = 1
  attention: str = 'additive'
  attention_size: int = 0        # 0: hidden_size
  readout_size: int = 0
  dropout: float = 0.0
  variational: bool = False      # the encoder's, see layers.RNNStack
  recurrent_dropout: float = 0.0
  weight_dropout: float = 0.0
  unroll: int = 1
  scan: str = 'auto'
  hierarchical: bool = False
  separator_id: int = -1         # hierarchical: the token ending a statement
  max_statements: int = 64       # hierarchical: the statements read (the
                                 # question included), the last ones

  def setup(self):
    if self.attention not in ATTENTIONS:
      raise ValueError(f'attention must be one of {ATTENTIONS}')
    if self.hierarchical and self.separator_id < 0:
      raise ValueError('hierarchical needs the separator_id of the source')
    self.source_embed = nn.Embed(self.source_vocab_size, self.embed_size)
    self.target_embed = nn.Embed(self.target_vocab_size, self.embed_size)
    self.encoder = layers.RNNStack(
        time_major=True,
        cell=self.encoder_cell, hidden_size=self.encoder_hidden_size,
        num_layers=self.encoder_layers, bidirectional=self.bidirectional,
        dropout=self.dropout, unroll=self.unroll, scan=self.scan,
        **{k: getattr(self, k) for k in layers.REGULARISERS})
    self.cell = cells_lib.make_cell(self.decoder_cell, self.hidden_size)
    memory_size = self.encoder_hidden_size * (2 if self.bidirectional else 1)
    if self.hierarchical:
      self.position_embed = nn.Embed(self.max_statements, memory_size)
      self.statement_encoder = layers.RNNStack(
          time_major=True,
          cell=self.encoder_cell, hidden_size=self.encoder_hidden_size,
          bidirectional=self.bidirectional, unroll=self.unroll,
          scan=self.scan)
    feed_size = (self.hidden_size if self.attention == 'multiplicative'
                 else memory_size)
    self.cell_params = [
        self.param(f'decoder{l}', self.cell.init,
                   (self.embed_size + feed_size) if l == 0 else self.hidden_size)
        for l in range(self.decoder_layers)]
    # One dense layer per decoder layer and carry leaf (LSTM: c and h).
    self.carry_widths = [leaf.shape[-1] for leaf in
                         jax.tree.leaves(self.cell.initial_carry(1))]
    self.bridge = [nn.Dense(w) for _ in range(self.decoder_layers)
                   for w in self.carry_widths]
    size = self.attention_size or self.hidden_size
    if self.attention == 'additive':
      self.attention_query = nn.Dense(size, use_bias=False)
      self.attention_key = nn.Dense(size)
      self.attention_score = nn.Dense(1, use_bias=False)
    elif self.attention == 'multiplicative':
      self.attention_key = nn.Dense(self.hidden_size, use_bias=False)
      self.attentional = nn.Dense(self.hidden_size)
    if self.readout_size:
      self.readout = nn.Dense(self.readout_size)
    self.output = nn.Dense(self.target_vocab_size)
    self.drop = nn.Dropout(self.dropout)
    if self.variational:  # one mask per sequence over the source
      self.source_drop = layers.dropout(self.dropout, variational=True)

  def encode(self, source, lengths, *, train: bool = False):
    """source [B, S] ids, lengths [B] -> (context, initial decoder state).

    The context holds what every step reads: the encoder outputs `memory`
    [B, S, M], the attention keys, the source `mask` [B, S] and `summary`
    (the final top-layer state). The state holds the decoder carry (one per
    layer) and, for multiplicative attention, the fed-back attentional
    state.
    """
    chex.assert_rank(source, 2)
    mask = recurrence.lengths_to_mask(lengths, source.shape[1])   # [S, B]
    drop = self.source_drop if self.variational else self.drop
    xs = drop(self.source_embed(source.T), deterministic=not train)
    if self.hierarchical:
      memory, mask, summary = self._read_statements(source.T, xs, mask,
                                                    lengths, train)
      states = [summary] * self.decoder_layers
    else:
      hs, final = self.encoder(xs, mask=mask, train=train)
      memory = jnp.swapaxes(hs, 0, 1)                              # [B, S, M]
      dirs = self.encoder.num_directions
      enc_cell = self.encoder.make_cell()
      def layer_state(l):
        return jnp.concatenate([enc_cell.hidden(c) for c in
                                final[l * dirs:(l + 1) * dirs]], axis=-1)
      summary = layer_state(self.encoder_layers - 1)
      states = [layer_state(min(l, self.encoder_layers - 1))
                for l in range(self.decoder_layers)]
    carry = []
    per_layer = len(self.carry_widths)
    treedef = jax.tree.structure(self.cell.initial_carry(1))
    for l, h in enumerate(states):
      leaves = [jnp.tanh(d(h)) for d in
                self.bridge[l * per_layer:(l + 1) * per_layer]]
      carry.append(jax.tree.unflatten(treedef, leaves))
    context = {'memory': memory, 'mask': mask.T, 'summary': summary}
    if self.attention != 'none':
      context['keys'] = self.attention_key(memory)
    state = {'carry': tuple(carry)}
    if self.attention == 'multiplicative':
      state['feed'] = jnp.zeros((source.shape[0], self.hidden_size),
                                memory.dtype)
    return context, state

  def _read_statements(self, source, xs, mask, lengths, train):
    """source [S, B] -> (memory [B, S, M], zero but at each statement's
    end; the mask of those ends [S, B]; the statement RNN's final states
    [B, M]). Only the last `max_statements` statements are read."""
    ends = (source == self.separator_id) & mask
    starts = jnp.concatenate([jnp.ones_like(ends[:1]), ends[:-1]]) & mask
    hs, _ = self.encoder(xs, mask=mask, resets=starts, train=train)
    steps = jnp.arange(source.shape[0])[:, None]
    first = jax.lax.cummax(jnp.where(starts, steps, 0), axis=0)  # [S, B]
    if self.bidirectional:  # the backward state at a statement's first token
      h = self.encoder_hidden_size
      backward = jnp.take_along_axis(hs[..., h:], first[..., None], axis=0)
      hs = jnp.concatenate([hs[..., :h], backward], -1)
    # Each statement's bag of words (the sum of its embeddings so far).
    sums = jnp.cumsum(jnp.where(mask[..., None], xs, 0), 0)
    before = jnp.take_along_axis(sums, jnp.maximum(first - 1, 0)[..., None], 0)
    bags = sums - jnp.where((first > 0)[..., None], before, 0)
    last = lambda x: jnp.broadcast_to(jnp.take_along_axis(
        x, (lengths - 1)[None, :, None], 0), x.shape)     # the question's
    position = jnp.cumsum(ends[::-1], 0)[::-1] - 1     # statements after
    ends &= position < self.max_statements
    vectors = hs + self.position_embed(
        jnp.clip(position, 0, self.max_statements - 1))
    # The statement RNN reads each statement beside the question, and the
    # products of their states and of their bags of words (a gate, linear
    # in its inputs, cannot compare two vectors otherwise): what it keeps
    # depends on what is asked.
    question, question_bag = last(hs), last(bags)
    reader_inputs = jnp.concatenate(
        [vectors, question, vectors * question, bags, question_bag,
         bags * question_bag], -1)
    # It runs over the statements' ends only, gathered in order to the
    # front ([N, B], N = at most max_statements), not over every token.
    count = ends.sum(0)                                            # [B]
    n = min(source.shape[0], self.max_statements)
    order = jnp.argsort(~ends, axis=0, stable=True)[:n]     # [N, B]
    gather = lambda x, i: jnp.take_along_axis(x, i[..., None], 0)
    read = jnp.arange(n)[:, None] < count
    context, final = self.statement_encoder(
        self.drop(gather(reader_inputs, order), deterministic=not train),
        mask=read, train=train)
    cell = self.statement_encoder.make_cell()
    summary = jnp.concatenate([cell.hidden(c) for c in final], -1)
    index = jnp.clip(jnp.cumsum(ends, 0) - 1, 0, n - 1)   # statement of s
    memory = jnp.where(ends[..., None], vectors + gather(context, index), 0)
    return jnp.swapaxes(memory, 0, 1), ends, summary

  def _attend(self, context, scores):
    """Masked softmax over source positions -> (context vector, weights)."""
    mask = context['mask']
    weights = jnp.where(mask, jax.nn.softmax(scores, axis=-1, where=mask), 0)
    return jnp.einsum('bs,bsm->bm', weights, context['memory']), weights

  def step(self, tokens, state, context, *, train: bool = False):
    """tokens [B] (the previous target token) -> (logits [B, V], new state,
    attention weights [B, S] (zeros without attention))."""
    emb = self.drop(self.target_embed(tokens), deterministic=not train)
    carry = state['carry']
    top = self.cell.hidden(carry[-1])
    weights = jnp.zeros(context['mask'].shape, emb.dtype)
    if self.attention == 'none':
      ctx = context['summary']
      x = jnp.concatenate([emb, ctx], -1)
    elif self.attention == 'additive':
      scores = self.attention_score(jnp.tanh(
          context['keys'] + self.attention_query(top)[:, None]))[..., 0]
      ctx, weights = self._attend(context, scores)
      x = jnp.concatenate([emb, ctx], -1)
    else:
      x = jnp.concatenate([emb, state['feed']], -1)
    new_carry = []
    for l, params in enumerate(self.cell_params):
      if l:
        x = self.drop(x, deterministic=not train)
      c, x = self.cell.step(params, carry[l],
                            self.cell.input_projection(params, x))
      new_carry.append(c)
    new_state = {'carry': tuple(new_carry)}
    if self.attention == 'multiplicative':
      scores = jnp.einsum('bh,bsh->bs', x, context['keys'])
      ctx, weights = self._attend(context, scores)
      features = jnp.tanh(self.attentional(jnp.concatenate([x, ctx], -1)))
      new_state['feed'] = features
    else:
      features = jnp.concatenate([x, ctx, emb], -1)
      if self.readout_size:
        features = jnp.tanh(self.readout(features))
    logits = self.output(self.drop(features, deterministic=not train))
    return logits, new_state, weights

  def __call__(self, source, lengths, target_inputs, *, train: bool = False):
    """Teacher-forced logits [B, T, V] (used to initialise the params)."""
    context, state = self.encode(source, lengths, train=train)
    logits = []
    for t in range(target_inputs.shape[1]):
      out, state, _ = self.step(target_inputs[:, t], state, context,
                                train=train)
      logits.append(out)
    return jnp.stack(logits, 1)


def seq2seq_logits(model: Seq2Seq, params, source, lengths, target_inputs,
                   *, rng=None, train: bool = False,
                   teacher_forcing: float = 1.0):
  """Runs the decoder over the target as a lax.scan.

  Returns logits [B, T, V] and attention weights [B, T, S]. With
  `teacher_forcing` < 1 (training only), each step after the first reads
  the gold previous token with that probability and otherwise the model's
  own previous prediction (argmax).
  """
  rngs = lambda k: {'dropout': k} if train else {}
  enc_rng, coin_rng, step_rng = (jax.random.split(rng, 3) if train
                                 else (None, None, None))
  variables = {'params': params}
  context, state = model.apply(variables, source, lengths, train=train,
                               rngs=rngs(enc_rng), method=Seq2Seq.encode)
  inputs = target_inputs.T                                         # [T, B]
  num_steps = inputs.shape[0]
  forced = True
  if train and teacher_forcing < 1.0:
    forced = jax.random.bernoulli(coin_rng, teacher_forcing, inputs.shape)
    forced = forced.at[0].set(True)

  def body(carry, xs):
    state, previous = carry
    t, gold, use_gold = xs
    tokens = jnp.where(use_gold, gold, previous.argmax(-1))
    step_rngs = rngs(jax.random.fold_in(step_rng, t)) if train else {}
    logits, state, weights = model.apply(
        variables, tokens, state, context, train=train, rngs=step_rngs,
        method=Seq2Seq.step)
    return (state, logits), (logits, weights)

  previous = jnp.zeros((inputs.shape[1], model.target_vocab_size))
  use_gold = jnp.broadcast_to(forced, inputs.shape)
  _, (logits, weights) = jax.lax.scan(
      body, (state, previous), (jnp.arange(num_steps), inputs, use_gold))
  return jnp.swapaxes(logits, 0, 1), jnp.swapaxes(weights, 0, 1)
