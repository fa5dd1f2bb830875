"""Users' own files, as real ones come: each is read exactly (asserted on the
records or the vocabulary) or stops the run with `error: FILE:LINE: ...`,
exit status 2 and nothing written."""

import pytest

from conftest import run_launcher
from rnn_jax import driver
from rnn_jax import experiments
from rnn_jax.data import corpus
from rnn_jax.data import labelled
from rnn_jax.data import paired
from rnn_jax.data import readers
from rnn_jax.data import tagged

classify, lm, seq2seq, tag = map(experiments.get_experiment,
                                 ('classify', 'lm', 'seq2seq', 'tag'))

BOM = '\ufeff'
# Accents, CJK, emoji, a no-break space, an apostrophe, digits, upper case.
WORLD = 'The café naïve 東京 COVID-19 don\'t 🙂 a\xa0b'


def _endings(lines, ending='\n', bom=False, trailing_blank=False):
  text = ending.join(lines) + ending
  if trailing_blank:
    text += ending
  return ((BOM if bom else '') + text).encode('utf-8')


# The variants of one file: how a line ends, a BOM, a blank line at the end.
VARIANTS = {
    'lf': {}, 'crlf': {'ending': '\r\n'}, 'cr': {'ending': '\r'},
    'bom': {'bom': True}, 'bom_crlf': {'bom': True, 'ending': '\r\n'},
    'trailing_blank': {'trailing_blank': True},
}


def _files(tmp_path, lines, variant, name='data'):
  """The same lines as train, valid and test files of one variant."""
  paths = {}
  for split in ('train', 'valid', 'test'):
    path = tmp_path / f'{name}_{split}.txt'
    path.write_bytes(_endings(lines, **VARIANTS[variant]))
    paths[split] = str(path)
  return paths


def _config(experiment, paths, **data):
  config = experiment.get_config()
  config.data.name = 'files'
  config.data.update(paths)
  config.data.update(data)
  return config


# ----------------------------------------------------------------------------
# Read exactly.


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_lm_text_is_read_exactly(tmp_path, variant):
  lines = [WORLD, 'tab\there', 'Line three.']
  tokens = lm.load_data(_config(lm, _files(tmp_path, lines, variant)))
  text = '\n'.join(lines) + ('\n' if variant == 'trailing_blank' else '')
  assert tokens['train'] == list(text)      # every character, as written
  vocab = corpus.build_vocab(tokens['train'], _config(lm, {}).data)
  assert {'é', '東', '🙂', '\xa0', '\t', 'T', '-', "'"} <= set(vocab.itos)
  assert '\r' not in vocab.stoi and BOM not in vocab.stoi


def test_lm_word_level_keeps_case_punctuation_and_non_ascii(tmp_path):
  tokens = lm.load_data(_config(lm, _files(tmp_path, [WORLD], 'crlf'),
                                level='word'))
  # Words are split at white space (the no-break space is white space).
  assert tokens['train'] == ['The', 'café', 'naïve', '東京', 'COVID-19',
                             "don't", '🙂', 'a', 'b', '<eos>']


def test_lm_preprocessing_only_when_asked(tmp_path):
  paths = _files(tmp_path, [WORLD], 'lf')
  assert lm.load_data(_config(lm, paths))['train'] == list(WORLD)
  d2l = lm.load_data(_config(lm, paths, preprocess='d2l'))['train']
  assert ''.join(d2l) == 'the caf na ve covid don t a b'


# 'café' decomposed (e + U+0301), and the ligature 'ﬁ' (NFKC: 'fi').
DECOMPOSED = 'cafe\u0301 \ufb01ne'


@pytest.mark.parametrize('form, expected', [
    ('none', DECOMPOSED), ('NFC', 'caf\u00e9 \ufb01ne'),
    ('NFKC', 'caf\u00e9 fine')])
def test_unicode_normalisation_only_when_asked(tmp_path, form, expected):
  """data.normalize: the files' text in that normal form, for every reader
  of users' files; prediction inputs the same way."""
  paths = _files(tmp_path, [DECOMPOSED], 'lf')
  assert ''.join(lm.load_data(_config(lm, paths, normalize=form))['train']
                 ) == expected
  rows = _files(tmp_path, [f'pos\t{DECOMPOSED}', 'neg\tdull'], 'lf', 'tsv')
  pairs = labelled.load_splits(_config(classify, rows, normalize=form).data)
  assert pairs['train'][0] == (expected, 'pos')
  conll = _files(tmp_path, [f'{DECOMPOSED.split()[0]} B-X'], 'lf', 'conll')
  sentences = tagged.load_splits(_config(tag, conll, column='1',
                                         normalize=form).data)
  assert sentences['train'][0][0] == [expected.split()[0]]
  config = _config(lm, paths, normalize=form)
  assert driver.normalized(config, [DECOMPOSED]) == [expected]


CLASSIFY_ROWS = ['rare\tthe very first line, a class seen once',
                 f'pos\t{WORLD}', 'neg\tbad film', 'pos\tgood film',
                 'neg\tdull']


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_classify_tsv_is_read_exactly(tmp_path, variant):
  paths = _files(tmp_path, CLASSIFY_ROWS, variant)
  pairs = labelled.load_splits(_config(classify, paths).data)
  expected = [tuple(row.split('\t')[::-1]) for row in CLASSIFY_ROWS]
  assert pairs['train'] == expected     # the rare first line is data
  vocabs = labelled.build_vocabs(pairs, _config(classify, {}).data)
  assert vocabs['labels'].itos == ['neg', 'pos', 'rare']


