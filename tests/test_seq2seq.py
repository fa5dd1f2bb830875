"""Seq2seq: the encoder-decoder, decoding (greedy, beam, sampling), BLEU,
the data builders and the experiment end to end."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import read_summary, run_launcher
from conftest import requires_raw
from rnn_jax.experiments import seq2seq
from rnn_jax import decoding
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax.data import builders
from rnn_jax.data import paired
from rnn_jax.data import pipelines
from rnn_jax.errors import InputError

BOS, EOS = 2, 3


SEP = 4  # the hierarchical models' statement separator


def _model(attention='additive', cell='gru', bidirectional=True, layers=1,
           hierarchical=False):
  return models.Seq2Seq(
      source_vocab_size=23, target_vocab_size=19, embed_size=8,
      encoder_cell=cell, encoder_hidden_size=6, encoder_layers=layers,
      bidirectional=bidirectional, decoder_cell=cell, hidden_size=7,
      decoder_layers=layers, attention=attention,
      readout_size=5 if attention != 'multiplicative' else 0,
      hierarchical=hierarchical, separator_id=SEP if hierarchical else -1)


def _init(model, seed=0):
  src = jnp.ones((2, 5), jnp.int32)
  return model.init(jax.random.PRNGKey(seed), src, jnp.array([5, 3]),
                    jnp.ones((2, 2), jnp.int32))['params']


def _step_fn(model):
  def step_fn(params, context, tokens, state):
    logits, state, _ = model.apply({'params': params}, tokens, state, context,
                                   method=models.Seq2Seq.step)
    return logits, state
  return step_fn


# Every attention, and cells whose carries differ in shape (the LRU's: a
# [B, 2H] state and the [B, H] output).
ATTENTIONS_AND_CELLS = [('none', 'lstm'), ('additive', 'gru'),
                        ('multiplicative', 'lstm'), ('additive', 'lru')]


@pytest.mark.parametrize('attention,cell', ATTENTIONS_AND_CELLS)
def test_scan_decoder_equals_the_step_by_step_loop(attention, cell):
  model = _model(attention, cell, layers=2)
  params = _init(model)
  rng = np.random.default_rng(0)
  src = jnp.asarray(rng.integers(4, 23, (3, 6)))
  lengths = jnp.array([6, 4, 1])
  tgt = jnp.asarray(rng.integers(4, 19, (3, 5)))
  loop = model.apply({'params': params}, src, lengths, tgt)
  scanned, weights = models.seq2seq_logits(model, params, src, lengths, tgt)
  np.testing.assert_allclose(scanned, loop, atol=1e-5)
  if attention != 'none':
    # Attention is a distribution over the real source positions only.
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert float(jnp.abs(weights[1, :, 4:]).max()) == 0.0
    assert float(jnp.abs(weights[2, :, 1:]).max()) == 0.0


@pytest.mark.parametrize('attention,cell,hierarchical', [
    *[(a, c, False) for a, c in ATTENTIONS_AND_CELLS],
    ('additive', 'lstm', True), ('none', 'gru', True)])
def test_padding_does_not_change_a_sentence(attention, cell, hierarchical):
  """Encoder masking: a sentence's logits alone equal its logits inside a
  padded batch, whatever the padding holds (hierarchical: two statements,
  the padding full of separators)."""
  model = _model(attention, cell, hierarchical=hierarchical)
  params = _init(model)
  rng = np.random.default_rng(1)
  short_src = rng.integers(5, 23, 3)
  if hierarchical:
    short_src[[0, 2]] = SEP
  short_tgt = rng.integers(4, 19, 4)
  alone, _ = models.seq2seq_logits(model, params, short_src[None],
                                   jnp.array([3]), short_tgt[None])
  src = rng.integers(4, 23, (2, 9))          # garbage after position 3
  src[0, :3] = short_src
  tgt = rng.integers(4, 19, (2, 4))
  tgt[0] = short_tgt
  batched, _ = models.seq2seq_logits(model, params, jnp.asarray(src),
                                     jnp.array([3, 9]), jnp.asarray(tgt))
  np.testing.assert_allclose(batched[0], alone[0], atol=1e-5)


def test_hierarchical_encoder_reads_each_statement_alone():
  """The word-level encoder restarts at every statement: its outputs over
  a statement inside a story equal its outputs over that statement alone,
  in both directions; the decoder attends over the statements' ends only."""
  model = _model('additive', 'lstm', hierarchical=True)
  params = _init(model)
  rng = np.random.default_rng(2)
  statements = [list(rng.integers(5, 23, n)) + [SEP] for n in (3, 5, 1, 2)]
  story = jnp.asarray([sum(statements, [])])
  length = story.shape[1]
  (context, _), inter = model.apply(
      {'params': params}, story, jnp.array([length]), method=model.encode,
      capture_intermediates=True, mutable=['intermediates'])
  outputs = inter['intermediates']['encoder']['__call__'][0][0]  # [S, 1, M]
  read = lambda m, x: m.encoder(m.source_embed(x.T))[0]
  start = 0
  for statement in statements:
    alone = model.apply({'params': params}, jnp.asarray([statement]),
                        method=read)
    end = start + len(statement)
    np.testing.assert_allclose(outputs[start:end], alone, atol=1e-5)
    start = end
  ends = np.cumsum([len(s) for s in statements]) - 1
  np.testing.assert_array_equal(np.flatnonzero(context['mask'][0]), ends)
  _, weights = models.seq2seq_logits(model, params, story,
                                     jnp.array([length]), jnp.ones((1, 3), int))
  assert float(weights[0][:, np.setdiff1d(np.arange(length), ends)].max()) == 0
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


