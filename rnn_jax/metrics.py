"""Losses and metrics, as sums and counts so that batches combine exactly."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax


# The one registry of directions: a metric is better higher unless its name
# (the part after 'split/') says an error or a cost, or an experiment's
# evaluator registered it otherwise (`register`).
_LOWER_IS_BETTER = re.compile(r'loss|perplexity|bits_per|mse|mae|error')
_REGISTERED: dict[str, bool] = {}


def register(name: str, higher_is_better: bool):
  """Declares the direction of metric `name` (an experiment's evaluator)."""
  _REGISTERED[name] = higher_is_better


def higher_is_better(metric: str) -> bool:
  """Whether more of `metric` ('valid/bleu' or 'bleu') is better."""
  name = metric.rsplit('/', 1)[-1]
  if name in _REGISTERED:
    return _REGISTERED[name]
  return not _LOWER_IS_BETTER.search(name)


def cross_entropy(logits: jax.Array, targets: jax.Array,
                  mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Masked token cross-entropy.

  Args:
    logits: [..., V].
    targets: [...] int ids.
    mask: optional [...] bool/0-1; False entries contribute nothing.

  Returns:
    (sum of -log p(target), number of counted tokens), both scalars.
  """
  nll = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), targets)
  if mask is None:
    return nll.sum(), jnp.asarray(nll.size, jnp.float32)
  mask = mask.astype(jnp.float32)
  return (nll * mask).sum(), mask.sum()


def perplexity(mean_nll: float) -> float:
  """exp(mean negative log-likelihood in nats); inf past float range."""
  return math.exp(mean_nll) if mean_nll < 700 else math.inf


def bits_per_token(mean_nll: float) -> float:
  return mean_nll / math.log(2.0)


def accuracy(logits: jax.Array, targets: jax.Array,
             mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(number of correct argmax predictions, number counted)."""
  correct = (logits.argmax(-1) == targets).astype(jnp.float32)
  if mask is None:
    return correct.sum(), jnp.asarray(correct.size, jnp.float32)
  mask = mask.astype(jnp.float32)
  return (correct * mask).sum(), mask.sum()


def macro_f1(confusion) -> float:
  """Unweighted mean over classes of F1, from a [gold, predicted] confusion
  matrix. A class never gold nor predicted is left out of the mean."""
  confusion = np.asarray(confusion, np.float64)
  tp = np.diag(confusion)
  gold, predicted = confusion.sum(1), confusion.sum(0)
  present = (gold + predicted) > 0
  f1 = 2 * tp[present] / (gold + predicted)[present]
  return float(f1.mean()) if f1.size else 0.0


def group_means(values, groups) -> dict[int, float]:
  """{group: mean of its values} (bAbI's exact match per task)."""
  values, groups = np.asarray(values, np.float64), np.asarray(groups)
  return {int(g): float(values[groups == g].mean()) for g in np.unique(groups)}


def corpus_bleu(hypotheses: list[str], references: list[str],
                lowercase: bool = False):
  """sacrebleu's corpus BLEU (its defaults: 13a tokenisation, exponential
  smoothing; `lowercase` compares lower-cased text) of detokenised text
  against one reference per sentence; returns (score, sacrebleu's
  signature string)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
  score = bleu.corpus_score(list(hypotheses), [list(references)])
  return float(score.score), str(bleu.get_signature())


# Span scoring as conlleval does it, vectorised. A tag is O, or PREFIX-TYPE
# with PREFIX one of B I E S; any other tag (a POS tag) is a span of one
# token of its own type, so that span F1 equals token accuracy there.
_O, _B, _I, _E, _S = range(5)


def chunk_scheme(tag_names) -> tuple[np.ndarray, np.ndarray]:
  """Per tag id: its prefix code (O B I E S = 0..4) and its type id (-1
  for O), the tables `chunk_counts` reads."""
  prefixes, kinds, types = [], [], {}
  for name in tag_names:
    head, dash, rest = name.partition('-')
    if name == 'O':
      prefixes.append(_O)
      kinds.append(-1)
      continue
    if dash and rest and head in ('B', 'I', 'E', 'S'):
      prefix, kind = 'OBIES'.index(head), rest
    else:
      prefix, kind = _S, name
    prefixes.append(prefix)
    kinds.append(types.setdefault(kind, len(types)))
  return np.array(prefixes, np.int32), np.array(kinds, np.int32)


def _chunks(tags, mask, prefix, kind):
  """Where chunks start [B, T], their type, and the position of the end
  of the chunk each start opens. IOB1, IOB2 and IOBES follow one set of
  rules (conlleval's, with IOBES's S): a chunk ends after a token when
  the token is E or S, when a B or I is followed by B, S or O, or when the
  type changes; one starts at B or S, at I or E after O, E or S, or where
  the type changes. Both sentence ends act as O."""
  p = jnp.where(mask, jnp.asarray(prefix)[tags], _O)
  k = jnp.where(mask, jnp.asarray(kind)[tags], -1)
  p_prev = jnp.pad(p[:, :-1], ((0, 0), (1, 0)))
  k_prev = jnp.pad(k[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
  p_next = jnp.pad(p[:, 1:], ((0, 0), (0, 1)))
  k_next = jnp.pad(k[:, 1:], ((0, 0), (0, 1)), constant_values=-1)
  inside = p != _O
  starts = ((p == _B) | (p == _S)
            | (((p == _I) | (p == _E))
               & ((p_prev == _O) | (p_prev == _E) | (p_prev == _S)))
            | (inside & (k_prev != k)))
  ends = ((p == _E) | (p == _S)
          | (((p == _B) | (p == _I))
             & ((p_next == _B) | (p_next == _S) | (p_next == _O)))
          | (inside & (k != k_next)))
  positions = jnp.arange(tags.shape[1])
  end_at = jnp.where(ends, positions, tags.shape[1])
  end_at = jax.lax.cummin(end_at, axis=1, reverse=True)
  return starts & mask, k, end_at


def chunk_counts(gold, predicted, mask, scheme):
  """(correct, gold, predicted) chunk counts of tags [B, T] under `mask`
  [B, T] (each row's True entries a prefix), `scheme` from `chunk_scheme`.
  A predicted chunk is correct when a gold chunk has the same start, end
  and type."""
  gold_starts, gold_kind, gold_end = _chunks(gold, mask, *scheme)
  pred_starts, pred_kind, pred_end = _chunks(predicted, mask, *scheme)
  correct = (gold_starts & pred_starts & (gold_kind == pred_kind)
             & (gold_end == pred_end))
  return (correct.sum().astype(jnp.float32),
          gold_starts.sum().astype(jnp.float32),
          pred_starts.sum().astype(jnp.float32))


def precision_recall_f1(correct, gold, predicted) -> tuple[float, float, float]:
  """From chunk counts, as fractions (conlleval prints them x 100)."""
  precision = correct / predicted if predicted else 0.0
  recall = correct / gold if gold else 0.0
  f1 = (2 * precision * recall / (precision + recall)
        if precision + recall else 0.0)
  return float(precision), float(recall), float(f1)
