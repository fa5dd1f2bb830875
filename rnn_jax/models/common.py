"""What the models share: initialisers, mixed-precision dense layers,
word dropout."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnn_jax import cells as cells_lib


def uniform(scale: float):
  """U(-scale, scale), Zaremba et al.'s initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


def mixed_dense_dot(x, kernel, dimension_numbers, precision=None, *, dtype):
  """nn.Dense's matmul as `cells.mixed_dot` (a 2-D kernel contracts the
  inputs' last axis with its first)."""
  del dimension_numbers, precision
  return cells_lib.mixed_dot(x, kernel, dtype)


def word_dropout(module: nn.Module, tokens, rate: float, unk_id: int):
  """Each token becomes `unk_id` with probability `rate` (the module's
  'dropout' rng), so that the <unk> embedding is trained on real contexts."""
  if rate <= 0:
    return tokens
  drop = jax.random.bernoulli(module.make_rng('dropout'), rate, tokens.shape)
  return jnp.where(drop, unk_id, tokens)


def padded_ids(ids: str, pad_id: int) -> tuple[tuple, list[dict]]:
  """An exported function's first two arguments, with symbolic batch and
  time: `tokens` [batch, time] (`ids`, padded with `pad_id`) and `lengths`
  [batch]; their specs and their descriptions for signature.json."""
  b, t = jax.export.symbolic_shape('batch, time')
  specs = (jax.ShapeDtypeStruct((b, t), jnp.int32),
           jax.ShapeDtypeStruct((b,), jnp.int32))
  return specs, [
      {'name': 'tokens', 'shape': ['batch', 'time'], 'dtype': 'int32',
       'meaning': f'{ids}, padded with {pad_id} (<pad>)'},
      {'name': 'lengths', 'shape': ['batch'], 'dtype': 'int32',
       'meaning': 'the number of real tokens of each row'}]
