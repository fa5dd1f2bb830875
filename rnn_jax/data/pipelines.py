"""Batch pipelines. Language modelling: token streams cut into [B, T] windows.

Every batch is a pure function of (seed, epoch, index), so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

import numpy as np

from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

PREPROCESSORS = ('none', 'd2l')
PARTITIONS = ('sequential', 'random')


def tokenize(lines: Sequence[str], level: str, *, preprocess: str = 'none',
             eos: bool = True) -> list[str]:
  """Text lines -> tokens.

  level 'char': the lines joined by '\\n', one token per character.
  level 'word': whitespace-split words, plus '<eos>' after each non-empty
  line when `eos` (Mikolov's PTB convention).
  preprocess 'd2l': runs of non-letters become one space, then lower case
  (d2l's `re.sub('[^A-Za-z]+', ' ', text).lower()`).
  """
  def clean(text):
    if preprocess == 'd2l':
      return re.sub('[^A-Za-z]+', ' ', text).lower()
    return text
  if level == 'char':
    return list(clean('\n'.join(lines)))
  if level == 'word':
    tokens = []
    for line in lines:
      words = clean(line).split()
      if words:
        tokens.extend(words)
        if eos:
          tokens.append(vocab_lib.EOS)
    return tokens
  raise ValueError(f"level must be 'char' or 'word', got {level!r}")


class LMStream:
  """One token stream cut into [B, T] (inputs, targets) windows.

  'sequential' (PyTorch's batchify): the stream is laid out as B columns and
  batch i holds columns[:, iT:(i+1)T], so each row of batch i+1 continues
  that of batch i and the carry can flow between them (truncated BPTT).
  'random' (d2l): the stream is cut into length-T pieces that are dealt out
  in a fresh random order each epoch; the carry is reset every batch.
  Training streams start at a random offset in [0, T) each epoch, so the
  window boundaries move between epochs (d2l).
  """

  def __init__(self, ids: np.ndarray, batch_size: int, num_steps: int, *,
               partition: str = 'sequential', seed: int = 0,
               name: str = 'train'):
    if partition not in PARTITIONS:
      raise ValueError(f'partition must be one of {PARTITIONS}')
    self.ids = np.asarray(ids, np.int32)
    self.batch_size, self.num_steps = batch_size, num_steps
    self.partition, self.seed = partition, seed
    # Room for any offset < T and the one-token shift of the targets.
    usable = len(self.ids) - num_steps
    if partition == 'sequential':
      self.columns = usable // batch_size
      self.steps_per_epoch = self.columns // num_steps
    else:
      self.num_pieces = usable // num_steps
      self.steps_per_epoch = self.num_pieces // batch_size
    if self.steps_per_epoch < 1:
      raise InputError(
          f'{name} split has {len(self.ids)} tokens, too few for one batch '
          f'of batch_size={batch_size} x num_steps={num_steps}')

  def _rng(self, epoch: int) -> np.random.Generator:
    return np.random.default_rng([self.seed, epoch])

  def batch(self, epoch: int, index: int) -> dict[str, np.ndarray]:
    """Training batch `index` of `epoch`: inputs and targets [B, T]."""
    rng = self._rng(epoch)
    offset = int(rng.integers(self.num_steps))
    if self.partition == 'sequential':
      starts = (offset + np.arange(self.batch_size) * self.columns
                + index * self.num_steps)
    else:
      order = rng.permutation(self.num_pieces)
      pieces = order[index * self.batch_size:(index + 1) * self.batch_size]
      starts = offset + pieces * self.num_steps
    window = starts[:, None] + np.arange(self.num_steps)
    return {'inputs': self.ids[window], 'targets': self.ids[window + 1]}


def lm_eval_batches(ids: np.ndarray, batch_size: int,
                    num_steps: int) -> Iterator[dict[str, np.ndarray]]:
  """The whole stream as B columns, every token predicted once.

  The last batch may be shorter than T; at most B - 1 tokens are dropped.
  """
  ids = np.asarray(ids, np.int32)
  columns = (len(ids) - 1) // batch_size
  inputs = ids[:columns * batch_size].reshape(batch_size, columns)
  targets = ids[1:columns * batch_size + 1].reshape(batch_size, columns)
  for start in range(0, columns, num_steps):
    yield {'inputs': inputs[:, start:start + num_steps],
           'targets': targets[:, start:start + num_steps]}
