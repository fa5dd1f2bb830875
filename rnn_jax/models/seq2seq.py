"""Encoder-decoder with attention, flat or hierarchical."""

from __future__ import annotations

import functools
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax import decoding
from rnn_jax import layers
from rnn_jax import recurrence
from rnn_jax.models.common import padded_ids


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
  unroll: int = 1                # layers.RUN_FIELDS, for both sides
  scan: str = 'auto'
  chunk_size: int = 64
  num_heads: int = 4
  short_conv: int = 0
  hierarchical: bool = False
  separator_id: int = -1         # hierarchical: the token ending a statement
  max_statements: int = 64       # hierarchical: the statements read (the
                                 # question included), the last ones

  def _fields(self, names):
    return {name: getattr(self, name) for name in names}

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
        dropout=self.dropout, **self._fields(layers.RUN_FIELDS),
        **self._fields(layers.REGULARISERS))
    self.cell = cells_lib.make_cell(self.decoder_cell, self.hidden_size,
                                    num_heads=self.num_heads,
                                    short_conv=self.short_conv)
    memory_size = self.encoder_hidden_size * (2 if self.bidirectional else 1)
    if self.hierarchical:
      self.position_embed = nn.Embed(self.max_statements, memory_size)
      self.statement_encoder = layers.RNNStack(
          time_major=True,
          cell=self.encoder_cell, hidden_size=self.encoder_hidden_size,
          bidirectional=self.bidirectional, **self._fields(layers.RUN_FIELDS))
    feed_size = (self.hidden_size if self.attention == 'multiplicative'
                 else memory_size)
    self.cell_params = [
        self.param(f'decoder{l}', self.cell.init,
                   (self.embed_size + feed_size) if l == 0 else self.hidden_size)
        for l in range(self.decoder_layers)]
    # One dense layer per decoder layer and carry leaf (LSTM: c and h).
    self.carry_shapes = [leaf.shape[1:] for leaf in
                         jax.tree.leaves(self.cell.initial_carry(1))]
    self.bridge = [nn.Dense(math.prod(shape)) for _ in
                   range(self.decoder_layers) for shape in self.carry_shapes]
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
    per_layer = len(self.carry_shapes)
    treedef = jax.tree.structure(self.cell.initial_carry(1))
    for l, h in enumerate(states):
      leaves = [jnp.tanh(d(h)).reshape(h.shape[:1] + shape) for d, shape in
                zip(self.bridge[l * per_layer:(l + 1) * per_layer],
                    self.carry_shapes)]
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


@functools.lru_cache(maxsize=8)
def _decoder(model: Seq2Seq):
  """The jitted encoder and `decoding`'s step_fn, one pair per model (the
  decoders compile once per step_fn)."""
  encode = jax.jit(lambda params, tokens, lengths: model.apply(
      {'params': params}, tokens, lengths, method=Seq2Seq.encode))

  def step(params, context, tokens, state):
    logits, state, _ = model.apply({'params': params}, tokens, state, context,
                                   method=Seq2Seq.step)
    return logits, state
  return encode, step


@functools.partial(jax.jit, static_argnames=('model', 'bos', 'eos'))
def log_likelihood(model: Seq2Seq, params, tokens, lengths, outputs, *,
                   bos: int, eos: int) -> jax.Array:
  """log p(output | source) [B] of decoded outputs [B, L] (eos-filled after
  the end): the sum over the output's tokens up to its first <eos>, which
  counts (all L when there is none), under teacher forcing."""
  inputs = jnp.concatenate([jnp.full_like(outputs[:, :1], bos),
                            outputs[:, :-1]], axis=1)
  logits, _ = seq2seq_logits(model, params, tokens, lengths, inputs)
  token = jnp.take_along_axis(jax.nn.log_softmax(logits),
                              outputs[..., None], axis=-1)[..., 0]
  steps = jnp.arange(outputs.shape[1])
  ends = jnp.where((outputs == eos).any(1), (outputs == eos).argmax(1),
                   outputs.shape[1] - 1)
  return jnp.where(steps[None] <= ends[:, None], token, 0.0).sum(1)


def decode(model: Seq2Seq, params, tokens, lengths, rng=None, *,
           method: str, **options) -> jax.Array:
  """Source batch (tokens [B, S], lengths [B]) -> target ids [B, max_length],
  eos-filled after each end, decoded by `decoding.decode_with(method,
  **options)`."""
  encode, step = _decoder(model)
  context, state = encode(params, tokens, lengths)
  return decoding.decode_with(method, step, params, context, state, rng,
                              **options)


def exports(model: Seq2Seq, params, pad_id: int, bos: int, eos: int,
            max_length: int) -> dict:
  """The function `--mode=export` serialises, with symbolic batch and
  source length: `translate`, greedy decoding of `max_length` target ids
  from padded source ids, with its argument specs and a description of
  its inputs and outputs."""
  def translate(tokens, lengths):
    ids = decode(model, params, tokens, lengths, method='greedy', bos=bos,
                 eos=eos, max_length=max_length)
    return {'output': ids.astype(jnp.int32)}
  specs, inputs = padded_ids('source ids (vocabs/source.json) as data.* '
                             'tokenizes them', pad_id)
  return {'translate': (translate, specs, {
      'inputs': inputs,
      'outputs': [
          {'name': 'output', 'shape': ['batch', max_length], 'dtype': 'int32',
           'meaning': f'greedy target ids (vocabs/target.json) after <bos> '
                      f'({bos}), {eos} (<eos>) from the end on'}],
  })}
