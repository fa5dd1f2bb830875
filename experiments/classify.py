"""Text classification (many-to-one): read a sentence, emit one label.

Default: a BiLSTM with attention pooling on GLUE's SST-2,
`python launch.py --experiment=classify` (the `sst2_bilstm` preset).
"""

from __future__ import annotations

import collections
import itertools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rnn_jax import cells
from rnn_jax import configlib
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import training
from rnn_jax.data import builders
from rnn_jax.data import files
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

NAME = 'classify'
DEFAULT_PRESET = 'sst2_bilstm'
SPLITS = ('train', 'valid', 'test')
HEADERS = ('auto', 'yes', 'no')


def get_config() -> ml_collections.ConfigDict:
  """Defaults = the `sst2_bilstm` preset."""
  c = ml_collections.ConfigDict()
  c.preset = DEFAULT_PRESET  # set by launch.py from --preset; a label only
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      cell='lstm',           # rnn | gru | lstm
      hidden_size=256,
      num_layers=1,
      bidirectional=True,
      readout='attention',   # last | mean | max | attention
      attention_size=0,      # 0: hidden_size
      mlp_size=256,          # 0: linear readout
      embed_size=300,
      dropout=0.5,           # between layers and in the MLP
      embed_dropout=0.5,
      word_dropout=0.1,      # a token becomes <unk> with this probability
      activation='tanh',     # rnn cell only
      unroll=1,
  ))
  c.data = ml_collections.ConfigDict(dict(
      name='sst2',           # sst2 | sst2/kim2014 | trec | trec/fine | mr | files
      tokenizer='whitespace',  # whitespace | kim (Kim 2014's clean-up)
      lowercase=True,
      min_freq=1,
      max_length=0,          # >0 truncates longer sentences
      batch_size=64,
      eval_batch_size=256,
      bucket_width=8,        # padded lengths are multiples of this
      cv_folds=0,            # >1: k-fold cross-validation over train
      fold=-1,               # with cv_folds: -1 runs every fold, k only fold k
      split_seed=0,          # fixes carved-off splits and the folds
      valid_fraction=0.1,    # carved off train when there is no valid split
      test_fraction=0.1,     # likewise for test (no test split, no folds)
      train='',              # label<TAB>text files, for name=files
      valid='',
      test='',
      header='auto',         # auto | yes | no: files start with a header
  ))
  c.train = training.default_config(
      learning_rate=0.1,
      momentum=0.9,
      weight_decay=3e-6,
      clip_norm=5.0,
      schedule='cosine',
  )
  return c


def validate(config):
  """Rejects values no code path accepts, before anything is written."""
  configlib.check_choices(config, {
      'model.cell': tuple(cells.CELLS),
      'model.activation': tuple(cells.ACTIVATIONS),
      'model.readout': models.READOUTS,
      'data.name': tuple(builders.registered(NAME)) + ('files',),
      'data.tokenizer': pipelines.TOKENIZERS,
      'data.header': HEADERS,
  })
  training.validate_config(config)
  configlib.check_at_least(config, {
      **dict.fromkeys([
          'model.hidden_size', 'model.num_layers', 'model.embed_size',
          'data.min_freq', 'data.batch_size', 'data.eval_batch_size',
          'data.bucket_width'], 1),
      **dict.fromkeys([
          'model.attention_size', 'model.mlp_size', 'data.max_length',
          'data.cv_folds'], 0),
      'data.fold': -1,
  })
  configlib.check_fraction(config, [
      'model.dropout', 'model.embed_dropout', 'model.word_dropout',
      'data.valid_fraction', 'data.test_fraction'])
  dc = config.data
  if dc.cv_folds == 1:
    raise InputError('config field data.cv_folds=1: cross-validation needs '
                     'at least 2 folds (0 turns it off)')
  if dc.fold >= max(dc.cv_folds, 1 if dc.fold < 0 else 0):
    raise InputError(f'config field data.fold={dc.fold}: there are '
                     f'{dc.cv_folds} folds (data.cv_folds)')


