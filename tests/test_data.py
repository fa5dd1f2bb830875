"""Vocab, tokenisation, LM streams and the TFDS builders."""

import os
import shutil

import numpy as np
import pytest

from conftest import MIRROR, requires_raw
from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError


def test_vocab_min_freq_unk_and_roundtrip(tmp_path):
  vocab = vocab_lib.Vocab.build('a b a c a b d'.split(), min_freq=2)
  assert vocab.itos == ['<unk>', 'a', 'b']
  assert vocab.encode(['a', 'c', 'b']).tolist() == [1, 0, 2]
  vocab.save(tmp_path / 'vocab.json')
  assert vocab_lib.Vocab.load(tmp_path / 'vocab.json').itos == vocab.itos


def test_tokenize_char_d2l_and_word_eos():
  assert pipelines.tokenize(['The Time-Machine!', 'x'], 'char',
                            preprocess='d2l') == list('the time machine x')
  assert pipelines.tokenize([' a b ', '', 'c'], 'word') == [
      'a', 'b', '<eos>', 'c', '<eos>']


def test_sequential_batches_continue_each_row():
  ids = np.arange(1000)
  stream = pipelines.LMStream(ids, batch_size=4, num_steps=7, seed=3)
  b0, b1 = stream.batch(2, 0), stream.batch(2, 1)
  np.testing.assert_array_equal(b1['inputs'][:, 0], b0['inputs'][:, -1] + 1)
  np.testing.assert_array_equal(b0['targets'], b0['inputs'] + 1)
  # Deterministic in (epoch, index); the offset moves between epochs.
  np.testing.assert_array_equal(stream.batch(2, 1)['inputs'], b1['inputs'])
  offsets = {int(stream.batch(e, 0)['inputs'][0, 0]) for e in range(20)}
  assert len(offsets) > 1 and max(offsets) < 7


def test_random_partition_covers_disjoint_pieces():
  stream = pipelines.LMStream(np.arange(1000), batch_size=4, num_steps=10,
                              partition='random', seed=0)
  starts = np.concatenate([stream.batch(0, i)['inputs'][:, 0]
                           for i in range(stream.steps_per_epoch)])
  assert len(set(starts.tolist())) == len(starts)
  assert len(set((starts % 10).tolist())) == 1  # one offset per epoch


def test_eval_batches_predict_every_target_once_and_continue_each_row():
  ids = np.arange(103)
  batches = list(pipelines.lm_eval_batches(ids, batch_size=4, num_steps=7))
  scored = []
  for b in batches:
    mask = b.get('mask', np.ones(b['targets'].shape))
    np.testing.assert_array_equal(b['targets'][mask > 0],
                                  b['inputs'][mask > 0] + 1)
    scored.extend(b['targets'][mask > 0].tolist())
  assert sorted(scored) == list(range(1, 103))  # all 102 targets, once
  # Each row reads on where it stopped in the batch before (the state
  # carries over), the remainder continuing the last row.
  rows = np.concatenate([b['inputs'] for b in batches[:-1]], axis=1)
  np.testing.assert_array_equal(rows[:, 0], [0, 25, 50, 75])
  np.testing.assert_array_equal(batches[-1]['inputs'][-1], [100, 101])
  assert rows[-1, -1] == 99


def test_too_little_data_is_an_input_error():
  with pytest.raises(InputError, match='too few'):
    pipelines.LMStream(np.arange(50), batch_size=8, num_steps=10)


@requires_raw('ptb/ptb.train.txt')
def test_ptb_builder_matches_published_counts():
  lines = builders.load_lines('ptb')
  counts = {s: len(pipelines.tokenize(v, 'word')) for s, v in lines.items()}
  assert counts == {'train': 929589, 'valid': 73760, 'test': 82430}


@requires_raw('tinyshakespeare/input.txt')
def test_tinyshakespeare_split_is_tfds_90_5_5():
  lines = builders.load_lines('tinyshakespeare')
  sizes = {s: len('\n'.join(v)) for s, v in lines.items()}
  assert sizes == {'train': 1003854, 'valid': 55770, 'test': 55770}


@requires_raw('timemachine/timemachine.txt')
def test_checksum_mismatch_and_missing_file_are_input_errors(tmp_path,
                                                             monkeypatch):
  mirror = tmp_path / 'mirror'
  (mirror / 'timemachine').mkdir(parents=True)
  monkeypatch.setenv('RNN_JAX_RAW_DATA', str(mirror))
  monkeypatch.setenv('RNN_JAX_DATA_DIR', str(tmp_path / 'prepared'))
  with pytest.raises(InputError, match='missing raw data file'):
    builders.load_lines('timemachine')
  corrupt = mirror / 'timemachine' / 'timemachine.txt'
  shutil.copy(os.path.join(MIRROR, 'timemachine', 'timemachine.txt'), corrupt)
  with open(corrupt, 'a') as f:
    f.write('extra')
  with pytest.raises(InputError, match='checksum mismatch'):
    builders.load_lines('timemachine')
  assert not (tmp_path / 'prepared' / 'timemachine' / '1.0.0').exists()


def test_failed_download_is_an_input_error(tmp_path, monkeypatch):
  monkeypatch.delenv('RNN_JAX_RAW_DATA', raising=False)
  monkeypatch.setenv('RNN_JAX_DATA_DIR', str(tmp_path))
  raw = builders.RawFile('x/y.txt', 'http://host.invalid/y.txt', '0' * 64)
  with pytest.raises(InputError, match='could not download http://host.invalid'):
    raw.resolve()
  assert not os.listdir(tmp_path / 'downloads' / 'x')
