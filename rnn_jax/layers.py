"""Deep and bidirectional stacks of cells (time-major)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from rnn_jax import cells as cells_lib
from rnn_jax import recurrence


class RNNStack(nn.Module):
  """`num_layers` cells, each optionally bidirectional, dropout in between.

  The carry is a tuple with one cell carry per (layer, direction), ordered
  layer-major: (l0 forward, l0 backward, l1 forward, ...).
  """
  cell: str = 'lstm'
  hidden_size: int = 128
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0
  activation: str = 'tanh'
  init_scale: float | None = None
  recurrent: bool = True
  unroll: int = 1
  remat_chunk: int = 0  # see recurrence.run
  compute_dtype: Any = None  # the matmuls' operand dtype, see cells.Cell
  cudnn: bool = False  # LSTM through cuDNN on CUDA GPUs, see recurrence.run
  one_hot_size: int = 0  # the width of one-hot inputs given as [T, B] ids

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
                               compute_dtype=self.compute_dtype)

  def initial_carry(self, batch_size: int) -> tuple[Any, ...]:
    cell = self.make_cell()
    return tuple(cell.initial_carry(batch_size)
                 for _ in range(self.num_layers * self.num_directions))

  @nn.compact
  def __call__(self, xs, carry=None, *, mask=None, train: bool = False):
    """xs [T, B, D] (or [T, B] one-hot ids, see `one_hot_size`) ->
    (ys [T, B, H * num_directions], final carry)."""
    cell = self.make_cell()
    if carry is None:
      carry = self.initial_carry(xs.shape[1])
    new_carry = []
    for layer in range(self.num_layers):
      if layer > 0 and self.dropout > 0:
        xs = nn.Dropout(self.dropout, deterministic=not train)(xs)
      outputs = []
      for direction in range(self.num_directions):
        index = layer * self.num_directions + direction
        name = f'layer{layer}' + ('_backward' if direction else '')
        width = self.one_hot_size if xs.ndim == 2 else xs.shape[-1]
        params = self.param(name, cell.init, width)
        final, ys = recurrence.run(cell, params, xs, carry=carry[index],
                                   mask=mask, reverse=bool(direction),
                                   unroll=self.unroll,
                                   remat_chunk=self.remat_chunk,
                                   cudnn=self.cudnn)
        new_carry.append(final)
        outputs.append(ys)
      xs = jnp.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
    return xs, tuple(new_carry)
