"""Decoding from a recurrent model, jitted: greedy, sampled, beam search.

Language models (`generate`): `step_fn(params, tokens [B], carry) ->
(logits [B, V], carry)`, warmed up on a prefix, then a lax.scan emits a fixed
number of tokens.

Encoder-decoder models (`decode`, `beam_search`): `step_fn(params, context,
tokens [B], state) -> (logits [B, V], state)`, where `context` is what every
step reads unchanged (the encoder outputs) and `state` what each step
rewrites. Decoding starts from `bos` and a hypothesis ends at `eos`; the
loops are lax.while_loops that stop once every hypothesis has ended (or at
`max_length`). Outputs are [B, max_length] ids, `eos` from a hypothesis's
end onwards.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rnn_jax.configlib import Field
from rnn_jax.errors import InputError


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


@functools.partial(jax.jit, static_argnames=(
    'step_fn', 'bos', 'eos', 'max_length', 'temperature', 'top_k', 'top_p'))
def decode(step_fn, params, context, state, rng: jax.Array | None = None, *,
           bos: int, eos: int, max_length: int, temperature: float = 0.0,
           top_k: int = 0, top_p: float = 1.0) -> jax.Array:
  """Greedy decoding (temperature 0) or ancestral sampling, [B, max_length]."""
  batch = jax.tree.leaves(state)[0].shape[0]
  if rng is None:
    rng = jax.random.PRNGKey(0)
  tokens = jnp.full((batch, max_length), eos, jnp.int32)

  def cond(loop):
    i, _, _, done, _ = loop
    return (i < max_length) & ~done.all()

  def body(loop):
    i, last, state, done, tokens = loop
    logits, state = step_fn(params, context, last, state)
    tok = choose(jax.random.fold_in(rng, i), logits, temperature=temperature,
                 top_k=top_k, top_p=top_p).astype(jnp.int32)
    tok = jnp.where(done, eos, tok)
    tokens = tokens.at[:, i].set(tok)
    return i + 1, tok, state, done | (tok == eos), tokens

  loop = (jnp.zeros((), jnp.int32), jnp.full((batch,), bos, jnp.int32), state,
          jnp.zeros((batch,), bool), tokens)
  return jax.lax.while_loop(cond, body, loop)[-1]


def length_penalty(length, alpha: float):
  """Wu et al. (2016)'s lp = ((5 + length) / 6) ** alpha; 1 when alpha = 0."""
  return ((5.0 + length) / 6.0) ** alpha


@functools.partial(jax.jit, static_argnames=(
    'step_fn', 'bos', 'eos', 'max_length', 'beam_size', 'alpha'))
