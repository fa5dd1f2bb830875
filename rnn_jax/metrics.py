"""Losses and metrics, as sums and counts so that batches combine exactly."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax


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


def corpus_bleu(hypotheses: list[str], references: list[str]):
  """sacrebleu's corpus BLEU (its defaults: 13a tokenisation, exponential
  smoothing) of detokenised text against one reference per sentence;
  returns (score, sacrebleu's signature string)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  bleu = sacrebleu.metrics.BLEU()
  score = bleu.corpus_score(list(hypotheses), [list(references)])
  return float(score.score), str(bleu.get_signature())