def test_hierarchical_reads_the_last_max_statements(tmp_path):
  """With model.max_statements = 3 the model's output on a story of five
  statements is its output on the last three alone; a task refuses a
  source with more statements than that (one line) instead."""
  model = _model('additive', 'lstm', hierarchical=True).clone(
      max_statements=3)
  params = _init(model)
  rng = np.random.default_rng(3)
  statements = [list(rng.integers(5, 23, n)) + [SEP] for n in (2, 4, 1, 3, 2)]
  tgt = jnp.asarray(rng.integers(4, 19, (1, 3)))
  logits = {}
  for name, kept in (('all', statements), ('last', statements[2:])):
    story = jnp.asarray([sum(kept, [])])
    logits[name], _ = models.seq2seq_logits(
        model, params, story, jnp.array([story.shape[1]]), tgt)
  np.testing.assert_allclose(logits['all'], logits['last'], atol=1e-5)
  config = seq2seq.Seq2Seq().get_config()
  config.model.update(hierarchical=True, max_statements=3)
  config.data.min_freq = 1
  story = 'Mary went home.\nJohn left.\nMary sat.\nWhere is Mary?'
  with pytest.raises(InputError, match=r'^train example 1: 4 statements .*'
                     'model.max_statements=3'):
    seq2seq.Seq2SeqTask(config, {'train': [{'source': story,
                                            'target': 'home'}]},
                        str(tmp_path))


def test_statements_end_with_the_separator_and_predict_lines_split_at_tabs(
    tmp_path):
  dc = seq2seq.Seq2Seq().get_config().data
  examples = {'train': [{'source': 'Mary went home.\nWhere is Mary?',
                         'target': 'home'}]}
  data = paired.Data(dc, examples, str(tmp_path), max_statements=64)
  assert data.source['train'].tokens[0] == [
      'mary', 'went', 'home', '.', paired.SEP, 'where', 'is', 'mary', '?',
      paired.SEP]
  np.testing.assert_array_equal(
      data.encode_sources(['Mary went home.\tWhere is Mary?'], dc)[0],
      data.source['train'].ids[0])
  flat = paired.Data(dc, examples, str(tmp_path / 'flat'))
  assert paired.SEP not in flat.source_vocab.stoi
  assert flat.source['train'].tokens[0] == [
      t for t in data.source['train'].tokens[0] if t != paired.SEP]


def test_teacher_forcing_zero_feeds_back_the_argmax():
  """With teacher forcing 0 (and no dropout), training reads the model's own
  predictions: the logits equal those of teacher forcing on its greedy
  output."""
  model = _model('additive')
  params = _init(model)
  src = jnp.array([[5, 6, 7, 8]])
  lengths = jnp.array([4])
  gold = jnp.array([[BOS, 9, 10, 11, 12]])
  free, _ = models.seq2seq_logits(model, params, src, lengths, gold,
                                  rng=jax.random.PRNGKey(0), train=True,
                                  teacher_forcing=0.0)
  own = jnp.concatenate([gold[:, :1], free.argmax(-1)[:, :-1]], axis=1)
  forced, _ = models.seq2seq_logits(model, params, src, lengths, own)
  np.testing.assert_allclose(free, forced, atol=1e-5)