# ----------------------------------------------------------------------------
# Data: (text, label) pairs per split.


def read_tsv(path: str, header: str = 'auto', *,
             what: str = 'data file') -> list[tuple[str, str]]:
  """`label<TAB>text` lines -> [(text, label)].

  header 'auto': the first line is a header when its label occurs on no
  other line while every other label occurs at least twice (a column name
  such as 'label' never recurs; real classes do). Blank lines are
  skipped; a line without a tab, or with an empty label or text, is an
  error naming the file and line.
  """
  rows = [(text, label) for label, text in
          files.read_pairs(path, ('label', 'text'), what=what)]
  counts = collections.Counter(label for _, label in rows[1:])
  if header == 'yes' or (header == 'auto' and counts and
                         rows[0][1] not in counts and
                         min(counts.values()) >= 2):
    rows = rows[1:]
  if not rows:
    raise InputError(f'{what} has no examples: {path}')
  return rows


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
  """Fixed fold index of each of n examples: a seeded permutation dealt
  round-robin, so folds differ in size by at most one."""
  fold = np.empty(n, np.int64)
  fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
  return fold


def load_splits(dc) -> dict[str, list[tuple[str, str]]]:
  """train/valid/test (text, label) pairs; missing splits carved off train.

  With `cv_folds`, test is fold `fold` of the train split and train the
  other folds; valid is then carved from what remains.
  """
  if dc.name == 'files':
    pairs = {'train': read_tsv(dc.train, dc.header, what='data.train file')}
    for split in ('valid', 'test'):
      if dc[split]:
        pairs[split] = read_tsv(dc[split], dc.header, what=f'data.{split} file')
  else:
    pairs = {split: [(r['text'], r['label']) for r in records]
             for split, records in builders.load(dc.name).items()}
  if dc.cv_folds:
    if 'test' in pairs:
      raise InputError(f'{dc.name} has a test split; data.cv_folds is for '
                       'datasets without one')
    fold = fold_of(len(pairs['train']), dc.cv_folds, dc.split_seed)
    which = max(dc.fold, 0)
    pairs['test'] = [p for p, f in zip(pairs['train'], fold) if f == which]
    pairs['train'] = [p for p, f in zip(pairs['train'], fold) if f != which]
  return pipelines.carve_missing(pairs, dc)


class Encoded:
  """A split's sentences as ids, labels as ids (-1: hidden), and texts."""

  def __init__(self, pairs, vocab, labels, dc):
    self.texts = [text for text, _ in pairs]
    words = [pipelines.split_words(t, dc.tokenizer, lowercase=dc.lowercase)
             for t in self.texts]
    self.ids = [vocab.encode(w) for w in words]
    self.labels = np.array([labels.stoi[l] if l else -1 for _, l in pairs],
                           np.int32)
    self.labelled = bool(len(self.labels)) and bool((self.labels >= 0).all())


def encode_splits(dc, pairs, vocab=None, labels=None):
  """Encodes every split, with the word and label vocabularies given (a
  trained workdir's) or built on train."""
  if vocab is None:
    train_words = [w for text, _ in pairs['train']
                   for w in pipelines.split_words(text, dc.tokenizer,
                                                  lowercase=dc.lowercase)]
    vocab = vocab_lib.Vocab.build(train_words, min_freq=dc.min_freq,
                                  reserved=[vocab_lib.PAD, vocab_lib.UNK])
  if labels is None:
    labels = vocab_lib.Vocab(sorted({l for _, l in pairs['train']}))
  if len(labels) < 2:
    raise InputError(f'{dc.name}: the train split has a single label '
                     f'{labels.itos}')
  for split in ('valid', 'test'):
    unknown = sorted({l for _, l in pairs[split] if l} - set(labels.itos))
    if unknown:
      raise InputError(f'{dc.name}: label {unknown[0]!r} of the {split} split '
                       'never occurs in train')
  return vocab, labels, {s: Encoded(pairs[s], vocab, labels, dc)
                         for s in SPLITS}


