"""The language model: embedding (or one-hot), a recurrent stack, a
readout over the vocabulary."""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import cells
from rnn_jax import layers
from rnn_jax.errors import InputError
from rnn_jax.models.common import mixed_dense_dot, uniform


def check_fields(m):
  """Refuses (InputError, naming the field) `model.*` fields of a config
  that cannot build a model together."""
  if m.tie_weights and m.embed_size != m.hidden_size:
    raise InputError('config field model.tie_weights: the readout is the '
                     f'embedding, so model.embed_size={m.embed_size} must '
                     f'equal model.hidden_size={m.hidden_size}')
  if m.remat_chunk and issubclass(cells.CELLS[m.cell], cells.LinearCell):
    raise InputError('config field model.remat_chunk: rematerialisation '
                     'applies to cells with a recurrent matmul or a matrix '
                     f'memory, not model.cell={m.cell}')
  if m.cudnn and (m.cell != 'lstm' or not m.recurrent or m.remat_chunk
                  or m.dtype != 'float32'):
    raise InputError('config field model.cudnn: cuDNN runs a recurrent '
                     'float32 LSTM (model.cell=lstm, model.dtype=float32, '
                     'model.remat_chunk=0)')


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


@functools.lru_cache(maxsize=8)
def apply_fn(model: LanguageModel):
  """jit(params, tokens [B, T], carry) -> (logits, carry), one per model."""
  return jax.jit(lambda p, ids, c: model.apply({'params': p}, ids, c))


@functools.lru_cache(maxsize=8)
def step_fn(model: LanguageModel):
  """`decoding.generate`'s step_fn(params, tokens [B], carry) ->
  (logits [B, V], carry); one function per model, so that generation
  compiles once."""
  def step(params, tokens, carry):
    logits, carry = model.apply({'params': params}, tokens[:, None], carry)
    return logits[:, 0], carry
  return step


def state_names(model: LanguageModel) -> list[tuple[str, str]]:
  """(name, meaning) of each leaf of the model's carry, in order: layer by
  layer, an LSTM's c before its h."""
  cell = model._make_stack(parent=None).make_cell()  # pylint: disable=protected-access
  count = len(jax.tree.leaves(cell.initial_carry(1)))
  parts = ([('c', 'memory cell c_t'), ('h', 'hidden state h_t')]
           if isinstance(cell, cells.LSTM) else
           [(f's{i}', f'state part {i}') for i in range(count)] if count > 1
           else [('h', 'state h_t')])
  return [(f'layer{layer}_{n}', f'layer {layer}: {m} (zeros to start)')
          for layer in range(model.num_layers) for n, m in parts]


def exports(model: LanguageModel, params) -> dict:
  """The functions `--mode=export` serialises, with symbolic batch and time:
  `step` reads tokens from a state and returns every position's logits and
  the new state; `predict` returns the next token's probabilities after
  them. Each returns a dict of its named outputs and comes with its
  argument specs and a description of its inputs and outputs."""
  leaves = jax.tree.leaves(model.initial_carry(1))
  treedef = jax.tree.structure(model.initial_carry(1))
  names = [n for n, _ in state_names(model)]

  def step(tokens, *state):
    logits, carry = model.apply({'params': params}, tokens,
                                jax.tree.unflatten(treedef, state))
    return {'logits': logits, **dict(zip(names, jax.tree.leaves(carry)))}

  def predict(tokens, *state):
    out = step(tokens, *state)
    return {'probabilities': jax.nn.softmax(out.pop('logits')[:, -1]), **out}

  b, t = jax.export.symbolic_shape('batch, time')
  specs = (jax.ShapeDtypeStruct((b, t), jnp.int32),
           *(jax.ShapeDtypeStruct((b,) + x.shape[1:], x.dtype)
             for x in leaves))
  state = [{'name': n, 'shape': ['batch', x.shape[1]], 'dtype': str(x.dtype),
            'meaning': m} for (n, m), x in zip(state_names(model), leaves)]
  tokens = {'name': 'tokens', 'shape': ['batch', 'time'], 'dtype': 'int32',
            'meaning': 'token ids (vocabs/vocab.json), read left to right'}
  v = model.vocab_size
  logits = {'name': 'logits', 'shape': ['batch', 'time', v],
            'dtype': 'float32',
            'meaning': "the next token's logits at every position"}
  probabilities = {'name': 'probabilities', 'shape': ['batch', v],
                   'dtype': 'float32', 'meaning': "the next token's "
                   'probabilities after the last token'}
  return {'step': (step, specs, {'inputs': [tokens, *state],
                                 'outputs': [logits, *state]}),
          'predict': (predict, specs, {'inputs': [tokens, *state],
                                       'outputs': [probabilities, *state]})}
