"""The model of the memory tasks: a stack read at every step or at the
last."""

from __future__ import annotations

import flax.linen as nn

from rnn_jax import layers


class MemoryModel(layers.StackFields, kw_only=True):
  """The memory tasks' model: inputs -> RNNStack -> o_t = W_ho h_t + b_o at
  every step ([B, T, O]; the copy tasks) or at the last step only ([B, O];
  the adding problem). Inputs are [B, T] ids of `one_hot_size`-wide one-hot
  vectors, or [B, T, D] values; every sequence has the same length."""
  outputs: int
  one_hot_size: int = 0
  every_step: bool = True
  # The stack's fields: layers.StackFields.

  @nn.compact
  def __call__(self, inputs):
    hs, _ = self.make_stack(one_hot_size=self.one_hot_size)(inputs)                  # [B, T, H]
    hs = hs if self.every_step else hs[:, -1]
    return nn.Dense(self.outputs)(hs)