# ----------------------------------------------------------------------------
# The task given to the training loop.


def make_model(config, vocab: vocab_lib.Vocab,
               num_classes: int) -> models.Classifier:
  m = config.model
  return models.Classifier(
      vocab_size=len(vocab), num_classes=num_classes,
      embed_size=m.embed_size, cell=m.cell, hidden_size=m.hidden_size,
      num_layers=m.num_layers, bidirectional=m.bidirectional,
      readout=m.readout, attention_size=m.attention_size,
      mlp_size=m.mlp_size, dropout=m.dropout, embed_dropout=m.embed_dropout,
      word_dropout=m.word_dropout, unk_id=vocab.unk_id,
      activation=m.activation, unroll=m.unroll)


class ClassifyTask:
  """Classification as a `training.Task`: no state flows between batches."""
  reset_carry_every_batch = True

  def __init__(self, config, vocab, labels, data: dict[str, Encoded]):
    dc = config.data
    self.config, self.data = config, data
    self.num_classes = len(labels)
    self.model = make_model(config, vocab, self.num_classes)
    pad = vocab.stoi[vocab_lib.PAD]

    def batches(split, batch_size):
      return pipelines.BucketedBatches(
          data[split].ids, data[split].labels, batch_size, pad_id=pad,
          seed=config.seed, bucket_width=dc.bucket_width,
          max_length=dc.max_length)
    # Any splits (predict mode has one of its own and no train).
    self.batches = {
        split: batches(split, dc.batch_size if split == 'train'
                       else dc.eval_batch_size)
        for split in data if data[split].ids}
    self.steps_per_epoch = (self.batches['train'].steps_per_epoch
                            if 'train' in self.batches else 0)

  def init_params(self, rng):
    batch = self.batches['train'].batch(0, 0)
    return self.model.init(rng, batch['tokens'], batch['lengths'])['params']

  def initial_carry(self, split):
    del split
    return ()

  def logits(self, params, batch, rng=None, train=False):
    rngs = {'dropout': rng} if train else {}
    return self.model.apply({'params': params}, batch['tokens'],
                            batch['lengths'], train=train, rngs=rngs)

  def loss(self, params, batch, carry, rng, train):
    logits = self.logits(params, batch, rng, train)
    weights = batch['weights']  # 0 on the rows that only fill the batch
    nll, count = metrics.cross_entropy(logits, batch['labels'], weights)
    correct, _ = metrics.accuracy(logits, batch['labels'], weights)
    confusion = jnp.einsum(
        'b,bi,bj->ij', weights,
        jax.nn.one_hot(batch['labels'], self.num_classes),
        jax.nn.one_hot(logits.argmax(-1), self.num_classes))
    stats = {'loss': nll, 'count': count, 'accuracy': correct,
             'confusion': confusion}
    return nll / jnp.maximum(count, 1.0), (stats, carry)

  def train_batch(self, epoch, index):
    return self.batches['train'].batch(epoch, index)

  def eval_batches(self, split):
    if split not in self.batches or not self.data[split].labelled:
      return iter(())   # no labels (GLUE's test): nothing to score
    return self.batches[split].eval_batches()

  def num_tokens(self, batch):
    return int(batch['lengths'].sum())

  def derived_metrics(self, m):
    if 'confusion' not in m:
      return {}
    return {'macro_f1': metrics.macro_f1(m['confusion'])}


# ----------------------------------------------------------------------------
# Predictions, confusion matrices.


