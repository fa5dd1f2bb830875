"""Linear-chain conditional random field over per-token scores.

A tag sequence y_1..y_n of a sentence scores
  start[y_1] + sum_t emissions[t, y_t] + sum_{t>1} transitions[y_{t-1}, y_t]
  + end[y_n],
and p(y | x) = exp(score(y)) / Z. `log_partition` computes log Z by the
forward algorithm and `viterbi` the highest-scoring sequence; both are one
`lax.scan` over time. Inputs are batch-major, emissions [B, T, K], and every
sentence is a prefix of its row (`lengths` [B]): padded steps leave the
recursion untouched, so what is written there never matters. A sentence of
length 0 has log Z = 0 and score 0.
"""

from __future__ import annotations

import flax
import jax
import jax.numpy as jnp

from rnn_jax import recurrence


@flax.struct.dataclass
class Params:
  transitions: jax.Array   # [K, K]: from tag i to tag j
  start: jax.Array         # [K]
  end: jax.Array           # [K]


def _time_major(emissions, lengths):
  mask = recurrence.lengths_to_mask(lengths, emissions.shape[1])   # [T, B]
  return jnp.swapaxes(emissions, 0, 1).astype(jnp.float32), mask


def log_partition(params: Params, emissions, lengths):
  """log Z [B] of each sentence: the forward algorithm."""
  em, mask = _time_major(emissions, lengths)
  alpha = params.start + em[0]                                     # [B, K]

  def body(alpha, inputs):
    e_t, m_t = inputs
    new = jax.nn.logsumexp(alpha[:, :, None] + params.transitions, axis=1)
    return jnp.where(m_t[:, None], new + e_t, alpha), None

  alpha, _ = jax.lax.scan(body, alpha, (em[1:], mask[1:]))
  return jnp.where(lengths > 0,
                   jax.nn.logsumexp(alpha + params.end, axis=-1), 0.0)


def sequence_score(params: Params, emissions, tags, lengths):
  """score(y) [B] of the given tags [B, T]."""
  em, mask = _time_major(emissions, lengths)
  tags = tags.T                                                     # [T, B]
  emitted = jnp.take_along_axis(em, tags[..., None], axis=-1)[..., 0]
  moved = params.transitions[tags[:-1], tags[1:]]                   # [T-1, B]
  last = jnp.take_along_axis(tags, jnp.maximum(lengths - 1, 0)[None], 0)[0]
  score = (jnp.where(mask, emitted, 0).sum(0)
           + jnp.where(mask[1:], moved, 0).sum(0)
           + params.start[tags[0]] + params.end[last])
  return jnp.where(lengths > 0, score, 0.0)


def nll(params: Params, emissions, tags, lengths):
  """-log p(tags | x) [B]."""
  return (log_partition(params, emissions, lengths)
          - sequence_score(params, emissions, tags, lengths))


def viterbi(params: Params, emissions, lengths):
  """The best tags [B, T] (0 past each length) and their scores [B]."""
  em, mask = _time_major(emissions, lengths)
  num_tags = em.shape[-1]
  delta = params.start + em[0]
  stay = jnp.broadcast_to(jnp.arange(num_tags), delta.shape)

  def forward(delta, inputs):
    e_t, m_t = inputs
    scores = delta[:, :, None] + params.transitions                # [B, K, K]
    # A padded step keeps delta and points every tag back to itself, so
    # the backtrack walks through the padding unchanged.
    back = jnp.where(m_t[:, None], scores.argmax(1), stay)
    return jnp.where(m_t[:, None], scores.max(1) + e_t, delta), back

  # Step 0 is read as padding (delta already holds it), so that the scans
  # run over all T steps: no slice whose length depends on T (an export
  # with a symbolic T).
  first = (jnp.arange(em.shape[0]) > 0)[:, None]
  delta, backs = jax.lax.scan(forward, delta, (em, mask & first))
  final = delta + params.end
  last = final.argmax(-1)

  def backward(tag, back):
    previous = jnp.take_along_axis(back, tag[:, None], axis=1)[:, 0]
    return previous, tag

  _, tags = jax.lax.scan(backward, last, backs, reverse=True)
  tags = tags.T                                                     # [B, T]
  return (jnp.where(mask.T, tags, 0),
          jnp.where(lengths > 0, final.max(-1), 0.0))