def test_classify_header_is_dropped_only_when_it_cannot_be_data(tmp_path,
                                                                capsys):
  paths = _files(tmp_path, ['label\ttext'] + CLASSIFY_ROWS, 'bom_crlf')
  pairs = labelled.load_splits(_config(classify, paths).data)
  assert len(pairs['train']) == len(CLASSIFY_ROWS)
  assert f'{paths["train"]}:1: read as a header' in capsys.readouterr().out
  # Told there is none, the same line is data (a class named 'label').
  pairs = labelled.load_splits(_config(classify, paths, header='no').data)
  assert pairs['train'][0] == ('text', 'label')
  # A column name that recurs as a label is a class, not a header.
  rows = ['label\tx', 'label\ty', 'other\tz']
  pairs = labelled.load_splits(_config(
      classify, _files(tmp_path, rows, 'lf', 'recurring')).data)
  assert len(pairs['train']) == 3


TAG_LINES = ['-DOCSTART- -X- O', '', 'Müller B-PER', '東京 B-LOC',
             'a\xa0b O', '🙂 O', '', 'New B-LOC', 'York I-LOC']


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_conll_is_read_exactly(tmp_path, variant):
  paths = _files(tmp_path, TAG_LINES, variant)
  splits = tagged.load_splits(_config(tag, paths, column='1').data)
  assert splits['train'] == [
      (['Müller', '東京', 'a\xa0b', '🙂'], ['B-PER', 'B-LOC', 'O', 'O'], []),
      (['New', 'York'], ['B-LOC', 'I-LOC'], [])]


PAIRS = ['Go.\tVa !', f'{WORLD}\tLe café 東京 🙂', 'Hi.\tSalut.']


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_seq2seq_pairs_are_read_exactly(tmp_path, variant):
  paths = _files(tmp_path, PAIRS, variant)
  splits = paired.load_splits(_config(seq2seq, paths).data)
  assert [(e['source'], e['target']) for e in splits['train']] == [
      tuple(p.split('\t')) for p in PAIRS]


def test_prediction_fields_round_trip_tabs_newlines_and_backslashes():
  for text in ['plain', 'a\tb', 'two\nlines', 'back\\slash\\t', '\r\n\t\\',
               WORLD]:
    escaped = readers.escape_field(text)
    assert '\t' not in escaped and '\n' not in escaped
    assert readers.unescape_field(escaped) == text


# ----------------------------------------------------------------------------
# Or one line naming the file and line, exit 2, nothing written.


def _write(tmp_path, name, text):
  path = tmp_path / name
  path.write_bytes(text if isinstance(text, bytes) else text.encode('utf-8'))
  return str(path)


def _folder(path):
  path.mkdir()
  return str(path)


# case -> tmp_path -> (launcher arguments, culprit)
BAD_FILES = {
    'classify: a tab inside the text': lambda tmp: (
        ['--experiment=classify', '--config.data.train=' + _write(
            tmp, 'tab.tsv', BOM + 'pos\tgood\r\nneg\tso\tbad\r\n')], ':2:'),
    'classify: no tab': lambda tmp: (
        ['--experiment=classify', '--config.data.train=' + _write(
            tmp, 'none.tsv', 'pos\tgood\nneg bad\n')], ':2: expected 2'),
    'classify: an empty label': lambda tmp: (
        ['--experiment=classify', '--config.data.train=' + _write(
            tmp, 'empty.tsv', 'pos\tgood\n\tbad\n')], ':2: the label field'),
    'seq2seq: three fields': lambda tmp: (
        ['--experiment=seq2seq', '--config.data.train=' + _write(
            tmp, 'three.tsv', 'a\tb\nc\td\te\n')], ':2: expected 2'),
    'seq2seq: CR line endings, one field': lambda tmp: (
        ['--experiment=seq2seq', '--config.data.train=' + _write(
            tmp, 'cr.tsv', 'a\tb\rc d\r')], ':2: expected 2'),
    'tag: a tab splitting a word': lambda tmp: (
        ['--experiment=tag', '--config.data.column=1',
         '--config.data.train=' + _write(
             tmp, 'split.conll', 'New B-LOC\nYo\trk I-LOC\n')], ':2:'),
    'tag: conllu with nine fields': lambda tmp: (
        ['--experiment=tag', '--config.data.format=conllu',
         '--config.data.column=upos', '--config.data.train=' + _write(
             tmp, 'nine.conllu', BOM + '# c\r\n' + '\t'.join('123456789')
             + '\r\n')], ':2:'),
    'lm: a NUL byte on line 2': lambda tmp: (
        ['--experiment=lm', '--config.data.train=' + _write(
            tmp, 'nul.txt', 'ok\nfi\x00ne\n')], ':2: control character U+0000'),
    'lm: a directory': lambda tmp: (
        ['--experiment=lm', '--config.data.train=' + _folder(tmp / 'texts')],
        ': is a directory'),
    'tag: prose on one line': lambda tmp: (
        ['--experiment=tag', '--config.data.column=1',
         '--config.data.train=' + _write(
             tmp, 'prose.conll', 'a few words ' * 100 + '\n')],
        ':1: 300 fields'),
    'lm: not UTF-8 on line 3': lambda tmp: (
        ['--experiment=lm', '--config.data.train=' + _write(
            tmp, 'latin1.txt', b'ok\r\nfine\r\ncaf\xe9\r\n')], ':3:'),
}


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_a_malformed_own_file_is_one_line_naming_file_and_line(case,
                                                               tmp_path):
  args, culprit = BAD_FILES[case](tmp_path)
  path = next(a for a in args if '.data.train=' in a).split('=', 1)[1]
  workdir = tmp_path / 'run'
  result = run_launcher(*args, '--config.data.name=files',
                        f'--workdir={workdir}')
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f'error: {path}{culprit}'), (
      result.stderr)
  assert not workdir.exists()