def predict_split(task: ClassifyTask, params, split: str,
                  max_batches: int = 0) -> np.ndarray:
  """Class probabilities [N, C] of the sentences of `split`, in order; rows
  past the first `max_batches` evaluation batches (when > 0) are NaN."""
  data = task.data[split]
  probs = np.full((len(data.ids), task.num_classes), np.nan, np.float32)
  if split not in task.batches:
    return probs
  forward = jax.jit(lambda p, b: jax.nn.softmax(task.logits(p, b)))
  batches = task.batches[split].eval_batches()
  for batch in itertools.islice(batches, max_batches or None):
    keep = batch['index'] >= 0
    out = np.asarray(forward(params, {k: batch[k] for k in ('tokens', 'lengths')}))
    probs[batch['index'][keep]] = out[keep]
  return probs


def write_predictions(path: str, data: Encoded, probs: np.ndarray,
                      labels: vocab_lib.Vocab):
  """One `gold<TAB>predicted<TAB>text` line per predicted example, in the
  split's order (gold '' where labels are hidden)."""
  with open(path, 'w', encoding='utf-8') as f:
    for gold, p, text in zip(data.labels, probs, data.texts):
      if not np.isnan(p).any():
        f.write(f'{labels.itos[gold] if gold >= 0 else ""}\t'
                f'{labels.itos[int(p.argmax())]}\t{text}\n')


def confusion_matrix(gold, predicted, num_classes: int) -> np.ndarray:
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (gold, predicted), 1)
  return confusion


def plot_confusion(path: str, confusion: np.ndarray, names: list[str],
                   title: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = len(names)
  size = min(4 + 0.35 * n, 20)
  fig, ax = plt.subplots(figsize=(size, size))
  ax.imshow(confusion, cmap='Blues')
  ax.set_xticks(range(n), names, rotation=90 if n > 6 else 0)
  ax.set_yticks(range(n), names)
  ax.set_xlabel('predicted')
  ax.set_ylabel('gold')
  ax.set_title(title)
  if n <= 12:
    for i in range(n):
      for j in range(n):
        ax.text(j, i, str(confusion[i, j]), ha='center', va='center',
                color='white' if confusion[i, j] > confusion.max() / 2
                else 'black')
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)


# ----------------------------------------------------------------------------
# Entry points.


def _run_one(config, workdir: str) -> dict:
  """One ordinary run (one fold under cross-validation)."""
  dc = config.data
  vocab, labels, data = encode_splits(dc, load_splits(dc))
  task = ClassifyTask(config, vocab, labels, data)
  print(f'{dc.name}: vocab {len(vocab)}, {len(labels)} classes, examples '
        + ', '.join(f'{s} {len(data[s].ids):,}' for s in SPLITS), flush=True)
  training.write_config(workdir, config)
  vocab.save(os.path.join(workdir, 'vocab.json'))
  labels.save(os.path.join(workdir, 'labels.json'))

  result = training.train_and_evaluate(task, config, workdir)
  return _finish(task, labels, result['state'].params, workdir,
                 {'experiment': NAME, 'preset': config.preset,
                  **result['summary']})


def _finish(task: ClassifyTask, labels, params, directory: str,
            summary: dict) -> dict:
  """Writes the valid and test predictions, their confusion matrices and
  summary.json into `directory` (the workdir, or an evaluation's)."""
  config = task.config
  for split in ('valid', 'test'):
    probs = predict_split(task, params, split, config.train.eval_steps)
    data = task.data[split]
    write_predictions(os.path.join(directory, f'{split}_predictions.tsv'),
                      data, probs, labels)
    done = ~np.isnan(probs).any(-1)
    if data.labelled:
      plot_confusion(os.path.join(directory, 'plots', f'confusion_{split}.png'),
                     confusion_matrix(data.labels[done],
                                      probs[done].argmax(-1), len(labels)),
                     labels.itos, f'{config.data.name} {split}')
  return training.write_summary(directory, summary)