def test_decoder_gradient_matches_finite_differences():
  model = _model('multiplicative', 'lstm')
  params = _init(model)
  src = jnp.array([[5, 6, 7], [8, 9, 0]])
  lengths = jnp.array([3, 2])
  tgt_in = jnp.array([[BOS, 4, 5], [BOS, 6, 7]])
  tgt_out = jnp.array([[4, 5, EOS], [6, 7, EOS]])

  def loss(p):
    logits, _ = models.seq2seq_logits(model, p, src, lengths, tgt_in)
    total, count = metrics.cross_entropy(logits, tgt_out)
    return total / count
  grads = jax.grad(loss)(params)
  leaf = params['decoder0']['W_hh']
  direction = jax.random.normal(jax.random.PRNGKey(3), leaf.shape)
  eps = 1e-3
  def shifted(sign):
    p = jax.tree.map(lambda x: x, params)
    p['decoder0'] = dict(p['decoder0'], W_hh=leaf + sign * eps * direction)
    return loss(p)
  numeric = (shifted(1) - shifted(-1)) / (2 * eps)
  analytic = jnp.vdot(grads['decoder0']['W_hh'], direction)
  assert abs(float(numeric) - float(analytic)) < 2e-3 * max(1, abs(float(analytic)))


def _context_and_state(model, params, batch=3, length=6, seed=0):
  rng = np.random.default_rng(seed)
  src = jnp.asarray(rng.integers(4, 23, (batch, length)))
  lengths = jnp.asarray(rng.integers(1, length + 1, batch))
  return model.apply({'params': params}, src, lengths,
                     method=models.Seq2Seq.encode)


@pytest.mark.parametrize('attention', models.ATTENTIONS)
def test_beam_of_one_is_greedy(attention):
  model = _model(attention)
  params = _init(model, seed=4)
  context, state = _context_and_state(model, params, batch=5)
  step = _step_fn(model)
  greedy = decoding.decode(step, params, context, state, bos=BOS, eos=EOS,
                           max_length=12)
  beam, _ = decoding.beam_search(step, params, context, state, bos=BOS,
                                 eos=EOS, max_length=12, beam_size=1)
  np.testing.assert_array_equal(beam, greedy)


# A hand-built decoder over tokens {0: <bos>, 1: <eos>, 2: a, 3: b}; the state
# is the previous token. From <bos>: a 0.6, b 0.4. After a: a, b and <eos>
# equally likely (1/3). After b: <eos> 0.9. Greedy says "a ..." (at best
# 0.6 / 3 = 0.2), but "b <eos>" has probability 0.36.
_TABLE = np.log(np.array([
    [1e-9, 1e-9, 0.6, 0.4],        # after <bos>
    [1e-9, 1.0, 1e-9, 1e-9],       # after <eos> (unused)
    [1e-9, 1 / 3, 1 / 3, 1 / 3],   # after a
    [1e-9, 0.9, 0.05, 0.05],       # after b
]))


def _table_step(params, context, tokens, state):
  del context, state
  return params[tokens], tokens


def test_beam_search_finds_the_best_sequence_greedy_misses():
  params = jnp.asarray(_TABLE, jnp.float32)
  state = jnp.zeros((1,), jnp.int32)
  greedy = decoding.decode(_table_step, params, {}, state, bos=0, eos=1,
                           max_length=6)
  assert int(greedy[0, 0]) == 2                      # greedy starts with a
  best, score = decoding.beam_search(_table_step, params, {}, state, bos=0,
                                     eos=1, max_length=6, beam_size=2)
  np.testing.assert_array_equal(best[0], [3, 1, 1, 1, 1, 1])  # b <eos>
  assert math.isclose(float(score[0]), math.log(0.36), rel_tol=1e-5)


