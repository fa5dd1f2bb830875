"""The optimizer: clip_by_global_norm(theta) -> optimizer, with a schedule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from rnn_jax.data import vectors

SCHEDULES = ('constant', 'step', 'cosine')
OPTIMIZERS = ('sgd', 'adam', 'adamw')


def make_schedule(name: str, learning_rate: float, steps_per_epoch: int,
                  total_steps: int, *, decay_after_epochs: int = 0,
                  decay_rate: float = 1.0, warmup_steps: int = 0):
  """Learning rate as a function of the step.

  'step' is Zaremba et al.'s: constant for `decay_after_epochs` epochs, then
  multiplied by `decay_rate` at the start of every further epoch. 'cosine'
  decays to zero over `total_steps` after a linear warm-up.
  """
  if name == 'constant':
    return optax.constant_schedule(learning_rate)
  if name == 'step':
    def schedule(step):
      epoch = step // steps_per_epoch
      num_decays = jnp.maximum(0, epoch - decay_after_epochs + 1)
      return learning_rate * decay_rate ** num_decays
    return schedule
  if name == 'cosine':
    return optax.warmup_cosine_decay_schedule(
        0.0 if warmup_steps else learning_rate, learning_rate,
        warmup_steps, max(total_steps, warmup_steps + 1))
  raise ValueError(f'unknown schedule {name!r}; choose one of {SCHEDULES}')


def make_optimizer(name: str, schedule, *, clip_norm: float | None = None,
                   momentum: float = 0.0, weight_decay: float = 0.0):
  """Builds the chain. `clip_norm` of 0 or None disables clipping."""
  links = []
  if clip_norm:
    # g <- min(1, theta / ||g||) g over all parameters at once.
    links.append(optax.clip_by_global_norm(clip_norm))
  if name == 'adamw':
    links.append(optax.adamw(schedule, weight_decay=weight_decay))
  elif name in ('sgd', 'adam'):
    if weight_decay:  # L2: g <- g + wd * params, seen by the optimizer
      links.append(optax.add_decayed_weights(weight_decay))
    links.append(optax.sgd(schedule, momentum=momentum or None)
                 if name == 'sgd' else optax.adam(schedule))
  else:
    raise ValueError(f'unknown optimizer {name!r}; choose one of {OPTIMIZERS}')
  return links[0] if len(links) == 1 else optax.chain(*links)


def from_config(tc, steps_per_epoch: int, freeze_embeddings: bool = False):
  """`(tx, schedule)` of a `train` config group. The schedule spans
  `num_epochs`; `max_steps` only stops a run early. `freeze_embeddings`
  leaves the word embedding table (`vectors.EMBEDDING`) as it is."""
  schedule = make_schedule(
      tc.schedule, tc.learning_rate, steps_per_epoch,
      tc.num_epochs * steps_per_epoch,
      decay_after_epochs=tc.decay_after_epochs, decay_rate=tc.decay_rate,
      warmup_steps=tc.warmup_steps)
  tx = make_optimizer(tc.optimizer, schedule, clip_norm=tc.clip_norm,
                            momentum=tc.momentum, weight_decay=tc.weight_decay)
  if freeze_embeddings:
    frozen = lambda path: tuple(getattr(k, 'key', k) for k in path[:2]) == (
        vectors.EMBEDDING)
    tx = optax.multi_transform(
        {'train': tx, 'frozen': optax.set_to_zero()},
        lambda params: jax.tree_util.tree_map_with_path(
            lambda path, _: 'frozen' if frozen(path) else 'train', params))
  return tx, schedule
