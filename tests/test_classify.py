"""Text classification: readouts under padding, batching, data, end to end."""

import collections
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import requires_raw, run_launcher
from rnn_jax.experiments import classify
from rnn_jax import driver
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax.data import builders
from rnn_jax.data import labelled
from rnn_jax.data import pipelines
from rnn_jax.errors import InputError


def _classifier(readout, bidirectional, cell='lstm'):
  return models.Classifier(
      vocab_size=50, num_classes=3, embed_size=8, cell=cell, hidden_size=6,
      num_layers=2, bidirectional=bidirectional, readout=readout, mlp_size=5)


@pytest.mark.parametrize('readout,bidirectional,cell', [
    *[(r, b, 'lstm') for r in models.READOUTS for b in (False, True)],
    # The LRU's final carry holds the output of each sequence's last real
    # step (the first, going backwards), gathered apart from its state.
    ('last', True, 'lru')])
def test_logits_are_the_same_alone_and_inside_a_padded_batch(
    readout, bidirectional, cell):
  model = _classifier(readout, bidirectional, cell)
  rng = np.random.default_rng(0)
  lengths = np.array([3, 7, 1, 5])
  tokens = np.zeros((4, 10), np.int32)  # padding id 0, 3 steps past the longest
  for row, n in enumerate(lengths):
    tokens[row, :n] = rng.integers(1, 50, n)
  # Jitted: one compilation per shape instead of one per operation.
  params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens, lengths)['params']
  apply = jax.jit(lambda t, n: model.apply({'params': params}, t, n))
  batched = apply(tokens, lengths)
  for row, n in enumerate(lengths):
    alone = apply(tokens[row:row + 1, :n], lengths[row:row + 1])
    np.testing.assert_allclose(batched[row], alone[0], rtol=1e-5, atol=1e-6)
  # Garbage in the padding changes nothing either.
  noisy = np.where(tokens == 0, rng.integers(1, 50, tokens.shape), tokens)
  np.testing.assert_allclose(apply(noisy, lengths), batched,
                             rtol=1e-5, atol=1e-6)


