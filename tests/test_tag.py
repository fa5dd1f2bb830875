"""Tagging: the CRF against brute force, span F1 by hand, the readers, and
the experiment end to end."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnn_jax import crf
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax.data.builders import tagging as tagging_data
from rnn_jax.errors import InputError
from conftest import requires_raw, run_launcher

K, T = 3, 4


def _random_crf(seed=0, batch=3):
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  params = crf.Params(jax.random.normal(keys[0], (K, K)),
                      jax.random.normal(keys[1], (K,)),
                      jax.random.normal(keys[2], (K,)))
  emissions = jax.random.normal(keys[3], (batch, T, K))
  return params, emissions


def _brute_scores(params, emissions, length):
  """Every tag sequence of the first `length` steps and its score."""
  p = jax.tree.map(np.asarray, params)
  e = np.asarray(emissions)
  out = {}
  for tags in itertools.product(range(K), repeat=length):
    s = p.start[tags[0]] + p.end[tags[-1]] + sum(e[t, y] for t, y in enumerate(tags))
    s += sum(p.transitions[a, b] for a, b in zip(tags, tags[1:]))
    out[tags] = s
  return out


def test_log_partition_and_viterbi_equal_brute_force():
  params, emissions = _random_crf()
  lengths = jnp.array([4, 2, 1])
  log_z = crf.log_partition(params, emissions, lengths)
  best, best_score = crf.viterbi(params, emissions, lengths)
  for b, n in enumerate(lengths.tolist()):
    scores = _brute_scores(params, emissions[b], n)
    values = np.array(list(scores.values()))
    np.testing.assert_allclose(log_z[b], np.log(np.exp(values).sum()), rtol=1e-5)
    argmax = max(scores, key=scores.get)
    assert tuple(best[b, :n].tolist()) == argmax
    assert (np.asarray(best[b, n:]) == 0).all()
    np.testing.assert_allclose(best_score[b], scores[argmax], rtol=1e-5)
    # The gold-path score and p(y) of a few sequences.
    for tags in list(scores)[:5]:
      padded = jnp.array([list(tags) + [0] * (T - n)])
      got = crf.sequence_score(params, emissions[b:b + 1], padded,
                               lengths[b:b + 1])
      np.testing.assert_allclose(got[0], scores[tags], rtol=1e-5)


def test_crf_ignores_padding():
  params, emissions = _random_crf(seed=1)
  lengths = jnp.array([4, 2, 0])
  garbage = emissions.at[1, 2:].set(100.0).at[2].set(-50.0)
  tags = jnp.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 1, 1, 1]])
  junk_tags = tags.at[1, 2:].set(1)
  log_partition, nll, viterbi = map(jax.jit, (crf.log_partition, crf.nll,
                                              crf.viterbi))
  for a, b in ((log_partition(params, emissions, lengths),
                log_partition(params, garbage, lengths)),
               (nll(params, emissions, tags, lengths),
                nll(params, garbage, junk_tags, lengths)),
               (viterbi(params, emissions, lengths)[0],
                viterbi(params, garbage, lengths)[0])):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert log_partition(params, emissions, lengths)[2] == 0
  # Same as the sentence alone in a batch of its own length.
  alone = log_partition(params, emissions[1:2, :2], lengths[1:2])
  np.testing.assert_allclose(alone[0], log_partition(
      params, emissions, lengths)[1], rtol=1e-6)


def _counts(gold, predicted):
  """Chunk counts of sentences given as tag strings."""
  names = sorted({t for s in gold + predicted for t in s})
  index = {n: i for i, n in enumerate(names)}
  width = max(len(s) for s in gold)
  def ids(sentences):
    return jnp.array([[index[t] for t in s] + [0] * (width - len(s))
                      for s in sentences])
  lengths = jnp.array([len(s) for s in gold])
  mask = jnp.arange(width)[None] < lengths[:, None]
  return [float(x) for x in jax.jit(metrics.chunk_counts)(
      ids(gold), ids(predicted), mask, metrics.chunk_scheme(names))]


def test_span_f1_by_hand_iob2_iob1_iobes():
  # IOB2. Gold: PER 0-1, LOC 3 | ORG 0. Predicted: PER 0-1, ORG 3 | ORG 0-1.
  # Only PER matches: P = R = 1/3.
  gold = [['B-PER', 'I-PER', 'O', 'B-LOC'], ['B-ORG', 'O']]
  pred = [['B-PER', 'I-PER', 'O', 'B-ORG'], ['B-ORG', 'I-ORG']]
  assert _counts(gold, pred) == [1, 3, 3]
  assert metrics.precision_recall_f1(1, 3, 3)[2] == pytest.approx(1 / 3)
  # The same spans in IOB1, plus adjacent PERs that B- separates in gold
  # and the prediction merges: 1 correct of 4 predicted, 5 gold;
  # F1 = 2 (1/4)(1/5) / (1/4 + 1/5) = 2/9.
  gold = [['I-PER', 'I-PER', 'O', 'I-LOC'], ['I-ORG', 'O'], ['I-PER', 'B-PER']]
  pred = [['I-PER', 'I-PER', 'O', 'I-ORG'], ['I-ORG', 'I-ORG'], ['I-PER', 'I-PER']]
  counts = _counts(gold, pred)
  assert counts == [1, 5, 4]
  assert metrics.precision_recall_f1(*counts)[2] == pytest.approx(2 / 9)
  # IOBES: E and S close chunks; an I after O opens one (as conlleval).
  gold = [['B-PER', 'E-PER', 'S-PER', 'O', 'S-LOC']]
  pred = [['B-PER', 'E-PER', 'I-PER', 'O', 'I-LOC']]
  assert _counts(gold, pred) == [3, 3, 3]
  pred = [['B-PER', 'I-PER', 'I-PER', 'O', 'S-LOC']]
  assert _counts(gold, pred) == [1, 3, 2]
  # POS tags (no prefix) are one-token spans: F1 = token accuracy.
  assert _counts([['NN', 'VB', 'NN']], [['NN', 'NN', 'NN']]) == [2, 3, 3]


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O

Peter NNP I-NP I-PER
"""