def test_beam_search_respects_max_length_and_length_penalty():
  # After a, <eos> has 0.1 and a 0.9: the best finished hypotheses are
  # short; a strong length penalty prefers the longer ones.
  table = np.log(np.array([
      [1e-9, 0.5, 0.5, 1e-9],
      [1e-9, 1.0, 1e-9, 1e-9],
      [1e-9, 0.1, 0.9, 1e-9],
      [1e-9, 1.0, 1e-9, 1e-9],
  ]))
  params = jnp.asarray(table, jnp.float32)
  state = jnp.zeros((1,), jnp.int32)
  plain, _ = decoding.beam_search(_table_step, params, {}, state, bos=0,
                                  eos=1, max_length=4, beam_size=3)
  np.testing.assert_array_equal(plain[0], [1, 1, 1, 1])  # <eos> at once
  long, _ = decoding.beam_search(_table_step, params, {}, state, bos=0,
                                 eos=1, max_length=4, beam_size=3, alpha=5.0)
  assert long.shape == (1, 4) and int(long[0, 0]) == 2
  # A hypothesis cut at max_length without <eos> is returned as it is.
  never = np.log(np.full((4, 4), 1e-9))
  never[:, 2] = 1.0
  cut, _ = decoding.beam_search(_table_step, jnp.asarray(never, jnp.float32),
                                {}, state, bos=0, eos=1, max_length=5,
                                beam_size=2)
  np.testing.assert_array_equal(cut[0], [2, 2, 2, 2, 2])


def test_sampling_follows_the_model_distribution():
  params = jnp.asarray(_TABLE, jnp.float32)
  state = jnp.zeros((2000,), jnp.int32)
  out = decoding.decode(_table_step, params, {}, state,
                        jax.random.PRNGKey(0), bos=0, eos=1, max_length=3,
                        temperature=1.0)
  first = np.asarray(out[:, 0])
  assert abs((first == 2).mean() - 0.6) < 0.04
  # Once a row has ended it stays <eos>.
  ended = np.asarray(out[:, 1]) == 1
  assert (np.asarray(out[ended, 2]) == 1).all()


def test_bleu_of_identical_and_disjoint_text():
  refs = ['a man is riding a bike .', 'two dogs play in the snow .']
  assert metrics.corpus_bleu(refs, refs)[0] == pytest.approx(100.0)
  score, signature = metrics.corpus_bleu(['x y z w v'] * 2, refs)
  assert score < 1.0 and 'tok:13a' in signature


def test_punct_tokenizer_and_detokenize_round_trip():
  text = 'Two young, White males (outside) near 1.5 bushes!'
  words = pipelines.split_words(text, 'punct', lowercase=False)
  assert words == ['Two', 'young', ',', 'White', 'males', '(', 'outside',
                   ')', 'near', '1.5', 'bushes', '!']
  assert pipelines.detokenize(words) == text
  assert pipelines.split_words('Va\u202f!', 'punct') == ['va', '!']


def test_paired_batches_shift_the_target():
  batches = pipelines.PairedBatches([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]],
                                    3, pad_id=0, bos_id=BOS, eos_id=EOS,
                                    bucket_width=4)
  batch = next(batches.eval_batches())
  row = list(batch['index']).index(0)
  np.testing.assert_array_equal(batch['target_inputs'][row], [BOS, 9, 10, 0])
  np.testing.assert_array_equal(batch['targets'][row], [9, 10, EOS, 0])
  assert batch['target_lengths'][row] == 3 and batch['lengths'][row] == 3
  assert batch['weights'].tolist().count(0.0) == 1   # one fill row


def test_babi_parser_keeps_statements_and_splits_lists():
  lines = ['1 Mary got the milk.', '2 John went home.',
           '3 What is Mary carrying?\tmilk\t1', '4 Mary got the apple.',
           '5 What is Mary carrying?\tmilk,apple\t1 4',
           '1 Sandra went away.', '2 Where is Sandra?\taway\t1']
  out = builders.seq2seq.parse_babi(lines, 8, 'qa8')
  assert [e['target'] for e in out] == ['milk', 'milk apple', 'away']
  assert out[1]['source'] == ('Mary got the milk.\nJohn went home.\n'
                              'Mary got the apple.\nWhat is Mary carrying?')
  assert out[2]['source'] == 'Sandra went away.\nWhere is Sandra?'


@requires_raw('scan/simple_split/tasks_train_simple.txt.gz')
@requires_raw('babi/tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt')
@requires_raw('multi30k/task1/raw/train.de.gz')
def test_builder_counts():
  scan = builders.load('scan/length')
  assert {k: len(v) for k, v in scan.items()} == {'train': 16990, 'test': 3920}
  babi = builders.load('babi')
  assert len(babi['train']) == len(babi['test']) == 20000
  assert babi['train'][0]['target'] == 'bathroom'
  m30k = builders.load('multi30k')
  assert {k: len(v) for k, v in m30k.items()} == {
      'train': 29000, 'valid': 1014, 'test': 1000}
  assert m30k['test'][0]['source'].startswith('Ein Mann mit einem')