def _intercept(model, params, tokens, lengths):
  """The stack's outputs [T, B, 2H] and the readout's pooled vector (the
  input of the MLP's first dense layer)."""
  captured = {}

  def hook(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if (isinstance(context.module, layers.RNNStack)
        and context.method_name == '__call__'):
      captured['hs'] = np.asarray(out[0])
    if context.module.name == 'mlp':
      captured['pooled'] = np.asarray(args[0])
    return out
  with nn.intercept_methods(hook):
    model.apply({'params': params}, tokens, lengths)
  return captured['hs'], captured['pooled']


def test_last_readout_is_each_directions_true_end():
  """Forward: the output at the last real token; backward: at token 0."""
  model = _classifier('last', True, cell='gru')
  tokens = jnp.array([[4, 9, 2, 0, 0], [7, 1, 3, 8, 5]])
  lengths = jnp.array([3, 5])
  params = model.init(jax.random.PRNGKey(1), tokens, lengths)['params']
  hs, pooled = _intercept(model, params, tokens, lengths)
  h = 6
  for row, n in enumerate([3, 5]):
    expected = np.concatenate([hs[n - 1, row, :h], hs[0, row, h:]])
    np.testing.assert_allclose(pooled[row], expected, rtol=1e-6)


def test_bucketed_batches_cover_every_sentence_once_per_epoch():
  rng = np.random.default_rng(0)
  seqs = [rng.integers(2, 30, n) for n in rng.integers(1, 40, 203)]
  labels = rng.integers(0, 3, 203)
  b = pipelines.BucketedBatches(seqs, labels, 16, pad_id=0, seed=3,
                                bucket_width=8)
  assert b.steps_per_epoch == 13  # ceil(203 / 16)
  for epoch in (0, 1):
    seen = collections.Counter()
    for index in range(b.steps_per_epoch):
      batch = b.batch(epoch, index)
      assert batch['tokens'].shape[0] == 16
      assert batch['tokens'].shape[1] % 8 == 0
      assert batch['tokens'].shape[1] >= batch['lengths'].max()
      for row in np.flatnonzero(batch['weights']):
        n = batch['lengths'][row]
        seen[tuple(batch['tokens'][row, :n])] += 1
        assert (batch['tokens'][row, n:] == 0).all()
    assert sum(seen.values()) == 203
    assert seen == collections.Counter(tuple(s) for s in seqs)
  # A pure function of (seed, epoch, index); epochs differ.
  again = pipelines.BucketedBatches(seqs, labels, 16, pad_id=0, seed=3)
  np.testing.assert_array_equal(again.batch(1, 5)['tokens'],
                                b.batch(1, 5)['tokens'])
  assert not np.array_equal(b.batch(0, 0)['lengths'], b.batch(1, 0)['lengths'])
  # Length bucketing: batches are far less padded than random ones would be.
  padded = sum(b.batch(0, i)['tokens'].size for i in range(13))
  assert padded < 0.7 * 13 * 16 * 40
  # Evaluation: each sentence once, its position given by `index`.
  rows = np.concatenate([e['index'][e['weights'] > 0]
                         for e in b.eval_batches()])
  assert sorted(rows) == list(range(203))


def test_kim_tokenizer_splits_clitics_and_punctuation():
  assert pipelines.split_words("It's n't (great), isn't it?!", 'kim') == [
      'it', "'s", "n't", '(', 'great', ')', ',', 'is', "n't", 'it', '?', '!']
  assert pipelines.split_words('Keep  Case', lowercase=False) == ['Keep',
                                                                  'Case']


def test_macro_f1_by_hand():
  # gold x predicted: class 0: 2 right, 1 as class 1; class 1: 1 right;
  # class 2: never gold, once predicted (for a class-1 example).
  confusion = np.array([[2, 1, 0], [0, 1, 1], [0, 0, 0]])
  f1_0 = 2 * 2 / (3 + 2)
  f1_1 = 2 * 1 / (2 + 2)
  f1_2 = 0.0
  assert metrics.macro_f1(confusion) == pytest.approx((f1_0 + f1_1 + f1_2) / 3)


def test_folds_partition_the_data_and_are_fixed():
  fold = labelled.fold_of(23, 10, seed=0)
  sizes = np.bincount(fold, minlength=10)
  assert sizes.sum() == 23 and sizes.max() - sizes.min() <= 1
  np.testing.assert_array_equal(fold, labelled.fold_of(23, 10, seed=0))


def _write(path, lines):
  path.write_text(''.join(line + '\n' for line in lines), encoding='utf-8')
  return str(path)


def test_tsv_header_detection_and_errors(tmp_path):
  rows = ['pos\tgood film', 'neg\tbad film', 'pos\tgreat', 'neg\tdull']
  assert labelled.read_tsv(_write(tmp_path / 'a.tsv', ['label\ttext'] + rows))[0] \
      == ('good film', 'pos')
  assert len(labelled.read_tsv(_write(tmp_path / 'b.tsv', rows))) == 4
  assert len(labelled.read_tsv(_write(tmp_path / 'c.tsv', rows), 'yes')) == 3
  # Too few lines to tell: 'a' might be a class seen once; kept as data.
  assert len(labelled.read_tsv(_write(tmp_path / 'e.tsv',
                                      ['a\tx', 'b\ty']))) == 2
  bad = _write(tmp_path / 'd.tsv', rows[:2] + ['no tab here'] + rows[2:])
  with pytest.raises(InputError, match=r'd\.tsv:3: expected 2 tab-separated fields'):
    labelled.read_tsv(bad)


def _synthetic_tsv(path, n, seed):
  """Label = whether the sentence mentions 'good' or 'bad' first."""
  rng = np.random.default_rng(seed)
  filler = ['the', 'film', 'was', 'a', 'plot', 'and', 'very', 'it']
  lines = ['label\ttext']
  for _ in range(n):
    words = list(rng.choice(filler, rng.integers(2, 12)))
    label = rng.choice(['pos', 'neg'])
    words.insert(rng.integers(len(words) + 1),
                 'good' if label == 'pos' else 'bad')
    lines.append(f'{label}\t{" ".join(words)}')
  return _write(path, lines)


_SMALL = ('--experiment=classify', '--config.model.hidden_size=16',
          '--config.model.embed_size=16', '--config.model.mlp_size=0',
          '--config.data.batch_size=16', '--config.train.optimizer=adam',
          '--config.train.learning_rate=0.01', '--config.train.num_epochs=3')


@pytest.mark.parametrize('with_valid_and_test', [False, True])
def test_own_tsv_files_train_and_predict(tmp_path, with_valid_and_test):
  args = [*_SMALL, f'--workdir={tmp_path / "run"}', '--config.data.name=files',
          f'--config.data.train={_synthetic_tsv(tmp_path / "train.tsv", 400, 0)}']
  if with_valid_and_test:
    args += [f'--config.data.valid={_synthetic_tsv(tmp_path / "v.tsv", 60, 1)}',
             f'--config.data.test={_synthetic_tsv(tmp_path / "t.tsv", 50, 2)}']
  result = run_launcher(*args)
  assert result.returncode == 0, result.stderr
  with open(tmp_path / 'run' / 'summary.json') as f:
    summary = json.load(f)
  assert summary['valid/accuracy'] > 0.9 and summary['test/accuracy'] > 0.9
  assert summary['test/macro_f1'] > 0.9
  with open(tmp_path / 'run' / 'test_predictions.tsv') as f:
    lines = f.read().splitlines()
  assert len(lines) == (50 if with_valid_and_test else 40)  # 10% of 400
  gold, predicted, text = lines[0].split('\t')
  assert gold in ('pos', 'neg') and predicted in ('pos', 'neg') and text
  correct = sum(l.split('\t')[0] == l.split('\t')[1] for l in lines)
  assert correct / len(lines) == pytest.approx(summary['test/accuracy'])
  assert os.path.isfile(tmp_path / 'run' / 'plots' / 'confusion_test.png')


def test_malformed_tsv_line_is_a_one_line_error(tmp_path):
  train = _synthetic_tsv(tmp_path / 'train.tsv', 50, 0)
  with open(train, 'a', encoding='utf-8') as f:
    f.write('pos and no tab\n')
  result = run_launcher(*_SMALL, f'--workdir={tmp_path / "run"}',
                        '--config.data.name=files', f'--config.data.train={train}')
  assert result.returncode == 2
  assert result.stderr.strip() == (
      f"error: {train}:52: expected 2 tab-separated fields (label<TAB>text), "
      "got 1: 'pos and no tab'")
  assert not os.path.exists(tmp_path / 'run')


def test_cross_validation_reports_the_mean_over_folds(tmp_path):
  train = _synthetic_tsv(tmp_path / 'train.tsv', 300, 0)
  result = run_launcher(*_SMALL, f'--workdir={tmp_path}', '--config.data.name=files',
                        f'--config.data.train={train}', '--config.data.cv_folds=2',
                        '--config.train.num_epochs=2')
  assert result.returncode == 0, result.stderr
  with open(tmp_path / 'summary.json') as f:
    summary = json.load(f)
  folds = [f['test/accuracy'] for f in summary['folds']]
  assert len(folds) == 2
  assert summary['test/accuracy'] == pytest.approx(np.mean(folds))
  with open(tmp_path / 'test_predictions.tsv') as f:
    assert len(f.read().splitlines()) == 300  # every example tested once


@requires_raw('trec/train_5500.label')
def test_learns_trec_from_the_real_data(tmp_path):
  """A small BiGRU, 3 epochs: well above the 22.6% majority class (ENTY);
  its predictions file agrees with the summary."""
  config = classify.Classification().get_config()
  config.data.name = 'trec'
  config.model.update(cell='gru', hidden_size=32, embed_size=32, mlp_size=0,
                      readout='max')
  config.train.update(optimizer='adam', learning_rate=3e-3, num_epochs=3)
  summary = driver.train(classify.Classification(), config, str(tmp_path))
  assert summary['test/accuracy'] > 0.6
  assert summary['data'] == 'trec' and summary['test/num_targets'] == 500
  with open(tmp_path / 'test_predictions.tsv', encoding='utf-8') as f:
    rows = [line.split('\t') for line in f.read().splitlines()]
  assert len(rows) == 500 and all(len(r) == 3 and r[2] for r in rows)
  assert np.mean([g == p for g, p, _ in rows]) == pytest.approx(
      summary['test/accuracy'])
  assert os.path.isfile(tmp_path / 'plots' / 'confusion_test.png')


@requires_raw('sst2/glue/train.tsv')
def test_builders_read_the_published_splits():
  sst2 = builders.load('sst2')
  assert {s: len(v) for s, v in sst2.items()} == {
      'train': 67349, 'valid': 872, 'test': 1821}
  assert collections.Counter(r['label'] for r in sst2['valid']) == {
      '0': 428, '1': 444}
  assert {r['label'] for r in sst2['test']} == {''}  # GLUE hides them
  kim = builders.load('sst2/kim2014')
  assert collections.Counter(r['label'] for r in kim['test']) == {
      '0': 912, '1': 909}
  trec = builders.load('trec')
  assert len(trec['train']) == 5452 and len(trec['test']) == 500
  assert collections.Counter(r['label'] for r in trec['test'])['DESC'] == 138
  assert len({r['label'] for r in builders.load('trec/fine')['train']}) == 50
  mr = builders.load('mr')['train']
  assert collections.Counter(r['label'] for r in mr) == {'0': 5331, '1': 5331}
