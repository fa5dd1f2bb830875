"""Batch pipelines. Language modelling: token streams cut into [B, T] windows.

Every batch is a pure function of (seed, epoch, index), so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

import numpy as np

from rnn_jax import configlib
from rnn_jax.configlib import Field
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
  """The whole stream as B columns, every target predicted once.

  Row b holds the b-th of B equal pieces of the stream, cut into windows of
  T (the last may be shorter); the fewer than B targets past the last piece
  continue the last row in one final batch whose `mask` scores that row
  alone.
  """
  ids = np.asarray(ids, np.int32)
  columns = (len(ids) - 1) // batch_size
  inputs = ids[:columns * batch_size].reshape(batch_size, columns)
  targets = ids[1:columns * batch_size + 1].reshape(batch_size, columns)
  for start in range(0, columns, num_steps):
    yield {'inputs': inputs[:, start:start + num_steps],
           'targets': targets[:, start:start + num_steps]}
  rest = len(ids) - 1 - columns * batch_size
  if rest:
    batch = {k: np.zeros((batch_size, rest), np.int32)
             for k in ('inputs', 'targets')}
    batch['inputs'][-1] = ids[columns * batch_size:-1]
    batch['targets'][-1] = ids[columns * batch_size + 1:]
    batch['mask'] = np.zeros((batch_size, rest), np.float32)
    batch['mask'][-1] = 1.0
    yield batch


# ----------------------------------------------------------------------------
# Sentences: splitting, tokenising, padded length-bucketed batches.


# The `data` fields of every experiment that reads sentences (classify,
# seq2seq, tag): batching, and the splits carved off train.
SENTENCE_FIELDS = {
    'batch_size': Field(64, 'sentences per training batch', at_least=1),
    'eval_batch_size': Field(256, 'sentences per evaluation batch',
                             at_least=1),
    'bucket_width': Field(8, 'padded lengths are multiples of this',
                          at_least=1),
    'split_seed': Field(0, 'fixes the splits carved off train'),
    'valid_fraction': configlib.fraction(0.1, 'carved off train when there '
                                         'is no valid split'),
    'test_fraction': configlib.fraction(0.1, 'carved off train when there is '
                                        'no test split'),
}


def carve(pairs: list, fraction: float, seed: int, what: str):
  """Splits off a fixed random `fraction` of pairs: (rest, carved)."""
  n = len(pairs)
  k = int(round(n * fraction))
  if k < 1 or k >= n:
    raise InputError(f'cannot carve {what} ({fraction:.0%}) out of {n} '
                     'training examples; give it as a file or change the '
                     'fraction')
  order = np.random.default_rng(seed).permutation(n)
  carved = set(order[:k].tolist())
  return ([p for i, p in enumerate(pairs) if i not in carved],
          [p for i, p in enumerate(pairs) if i in carved])


def carve_missing(splits: dict[str, list], dc) -> dict[str, list]:
  """Fills a missing 'test', then 'valid', split by carving it off 'train'
  (`dc.test_fraction` / `dc.valid_fraction`, seeded by `dc.split_seed`)."""
  if 'test' not in splits:
    splits['train'], splits['test'] = carve(
        splits['train'], dc.test_fraction, dc.split_seed, 'a test split')
  if 'valid' not in splits:
    splits['train'], splits['valid'] = carve(
        splits['train'], dc.valid_fraction, dc.split_seed + 1, 'a valid split')
  return splits


TOKENIZERS = ('whitespace', 'kim', 'punct')
# Punctuation that 'punct' splits off; '.' and ',' stay inside numbers.
_PUNCT = re.compile(r'([!?;:"()]|[.,](?!\d)|(?<!\d)[.,])')


def split_words(text: str, tokenizer: str = 'whitespace', *,
                lowercase: bool = True) -> list[str]:
  """One sentence -> words.

  'whitespace': split on whitespace. 'kim': the clean-up of Kim (2014)'s
  sentence-classification code: characters outside letters, digits and
  ( ) , ! ? ' ` become spaces, clitics ('s 've n't 're 'd 'll) and the
  punctuation , ! ( ) ? become words of their own. 'punct' (the default
  for translation, d2l's preprocessing extended): non-breaking spaces become
  spaces and the punctuation . , ! ? ; : " ( ) becomes words of its own
  (except . and , inside numbers).
  """
  if tokenizer == 'kim':
    text = re.sub(r"[^A-Za-z0-9(),!?'`]", ' ', text)
    text = re.sub(r"('s|'ve|n't|'re|'d|'ll)\b", r' \1', text)
    text = re.sub(r'([,!()?])', r' \1 ', text)
  elif tokenizer == 'punct':
    text = _PUNCT.sub(r' \1 ', normalize_spaces(text))
  elif tokenizer != 'whitespace':
    raise ValueError(f'tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}')
  if lowercase:
    text = text.lower()
  return text.split()


def normalize_spaces(text: str) -> str:
  """Non-breaking spaces (French typography in fra-eng) -> plain spaces."""
  return text.replace('\u202f', ' ').replace('\xa0', ' ')


def detokenize(words: Sequence[str]) -> str:
  """Words -> text: no space before . , ! ? ; : ) or after (; the inverse of
  'punct' up to the spacing of quotes."""
  text = ' '.join(words)
  text = re.sub(r' ([.,!?;:)])', r'\1', text)
  return text.replace('( ', '(')


def pad_batch(seqs: Sequence[np.ndarray], labels: Sequence[int],
              batch_size: int, length: int, pad_id: int) -> dict[str, np.ndarray]:
  """`tokens` [B, length] (padded with pad_id), `lengths` [B], `labels` [B]
  and `weights` [B]: rows past len(seqs) are all padding with weight 0, so
  every batch has the same batch size."""
  tokens = np.full((batch_size, length), pad_id, np.int32)
  lengths = np.zeros(batch_size, np.int32)
  out_labels = np.zeros(batch_size, np.int32)
  weights = np.zeros(batch_size, np.float32)
  for row, (seq, label) in enumerate(zip(seqs, labels)):
    seq = seq[:length]
    tokens[row, :len(seq)] = seq
    lengths[row], out_labels[row], weights[row] = len(seq), label, 1.0
  return {'tokens': tokens, 'lengths': lengths, 'labels': out_labels,
          'weights': weights}


class BucketedBatches:
  """Sentences with labels cut into padded [B, L] batches.

  L is the batch's longest sentence rounded up to a multiple of
  `bucket_width` (so that a handful of shapes get compiled), at most
  `max_length` (longer sentences are truncated; 0 keeps all). Training
  batches: each epoch the sentences are shuffled, then sorted by length
  within windows of `sort_window` batches, and the batches dealt out in a
  random order -- a pure function of (seed, epoch, index). Every epoch has
  ceil(N / B) batches; the last one is completed with weight-0 rows.
  With `vectors` (a `vectors.Pretrained`), a batch also has `vectors`
  [B, L, d], the pretrained vector of each token id past the vocabulary.
  """

  def __init__(self, seqs: Sequence[np.ndarray], labels: Sequence[int],
               batch_size: int, *, pad_id: int, seed: int = 0,
               bucket_width: int = 8, max_length: int = 0,
               sort_window: int = 50, vectors=None):
    if not seqs:
      raise InputError('no sentences to batch')
    self.seqs = [np.asarray(s, np.int32) for s in seqs]
    self.labels = np.asarray(labels, np.int32)
    self.lengths = np.array([len(s) for s in self.seqs])
    self.batch_size, self.pad_id, self.seed = batch_size, pad_id, seed
    self.bucket_width, self.max_length = bucket_width, max_length
    self.sort_window, self.vectors = sort_window, vectors
    self.steps_per_epoch = -(-len(self.seqs) // batch_size)
    self._epoch, self._order = None, None

  def _padded_length(self, rows: np.ndarray) -> int:
    longest = max(1, int(self.lengths[rows].max()))
    rounded = -(-longest // self.bucket_width) * self.bucket_width
    return min(rounded, self.max_length) if self.max_length else rounded

  def _make(self, rows: np.ndarray) -> dict[str, np.ndarray]:
    batch = pad_batch([self.seqs[r] for r in rows], self.labels[rows],
                      self.batch_size, self._padded_length(rows), self.pad_id)
    if self.vectors is not None:
      batch['vectors'] = self.vectors.gather(batch['tokens'])
    return batch

  def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
    if self._epoch != epoch:
      rng = np.random.default_rng([self.seed, epoch])
      order = rng.permutation(len(self.seqs))
      window = self.batch_size * self.sort_window
      for start in range(0, len(order), window):
        chunk = order[start:start + window]
        order[start:start + window] = chunk[
            np.argsort(self.lengths[chunk], kind='stable')]
      batches = [order[i:i + self.batch_size]
                 for i in range(0, len(order), self.batch_size)]
      self._order = [batches[i] for i in rng.permutation(len(batches))]
      self._epoch = epoch
    return self._order

  def batch(self, epoch: int, index: int) -> dict[str, np.ndarray]:
    return self._make(self._epoch_batches(epoch)[index])

  def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
    """Every sentence once, shortest first; `index` gives each row's
    position in the original order (-1 on weight-0 rows)."""
    order = np.argsort(self.lengths, kind='stable')
    for start in range(0, len(order), self.batch_size):
      rows = order[start:start + self.batch_size]
      batch = self._make(rows)
      batch['index'] = np.full(self.batch_size, -1, np.int32)
      batch['index'][:len(rows)] = rows
      yield batch


class PairedBatches(BucketedBatches):
  """Source and target sentences cut into padded batches, bucketed by
  source length as `BucketedBatches` does.

  A batch has `tokens` [B, S] and `lengths` [B] (the source), `weights` [B],
  `target_inputs` = <bos> y and `targets` = y <eos>, both [B, T] with T
  rounded up to a multiple of `bucket_width`, and `target_lengths` [B]
  (len(y) + 1; 0 on fill rows).
  """

  def __init__(self, sources, targets, batch_size: int, *, pad_id: int,
               bos_id: int, eos_id: int, seed: int = 0, bucket_width: int = 8,
               max_length: int = 0, sort_window: int = 50):
    super().__init__(sources, np.zeros(len(sources), np.int32), batch_size,
                     pad_id=pad_id, seed=seed, bucket_width=bucket_width,
                     max_length=max_length, sort_window=sort_window)
    self.targets = [np.asarray(t, np.int32) for t in targets]
    self.bos_id, self.eos_id = bos_id, eos_id

  def _make(self, rows):
    batch = super()._make(rows)
    del batch['labels']
    targets = [self.targets[r] for r in rows]
    longest = max(len(t) for t in targets) + 1
    length = -(-longest // self.bucket_width) * self.bucket_width
    inputs = np.full((self.batch_size, length), self.pad_id, np.int32)
    outputs = np.full((self.batch_size, length), self.pad_id, np.int32)
    lengths = np.zeros(self.batch_size, np.int32)
    for row, t in enumerate(targets):
      inputs[row, 0] = self.bos_id
      inputs[row, 1:len(t) + 1] = t
      outputs[row, :len(t)] = t
      outputs[row, len(t)] = self.eos_id
      lengths[row] = len(t) + 1
    batch.update(target_inputs=inputs, targets=outputs, target_lengths=lengths)
    return batch


class TaggedBatches(BucketedBatches):
  """Tagged sentences cut into padded batches, bucketed as
  `BucketedBatches` does (never truncated: every token gets a tag).

  A batch has `tokens`, `tags` [B, T], `lengths` and `weights` [B]; with
  `features` (per sentence an [n, F] array of extra input ids, such as POS
  tags) `features` [B, T, F]; with `chars` (per sentence a list of each
  word's character ids) `chars` [B, T, L] and `char_lengths` [B, T], L the
  batch's longest word (at most `max_word_length`, longer words keep their
  first characters) rounded up to a multiple of `bucket_width`.
  """

  def __init__(self, words, tags, batch_size: int, *, pad_id: int,
               features=None, chars=None, max_word_length: int = 20,
               seed: int = 0, bucket_width: int = 8, sort_window: int = 50,
               vectors=None):
    super().__init__(words, np.zeros(len(words), np.int32), batch_size,
                     pad_id=pad_id, seed=seed, bucket_width=bucket_width,
                     sort_window=sort_window, vectors=vectors)
    self.tags = [np.asarray(t, np.int32) for t in tags]
    self.features = features
    self.chars = chars
    self.max_word_length = max_word_length

  def _make(self, rows):
    batch = super()._make(rows)
    del batch['labels']
    shape = batch['tokens'].shape
    batch['tags'] = np.zeros(shape, np.int32)
    for row, r in enumerate(rows):
      batch['tags'][row, :len(self.tags[r])] = self.tags[r]
    if self.features is not None:
      width = self.features[rows[0]].shape[1]
      batch['features'] = np.full(shape + (width,), self.pad_id, np.int32)
      for row, r in enumerate(rows):
        batch['features'][row, :len(self.features[r])] = self.features[r]
    if self.chars is not None:
      longest = max((len(w) for r in rows for w in self.chars[r]), default=1)
      longest = min(max(longest, 1), self.max_word_length)
      width = -(-longest // self.bucket_width) * self.bucket_width
      batch['chars'] = np.full(shape + (width,), self.pad_id, np.int32)
      batch['char_lengths'] = np.zeros(shape, np.int32)
      for row, r in enumerate(rows):
        for t, word in enumerate(self.chars[r]):
          word = word[:self.max_word_length]
          batch['chars'][row, t, :len(word)] = word
          batch['char_lengths'][row, t] = len(word)
    return batch