def _cross_validate(config, workdir: str) -> dict:
  """Every fold as its own run in <workdir>/fold<k>; the means are the
  result, and the folds' test predictions together cover the dataset once."""
  folds = []
  for k in range(config.data.cv_folds):
    fold_config = ml_collections.ConfigDict(config.to_dict())
    fold_config.data.fold = k
    print(f'--- fold {k + 1}/{config.data.cv_folds}', flush=True)
    folds.append(_run_one(fold_config, os.path.join(workdir, f'fold{k}')))
  training.write_config(workdir, config)
  summary = {'experiment': NAME, 'preset': config.preset,
             'cv_folds': config.data.cv_folds}
  for key in sorted(folds[0]):
    values = [f.get(key) for f in folds]
    if '/' in key and all(isinstance(v, float) for v in values):
      summary[key] = float(np.mean(values))
      summary[f'{key}_std'] = float(np.std(values))
  summary['wall_seconds'] = float(sum(f['wall_seconds'] for f in folds))
  summary['folds'] = folds
  lines, gold, predicted = [], [], []
  names = None
  for k in range(config.data.cv_folds):
    fold_dir = os.path.join(workdir, f'fold{k}')
    with open(os.path.join(fold_dir, 'test_predictions.tsv'),
              encoding='utf-8') as f:
      lines.extend(f.readlines())
    names = vocab_lib.Vocab.load(os.path.join(fold_dir, 'labels.json')).itos
  with open(os.path.join(workdir, 'test_predictions.tsv'), 'w',
            encoding='utf-8') as f:
    f.writelines(lines)
  index = {name: i for i, name in enumerate(names)}
  for line in lines:
    g, p, _ = line.split('\t', 2)
    gold.append(index[g])
    predicted.append(index[p])
  plot_confusion(os.path.join(workdir, 'plots', 'confusion_test.png'),
                 confusion_matrix(gold, predicted, len(names)), names,
                 f'{config.data.name} test, {config.data.cv_folds} folds')
  print(f'cross-validation: test accuracy {summary["test/accuracy"]:.4f} '
        f'+- {summary["test/accuracy_std"]:.4f} over '
        f'{config.data.cv_folds} folds', flush=True)
  return training.write_summary(workdir, summary)


def run(config, workdir: str) -> dict:
  """Trains (or resumes) and evaluates; writes predictions and summary.json.

  With data.cv_folds > 1 and data.fold = -1, every fold is run in turn.
  """
  validate(config)
  if config.data.cv_folds and config.data.fold < 0:
    return _cross_validate(config, workdir)
  return _run_one(config, workdir)


def _one_fold(config, workdir: str):
  if config.data.cv_folds and config.data.fold < 0:
    raise InputError(f'{workdir} holds a {config.data.cv_folds}-fold '
                     'cross-validation: give one fold, --workdir='
                     f'{os.path.join(workdir, "fold0")}')


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Recomputes a checkpoint's valid and test metrics and predictions."""
  _one_fold(config, workdir)
  params, step = training.load_params(workdir, step)
  vocab = training.load_vocab(workdir, 'vocab.json', NAME)
  labels = training.load_vocab(workdir, 'labels.json', NAME)
  _, _, data = encode_splits(config.data, load_splits(config.data),
                             vocab, labels)
  task = ClassifyTask(config, vocab, labels, data)
  summary = training.evaluate_checkpoint(task, config, params, step, NAME)
  return _finish(task, labels, params, training.evaluation_dir(workdir, step),
                 summary)


def predict(config, workdir: str, texts: list[str],
            step: int | None = None) -> list[str]:
  """`label<TAB>probability` of each text; needs only the workdir."""
  _one_fold(config, workdir)
  vocab = training.load_vocab(workdir, 'vocab.json', NAME)
  labels = training.load_vocab(workdir, 'labels.json', NAME)
  params, _ = training.load_params(workdir, step)
  data = Encoded([(t, '') for t in texts], vocab, labels, config.data)
  for number, ids in enumerate(data.ids, 1):
    if not len(ids):
      raise InputError(f'input line {number}: no words in {texts[number - 1]!r}')
  task = ClassifyTask(config, vocab, labels, {'input': data})
  probs = predict_split(task, params, 'input')
  return [f'{labels.itos[int(p.argmax())]}\t{p.max():.4f}' for p in probs]