def beam_search(step_fn, params, context, state, *, bos: int, eos: int,
                max_length: int, beam_size: int, alpha: float = 0.0):
  """Beam search; returns the best hypothesis per row [B, max_length] and
  its score (log-probability / lp(length)).

  Every step extends each of the `beam_size` hypotheses by every token and
  keeps the best `beam_size` extensions, ranked by log p / lp(length)
  (`length_penalty`; alpha 0 ranks by log-probability). A hypothesis that
  ended with `eos` stays in the beam as it is, competing with the live
  ones, so that beam size 1 is greedy decoding. The search stops when every
  hypothesis in the beam has ended, or at `max_length` (a hypothesis still
  live there is returned cut).
  """
  k = beam_size
  batch = jax.tree.leaves(state)[0].shape[0]
  neg_inf = jnp.array(-1e30, jnp.float32)
  tile = lambda x: jnp.repeat(x, k, axis=0)                 # [B*k, ...]
  context = jax.tree.map(tile, context)
  state = jax.tree.map(tile, state)

  def gather(x, index):
    """x [B, n, ...] -> x[b, index[b, j]] : [B, m, ...]."""
    return jax.vmap(lambda row, i: row[i])(x, index)

  def cond(loop):
    i, _, _, ended, _, _, _ = loop
    return (i < max_length) & ~ended.all()

  def body(loop):
    i, logp, seqs, ended, lengths, last, state = loop
    logits, new_state = step_fn(params, context, last.reshape(-1), state)
    step_logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    step_logp = step_logp.reshape(batch, k, -1)
    vocab = step_logp.shape[-1]
    # An ended hypothesis has one extension, itself, at no cost.
    keep = jnp.where(jnp.arange(vocab) == eos, 0.0, neg_inf)
    step_logp = jnp.where(ended[:, :, None], keep, step_logp)
    new_lengths = jnp.where(ended, lengths, i + 1)           # [B, k]
    total = (logp[:, :, None] + step_logp).reshape(batch, k * vocab)
    rank = total / jnp.repeat(length_penalty(new_lengths, alpha), vocab, -1)
    _, index = jax.lax.top_k(rank, k)                        # [B, k]
    beam, tok = index // vocab, (index % vocab).astype(jnp.int32)
    was_ended = gather(ended, beam)
    seqs = gather(seqs, beam)
    seqs = seqs.at[:, :, i].set(jnp.where(was_ended, eos, tok))
    state = jax.tree.map(lambda x: gather(
        x.reshape((batch, k) + x.shape[1:]), beam).reshape(x.shape),
                         new_state)
    return (i + 1, gather(total, index), seqs, was_ended | (tok == eos),
            gather(new_lengths, beam), tok, state)

  logp = jnp.tile(jnp.where(jnp.arange(k) == 0, 0.0, neg_inf), (batch, 1))
  loop = (jnp.zeros((), jnp.int32), logp,
          jnp.full((batch, k, max_length), eos, jnp.int32),
          jnp.zeros((batch, k), bool), jnp.zeros((batch, k), jnp.int32),
          jnp.full((batch, k), bos, jnp.int32), state)
  _, logp, seqs, _, lengths, _, _ = jax.lax.while_loop(cond, body, loop)
  scores = logp / length_penalty(lengths, alpha)
  best = scores.argmax(-1)
  return (jnp.take_along_axis(seqs, best[:, None, None], 1)[:, 0],
          jnp.take_along_axis(scores, best[:, None], 1)[:, 0])


METHODS = ('greedy', 'beam', 'sample')

# How a token is drawn from the logits (`choose`): a language model's
# generation and an encoder-decoder's sampling.
SAMPLING_FIELDS = {
    'temperature': Field(0.0, 'sampling temperature; 0: greedy', at_least=0),
    'top_k': Field(0, '>0: sample among the k likeliest', at_least=0),
    'top_p': Field(1.0, 'sample among the likeliest tokens holding this '
                   'much probability', above=0, at_most=1),
}
# An encoder-decoder's decoding (`decode_with`).
FIELDS = {
    'method': Field('beam', 'how outputs are decoded', choices=METHODS),
    'beam_size': Field(5, 'beam: hypotheses kept', at_least=1),
    'alpha': Field(0.6, 'beam: length penalty ((5 + len) / 6)^alpha',
                   at_least=0),
    'max_length': Field(0, 'the longest output; 0: 2 x the longest train '
                        'target + 10', at_least=0),
    **SAMPLING_FIELDS,
}


def check_sampling(group: str, fields, greedy: bool):
  """Refuses `top_k` or `top_p` in `fields` (config group `group`) where
  decoding is greedy: they would change nothing."""
  for name, unset in (('top_k', 0), ('top_p', 1.0)):
    if greedy and fields[name] != unset:
      raise InputError(f'config field {group}.{name}={fields[name]}: '
                       'decoding is greedy here; it applies to sampling only')


def decode_with(method: str, step_fn, params, context, state, rng=None, *,
                bos: int, eos: int, max_length: int, beam_size: int = 1,
                alpha: float = 0.0, temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> jax.Array:
  """[B, max_length] ids by `method`: 'beam' (`beam_search`), 'greedy' or
  'sample' (`decode` at 0 or `temperature`); eos-filled after the end."""
  common = dict(bos=bos, eos=eos, max_length=max_length)
  if method == 'beam':
    return beam_search(step_fn, params, context, state, beam_size=beam_size,
                       alpha=alpha, **common)[0]
  return decode(step_fn, params, context, state, rng,
                temperature=0.0 if method == 'greedy' else temperature,
                top_k=top_k, top_p=top_p, **common)