CONLLU = """# sent_id = 1
1-2\tdidn't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdid\tdo\tAUX\tVBD\t_\t0\troot\t_\t_
2\tn't\tnot\tPART\tRB\t_\t1\tadvmod\t_\t_
2.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t0:root\t_

1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


def test_readers_skip_docstart_ranges_and_empty_nodes():
  sentences = tagging_data.parse_conll(CONLL.split('\n'), 'x')
  assert [[row[0] for row in s] for s in sentences] == [['EU', 'rejects'], ['Peter']]
  assert sentences[0][0] == ['EU', 'NNP', 'I-NP', 'I-ORG']
  sentences = tagging_data.parse_conllu(CONLLU.split('\n'), 'x')
  assert [[(row[1], row[3]) for row in s] for s in sentences] == [
      [('did', 'AUX'), ("n't", 'PART')], [('Yes', 'INTJ')]]
  with pytest.raises(InputError, match='x:3: expected 4 columns'):
    tagging_data.parse_conll(['a b c d', '', 'e f'], 'x')


def test_tagger_padding_changes_no_real_score():
  model = models.Tagger(vocab_size=20, num_tags=5, embed_size=8,
                        feature_vocab_sizes=(6,), feature_embed_size=3,
                        char_vocab_size=12, char_embed_size=4,
                        char_hidden_size=5, hidden_size=7, dropout=0.0)
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(1, 20, (2, 6)))
  features = jnp.asarray(rng.integers(1, 6, (2, 6, 1)))
  chars = jnp.asarray(rng.integers(1, 12, (2, 6, 4)))
  char_lengths = jnp.asarray(rng.integers(1, 5, (2, 6)))
  lengths = jnp.array([6, 3])
  # Jitted: one compilation per shape instead of one per operation.
  params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens, lengths,
                               features, chars, char_lengths)
  apply = jax.jit(model.apply)
  out = apply(params, tokens, lengths, features, chars, char_lengths)
  # Garbage in row 1's padding, and in the unused characters of every word.
  noisy = dict(tokens=tokens.at[1, 3:].set(7),
               features=features.at[1, 3:].set(2),
               chars=jnp.where(jnp.arange(4) < char_lengths[..., None], chars, 9),
               char_lengths=char_lengths.at[1, 3:].set(2))
  out2 = apply(params, noisy['tokens'], lengths, noisy['features'],
               noisy['chars'], noisy['char_lengths'])
  np.testing.assert_allclose(out[0], out2[0], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[1, :3], out2[1, :3], rtol=1e-5, atol=1e-6)
  # Row 1 alone, cut to its length, scores the same.
  alone = apply(params, tokens[1:, :3], lengths[1:], features[1:, :3],
                chars[1:, :3], char_lengths[1:, :3])
  np.testing.assert_allclose(alone[0], out[1, :3], rtol=1e-5, atol=1e-6)


@requires_raw('conll2000/train.txt')
def test_builders_count_the_published_sentences_and_tokens():
  from rnn_jax.data import builders
  expected = {'conll2000': {'train': (8936, 211727), 'test': (2012, 47377)},
              'conll2003': {'train': (14041, 203621), 'valid': (3250, 51362),
                            'test': (3453, 46435)},
              'ud_english_lines': {'train': (3176, 57372),
                                   'valid': (1032, 19170),
                                   'test': (1035, 17675)}}
  for name, splits in expected.items():
    data = builders.load(name)
    got = {s: (len(rs), sum(len(r['tokens']) for r in rs))
           for s, rs in data.items()}
    assert got == splits, name


def _synthetic(path, n, seed):
  """Sentences of 4-9 words where every capitalised word is a NAME of its
  own, in IOB1: I-NAME, or B-NAME right after another NAME."""
  rng = np.random.default_rng(seed)
  lower = ['the', 'a', 'saw', 'met', 'with', 'at', 'on', 'ran']
  upper = ['Ann', 'Bob', 'Cy', 'Dee', 'Eve', 'Flo']
  lines = []
  for _ in range(n):
    previous = 'O'
    for _ in range(rng.integers(4, 10)):
      if rng.random() < 0.4:
        word = rng.choice(upper)
        tag = 'B-NAME' if previous != 'O' else 'I-NAME'
      else:
        word, tag = rng.choice(lower), 'O'
      lines.append(f'{word} {tag}')
      previous = tag
    lines.append('')
  path.write_text('\n'.join(lines) + '\n')
  return path


def test_own_conll_files_learn_and_predictions_score_alike(tmp_path):
  files = {s: _synthetic(tmp_path / f'{s}.conll', n, seed)
           for s, n, seed in (('train', 300, 0), ('valid', 40, 1),
                              ('test', 60, 2))}
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=tag', '--config.data.name=files',
                        '--config.data.column=1',
                        *[f'--config.data.{s}={p}' for s, p in files.items()],
                        '--config.model.hidden_size=16', '--config.model.embed_size=8',
                        '--config.model.char_hidden_size=0',
                        '--config.data.batch_size=16', '--config.train.num_epochs=8',
                        '--config.train.learning_rate=0.02', f'--workdir={workdir}')
  assert result.returncode == 0, result.stderr
  with open(workdir / 'summary.json') as f:
    summary = json.load(f)
  assert summary['test/accuracy'] > 0.95 and summary['test/f1'] > 0.9
  # Scoring the written predictions file gives the summary's F1.
  text = (workdir / 'test_predictions.conll').read_text()
  sentences = [[line.split() for line in block.splitlines()]
               for block in text.strip().split('\n\n')]
  counts = _counts([[r[1] for r in s] for s in sentences],
                   [[r[2] for r in s] for s in sentences])
  assert metrics.precision_recall_f1(*counts)[2] == pytest.approx(
      summary['test/f1'], abs=1e-6)
  assert [r[0] for r in sentences[0]] == (
      files['test'].read_text().split('\n\n')[0].split()[::2])
