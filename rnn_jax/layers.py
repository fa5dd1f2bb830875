"""Deep and bidirectional stacks of cells."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax import configlib
from rnn_jax import gradflow
from rnn_jax import recurrence
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError


BLOCKS = ('stack', 'residual')
# The `model` fields of an RNNStack that experiments share
# (configlib.group('model', FIELDS, names..., defaults...)).
FIELDS = {
    'cell': Field('lstm', 'the recurrence (rnn_jax.cells.CELLS)',
                  choices=tuple(cells_lib.CELLS)),
    'hidden_size': Field(256, 'units per layer (and direction)', at_least=1),
    'num_layers': Field(1, 'stacked layers', at_least=1),
    'bidirectional': Field(True, 'each layer reads both directions'),
    'activation': Field('tanh', "the rnn cell's nonlinearity",
                        choices=tuple(cells_lib.ACTIVATIONS)),
    'block': Field('stack', "stack: the lecture's deep RNN; residual: "
                   'pre-norm blocks with an MLP (any cell)', choices=BLOCKS),
    'unroll': Field(1, 'steps per iteration of the scan loop', at_least=1),
    'scan': Field('auto', 'cells without W_hh: the form over time (see '
                  'docs/cells.md); auto: linear cells sequential on CPU, '
                  'else parallel; matrix cells chunkwise',
                  choices=recurrence.SCANS),
    'chunk_size': Field(64, "scan=chunkwise: the chunks' length in steps",
                        at_least=1),
    'num_heads': Field(4, 'matrix-memory cells: heads (they divide '
                       'hidden_size)', at_least=1),
    'short_conv': Field(0, 'matrix-memory cells: the width of the causal '
                        'convolution on q, k, v (0: none)', at_least=0),
}


# How a stack runs over time, which every experiment declares.
RUN_FIELDS = ('unroll', 'scan', 'chunk_size', 'num_heads', 'short_conv')


def dropout(rate: float, variational: bool = False) -> nn.Dropout:
  """Dropout of time-major [T, B, ...] arrays: one mask per step, or with
  `variational` one per sequence, shared by its steps."""
  return nn.Dropout(rate, broadcast_dims=(0,) if variational else ())


# The regularisers every model passes to its RNNStack (see there), off by
# default; every experiment's `model` group declares them.
REGULARISERS = {
    'variational': Field(False, "dropout's masks per sequence, not per step "
                         '(inputs, between layers, outputs)'),
    'recurrent_dropout': configlib.fraction(0.0, 'on the state each step '
                                            'reads, one mask per sequence'),
    'weight_dropout': configlib.fraction(0.0, 'DropConnect on W_hh, one mask '
                                         'per batch (AWD-LSTM)'),
}


# The cell fields an experiment may declare, each with the fields of the
# widths it runs at; the first one declared is the stack's.
CELL_FIELDS = {'model.cell': ('model.hidden_size', 'model.char_hidden_size'),
               'model.encoder_cell': ('model.encoder_hidden_size',),
               'model.decoder_cell': ('model.hidden_size',)}


def check_fields(config):
  """Refuses (InputError, naming the field) `model.` fields of a config that
  cannot build its stacks together (`CELL_FIELDS`: the cells it declares,
  at the widths it declares; the regularisers act on the first).

  Weight dropout needs a cell with a recurrent W_hh, recurrent dropout a
  vector state outside cuDNN; a matrix-memory cell's heads divide its
  widths, and its state is neither masked nor probed for gradients."""
  fields = configlib.flatten(config)
  cells = {cell: tuple(w for w in widths if w in fields)
           for cell, widths in CELL_FIELDS.items() if cell in fields}
  cell_field = next(iter(cells))
  name = fields[cell_field]
  has_w_hh = (cells_lib.CELLS[name].recurrent_matmul
              and fields.get('model.recurrent', True))
  if fields.get('model.weight_dropout') and not has_w_hh:
    raise InputError('config field model.weight_dropout: DropConnect acts on '
                     f'W_hh, which {cell_field}={name} does not have here')
  if fields.get('model.recurrent_dropout') and fields.get('model.cudnn'):
    raise InputError('config field model.recurrent_dropout: cuDNN cannot '
                     'mask the recurrent state (set model.cudnn=false, or '
                     'use model.weight_dropout)')
  matrix = [field for field in cells if issubclass(
      cells_lib.CELLS[fields[field]], cells_lib.MatrixCell)]
  conv = fields.get('model.short_conv', 0)
  if conv and not matrix:
    raise InputError('config field model.short_conv: the convolution on q, k '
                     f'and v of matrix-memory cells; {cell_field}={name} has '
                     'none')
  if conv == 1:
    raise InputError('config field model.short_conv: 0 (none) or a width '
                     '>= 2, got 1')
  for field, widths in cells.items():
    if field not in matrix:
      continue
    heads = fields.get('model.num_heads', 4)
    for width in widths:
      if fields[width] % heads:
        raise InputError(f'config field model.num_heads: {field}='
                         f'{fields[field]} splits {width}={fields[width]} '
                         f'into {heads} heads; choose a divisor')
    for unsupported in ('model.recurrent_dropout',
                        'train.grad_flow_every_steps'):
      if field == cell_field and fields.get(unsupported):
        raise InputError(f'config field {unsupported}: not available for '
                         f'the matrix-memory cell {cell_field}={name}')


class StackFields(nn.Module):
  """What a recurrent stack is (`RNNStack`'s fields), declared once: the
  stack and every model built on one (`class M(StackFields, kw_only=True)`)
  share them, and `make_stack` builds the stack a model's fields describe."""
  cell: str = 'lstm'
  hidden_size: int = 128
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  variational: bool = False
  recurrent_dropout: float = 0.0
  weight_dropout: float = 0.0
  activation: str = 'tanh'
  init_scale: float | None = None
  recurrent: bool = True
  unroll: int = 1
  remat_chunk: int = 0  # see recurrence.run
  compute_dtype: Any = None  # the matmuls' operand dtype, see cells.Cell
  cudnn: bool = False  # LSTM through cuDNN on CUDA GPUs, see recurrence.run
  scan: str = 'auto'  # cells without W_hh: the form, see recurrence.run
  chunk_size: int = 64  # scan='chunkwise', see recurrence.run
  num_heads: int = 4  # matrix-memory cells, see cells.matrix
  short_conv: int = 0  # matrix-memory cells, see cells.matrix
  block: str = 'stack'  # stack | residual (see RNNStack)
  mlp_ratio: int = 4  # residual blocks: the MLP's width / the stream's

  def make_stack(self, **changes) -> 'RNNStack':
    """The RNNStack of these fields, with `changes` (time_major, parent,
    one_hot_size, ...)."""
    fields = {name: getattr(self, name) for name in STACK_FIELDS}
    return RNNStack(**{**fields, **changes})


STACK_FIELDS = tuple(name for name in StackFields.__annotations__
                     if name not in ('parent', 'name'))


class RNNStack(StackFields):
  """`num_layers` cells, each optionally bidirectional, dropout in between.

  block='stack': each layer's outputs are the next layer's inputs (the
  lecture's deep RNN). block='residual': the pre-norm residual block the
  linear-recurrence papers build their models from (Feng et al. 2024's
  minGRU/minLSTM language models, the LRU's and Griffin's stacks), for any
  cell: the inputs are first projected to the stream width hidden_size *
  directions (a lookup for one-hot ids, else a dense layer, when the widths
  differ), then per layer x <- x + Dropout(RNN(LN(x))) and, with
  mlp_ratio > 0, x <- x + Dropout(MLP(LN(x))), MLP = Dense(mlp_ratio *
  width) -> GELU -> Dense(width); a last LN normalises the outputs.

  Regularisers (training only; each off at 0):
    dropout: between layers (residual: on each block's branches);
      `variational` draws one mask per sequence, shared by every step (Gal &
      Ghahramani 2016), instead of one per step.
    recurrent_dropout: variational dropout on the state each step's
      recurrence reads (h_{t-1} in W_hh h_{t-1}, or in a_t h_{t-1} for a
      linear cell): one mask per sequence, layer and direction.
    weight_dropout: DropConnect on W_hh (Wan et al. 2013; AWD-LSTM's weight
      drop): one mask of the matrix per batch and layer, shared by every
      step and sequence; cells with a recurrent matmul only. Being a change
      of the weights, it runs on every path (the hoisted projection, the
      hand-written backward, cuDNN's packed weights).
  Each rate r scales what it keeps by 1 / (1 - r).

  The carry is a tuple with one cell carry per (layer, direction), ordered
  layer-major: (l0 forward, l0 backward, l1 forward, ...).
  """
  one_hot_size: int = 0  # the width of one-hot inputs given as [T, B] ids
  time_major: bool = False  # inputs, masks and outputs [T, B, ...], not
                            # [B, T, ...] (the models use it inside)

  @property
  def num_directions(self) -> int:
    return 2 if self.bidirectional else 1

  @property
  def output_size(self) -> int:
    return self.hidden_size * self.num_directions

  def make_cell(self) -> cells_lib.Cell:
    return cells_lib.make_cell(self.cell, self.hidden_size,
                               activation=self.activation,
                               init_scale=self.init_scale,
                               recurrent=self.recurrent,
                               compute_dtype=self.compute_dtype,
                               num_heads=self.num_heads,
                               short_conv=self.short_conv)

  def initial_carry(self, batch_size: int) -> tuple[Any, ...]:
    cell = self.make_cell()
    return tuple(cell.initial_carry(batch_size)
                 for _ in range(self.num_layers * self.num_directions))

  @nn.compact
  def __call__(self, xs, carry=None, *, lengths=None, mask=None, resets=None,
               train: bool = False, return_carries: bool = False):
    """xs [B, T, D] (or [B, T] one-hot ids, see `one_hot_size`) ->
    (ys [B, T, H * num_directions], final carry); with `time_major`, xs, ys
    and the masks are [T, B, ...].

    lengths [B]: each row's real steps, the rest padding (or mask [B, T],
    False on padding; see `recurrence.run`). resets [B, T]: True where a
    segment starts, every layer restarting from its initial carry there
    (see `recurrence.run`). `return_carries` also returns each (layer,
    direction)'s carry after every step, ordered as the carry, each leaf
    with the time axis where the inputs have it (see `recurrence.run`)."""
    if lengths is not None:
      if mask is not None:
        raise ValueError('give lengths or mask, not both')
      mask = recurrence.lengths_to_mask(lengths, xs.shape[0 if self.time_major
                                                          else 1])
      if not self.time_major:
        mask = mask.T
    if self.time_major:
      return self._time_major(xs, carry, mask, resets, train, return_carries)
    swap = lambda x: None if x is None else jnp.swapaxes(x, 0, 1)
    out = self._time_major(swap(xs), carry, swap(mask), swap(resets), train,
                           return_carries)
    return (swap(out[0]), out[1],
            *([jax.tree.map(swap, out[2])] if return_carries else []))

  def _time_major(self, xs, carry, mask, resets, train, return_carries):
    """`__call__` on time-major arrays."""
    if self.block not in BLOCKS:
      raise ValueError(f'block must be one of {BLOCKS}, got {self.block!r}')
    cell = self.make_cell()
    if self.weight_dropout and (isinstance(cell, cells_lib.LinearCell)
                                or not cell.recurrent):
      raise ValueError(f'weight_dropout needs a recurrent W_hh; {self.cell} '
                       'has none')
    if carry is None:
      carry = self.initial_carry(xs.shape[1])
    perturb = None
    probe = gradflow.active_probe()
    if probe is not None:  # gradflow.state_gradients is measuring
      state = (cell.state(carry[0]) if isinstance(cell, cells_lib.LinearCell)
               else cell.hidden(carry[0]))
      perturb = probe.visit(self.path, self.cell, xs.shape[:2] + state.shape[-1:],
                            state.dtype)
    residual = self.block == 'residual'
    drop = functools.partial(dropout(self.dropout, self.variational),
                             deterministic=not train)
    if residual and (xs.ndim == 2 or xs.shape[-1] != self.output_size):
      # One kernel for one-hot ids (a row lookup) and vectors (a matmul).
      width = self.one_hot_size if xs.ndim == 2 else xs.shape[-1]
      kernel = self.param('input_kernel', nn.initializers.lecun_normal(),
                          (width, self.output_size))
      xs = kernel[xs] if xs.ndim == 2 else xs @ kernel
    new_carry, carries = [], []
    for layer in range(self.num_layers):
      stream = xs
      if residual:
        xs = nn.LayerNorm(name=f'layer{layer}_norm')(xs)
      elif layer > 0 and self.dropout > 0:
        xs = drop(xs)
      outputs = []
      for direction in range(self.num_directions):
        index = layer * self.num_directions + direction
        name = f'layer{layer}' + ('_backward' if direction else '')
        width = self.one_hot_size if xs.ndim == 2 else xs.shape[-1]
        params = self.param(name, cell.init, width)
        state_mask = None
        if train:
          params = self._drop_weights(params)
          state_mask = self._state_mask(cell, carry[index])
        out = recurrence.run(cell, params, xs, carry=carry[index],
                             mask=mask, reverse=bool(direction),
                             unroll=self.unroll, remat_chunk=self.remat_chunk,
                             cudnn=self.cudnn, scan=self.scan,
                             chunk_size=self.chunk_size, resets=resets,
                             state_mask=state_mask,
                             perturb=None if index else perturb,
                             return_carries=return_carries)
        new_carry.append(out[0])
        outputs.append(out[1])
        if return_carries:
          carries.append(out[2])
      xs = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
      if residual:
        xs = stream + drop(xs)
        if self.mlp_ratio:
          xs = xs + drop(self._mlp(nn.LayerNorm(name=f'layer{layer}_mlp_norm')(
              xs), layer))
    if residual:
      xs = nn.LayerNorm(name='output_norm')(xs)
      if mask is not None:  # padding stays zero, as in the plain stack
        xs = jnp.where(mask[:, :, None], xs, 0)
    if return_carries:
      return xs, tuple(new_carry), tuple(carries)
    return xs, tuple(new_carry)

  def _drop_weights(self, params):
    """DropConnect: W_hh with one mask for the whole batch."""
    if not self.weight_dropout:
      return params
    keep = 1.0 - self.weight_dropout
    w = params['W_hh']
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, w.shape)
    return {**params, 'W_hh': jnp.where(mask, w / keep, 0).astype(w.dtype)}

  def _state_mask(self, cell, carry):
    """The [B, S] mask of the state the recurrence reads, or None."""
    if not self.recurrent_dropout:
      return None
    state = (cell.state(carry) if isinstance(cell, cells_lib.LinearCell)
             else cell.hidden(carry))
    keep = 1.0 - self.recurrent_dropout
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, state.shape)
    return mask.astype(jnp.float32) / keep

  def _mlp(self, x, layer):
    width = x.shape[-1]
    x = nn.Dense(self.mlp_ratio * width, name=f'layer{layer}_mlp_in')(x)
    return nn.Dense(width, name=f'layer{layer}_mlp_out')(jax.nn.gelu(x))
