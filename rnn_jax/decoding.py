"""Decoding from a recurrent model: warm-up on a prefix, then greedy or sampled.

A decoder is described by `step_fn(params, tokens [B], carry) -> (logits [B, V],
carry)`; the loop over generated tokens is a lax.scan, so `generate` jits.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def filter_logits(logits: jax.Array, *, top_k: int = 0,
                  top_p: float = 1.0) -> jax.Array:
  """Masks to -inf all but the top-k tokens and the top-p nucleus."""
  neg_inf = jnp.finfo(logits.dtype).min
  if top_k:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, neg_inf, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # Keep a token if the mass strictly before it is < top_p (the first
    # token is always kept).
    mass_before = jnp.cumsum(probs, axis=-1) - probs
    kept = jnp.where(mass_before < top_p, sorted_logits, jnp.inf)
    threshold = kept.min(axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, neg_inf, logits)
  return logits


def choose(rng: jax.Array, logits: jax.Array, *, temperature: float = 0.0,
           top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """Picks one token per row; temperature 0 is greedy (argmax)."""
  if temperature == 0.0:
    return logits.argmax(-1)
  logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
  return jax.random.categorical(rng, logits, axis=-1)


@functools.partial(jax.jit, static_argnames=(
    'step_fn', 'num_tokens', 'temperature', 'top_k', 'top_p'))
def generate(step_fn, params, prefix: jax.Array, carry, rng: jax.Array, *,
             num_tokens: int, temperature: float = 0.0, top_k: int = 0,
             top_p: float = 1.0) -> jax.Array:
  """Warms the state up on `prefix` [B, P] (P >= 1), then emits [B, num_tokens].

  The warm-up feeds the prefix one token at a time through the same step
  function, so the state that produces the first new token has read the
  whole prefix (d2l's `predict`).
  """
  def warm(c, tok):
    logits, c = step_fn(params, tok, c)
    return c, logits
  carry, logits = jax.lax.scan(warm, carry, prefix.T)
  logits = logits[-1]

  def emit(state, key):
    logits, c = state
    tok = choose(key, logits, temperature=temperature, top_k=top_k,
                 top_p=top_p)
    logits, c = step_fn(params, tok, c)
    return (logits, c), tok

  _, tokens = jax.lax.scan(emit, (logits, carry),
                           jax.random.split(rng, num_tokens))
  return tokens.T