@requires_raw('fra-eng/fra.txt.gz')
def test_fra_eng_learns_and_bleu_equals_the_sacrebleu_command(tmp_path):
  result = run_launcher('--experiment=seq2seq', '--config.data.name=fra_eng',
                        '--config.data.max_examples=3000',
                        '--config.train.num_epochs=3',
                        '--config.model.embed_size=64',
                        '--config.model.encoder_hidden_size=64',
                        '--config.model.hidden_size=64',
                        '--config.model.readout_size=64',
                        '--config.train.learning_rate=0.005',
                        '--config.decode.examples=go .|i lost .',
                        f'--workdir={tmp_path}')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path)
  # The first 3,000 pairs are 1-3 word sentences; a uniform guess over the
  # ~600-word French vocabulary has perplexity ~600.
  assert summary['valid/perplexity'] < 25
  # (BLEU itself stays low here: 4-gram BLEU of 2-4 word sentences, and
  # min_freq=2 leaves many words of 3,000 pairs <unk>.)
  assert summary['test/bleu'] > 0
  assert 'case:lc' in summary['test/bleu_signature']  # cased references
  cli = subprocess.run(
      [sys.executable, '-m', 'sacrebleu', str(tmp_path / 'test_references.txt'),
       '-i', str(tmp_path / 'test_hypotheses.txt'), '-lc', '-b', '-w', '4'],
      capture_output=True, text=True, check=True)
  assert float(cli.stdout.strip()) == pytest.approx(summary['test/bleu'],
                                                    abs=1e-4)
  with open(tmp_path / 'test_hypotheses.txt', encoding='utf-8') as f:
    assert sum(1 for _ in f) == 300
  assert os.path.isfile(tmp_path / 'plots' / 'attention_0.png')
  assert set(summary['examples']) == {'go .', 'i lost .'}


def test_malformed_line_names_file_and_line(tmp_path):
  train = tmp_path / 'pairs.tsv'
  train.write_bytes(b'hello\tbonjour\nthanks merci\n')
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=seq2seq', '--config.data.name=files',
                        f'--config.data.train={train}', f'--workdir={workdir}')
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines == [f"error: {train}:2: expected 2 tab-separated fields "
                   "(source<TAB>target), got 1: 'thanks merci'"]
  assert not workdir.exists()


def test_own_pairs_file_learns_to_reverse(tmp_path):
  """`source<TAB>target` files: the model learns to reverse 3-word strings."""
  rng = np.random.default_rng(0)
  words = [f'w{i}' for i in range(8)]
  lines = []
  for _ in range(1200):
    s = list(rng.choice(words, 3))
    lines.append(' '.join(s) + '\t' + ' '.join(s[::-1]))
  train = tmp_path / 'train.tsv'
  train.write_text('\n'.join(lines) + '\n')
  result = run_launcher('--experiment=seq2seq', '--config.data.name=files',
                        f'--config.data.train={train}',
                        '--config.data.tokenizer=whitespace',
                        '--config.data.min_freq=1',
                        '--config.model.embed_size=32',
                        '--config.model.encoder_hidden_size=32',
                        '--config.model.hidden_size=32',
                        '--config.model.readout_size=32',
                        '--config.model.dropout=0',
                        '--config.train.num_epochs=6',
                        '--config.train.learning_rate=0.01',
                        '--config.decode.method=greedy',
                        '--config.decode.bleu=False',
                        f'--workdir={tmp_path / "run"}')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path / 'run')
  assert summary['test/exact_match'] > 0.9


def test_sentencepiece_tokenizer_round_trips(tmp_path):
  dc = seq2seq.Seq2Seq().get_config().data
  dc.tokenizer, dc.spm_vocab_size = 'sentencepiece', 20
  texts = [f'the {w} sat on the {v} mat.' for w in ('cat', 'dog', 'bird')
           for v in ('red', 'green', 'blue', 'old')] * 5
  tok = paired.Tokenizer(dc, texts, str(tmp_path), 'target')
  assert os.path.isfile(tmp_path / 'spm_target.model')
  pieces = tok.encode('The dog sat on the old mat.')
  assert len(pieces) > 1
  assert tok.decode(pieces) == 'the dog sat on the old mat.'
  dc.spm_vocab_size = 100000        # more pieces than the text allows
  with pytest.raises(InputError, match='spm_vocab_size'):
    paired.Tokenizer(dc, texts, str(tmp_path / 'big'), 'source')
