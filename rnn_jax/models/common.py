"""What the models share: initialisers, mixed-precision dense layers,
word dropout, word embeddings with pretrained vectors past the vocabulary."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import cells as cells_lib


def init_params(model: nn.Module, rng, *args, **kwargs):
  """`model.init(rng, *args, **kwargs)['params']`, the same values, without
  running the model on its inputs: the array inputs pass as shapes (flax's
  lazy_init), so what depends on them is traced, not run, and the
  initialisers run op by op as in an eager init. Python values (flags,
  None) pass as they are."""
  def shape(x):
    if isinstance(x, (np.ndarray, jax.Array)):
      return jax.ShapeDtypeStruct(x.shape,
                                  jax.dtypes.canonicalize_dtype(x.dtype))
    return x
  args, kwargs = jax.tree.map(shape, (args, kwargs))
  return model.lazy_init(rng, *args, **kwargs)['params']


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


def embed_words(embed: nn.Embed, tokens, unk_id: int, vectors=None):
  """tokens [T, B] -> [T, B, d]: `embed`'s rows; an id past its table reads
  its vector in `vectors` [B, T, d] (`vectors.Pretrained.gather`) instead,
  or the row of `unk_id` when `vectors` is None."""
  inside = tokens < embed.num_embeddings
  xs = embed(jnp.where(inside, tokens, unk_id))
  if vectors is None:
    return xs
  return jnp.where(inside[..., None], xs,
                   jnp.swapaxes(vectors, 0, 1).astype(xs.dtype))


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
