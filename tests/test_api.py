"""The Python API (rnn_jax.train / evaluate / load) against the launcher,
and the README's "From Python" section (and docs/usage.md's export
snippet), executed as written."""

import json
import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

import rnn_jax
from rnn_jax import experiments
from conftest import REPO, call_exported, read_summary, run_launcher
from conftest import tiny_args, tiny_data


def _same(a, b):
  """Two summaries equal but for timings."""
  drop = lambda s: {k: v for k, v in s.items()
                    if 'per_sec' not in k and 'seconds' not in k}
  assert drop(a) == drop(b)


def _overrides(experiment, folder, **extra):
  """tiny_args as the API's {field: text} overrides."""
  return dict(arg[len('--config.'):].split('=', 1)
              for arg in tiny_args(experiment, folder, **extra))


def test_train_load_predict_generate_and_stream_equal_the_launcher(tmp_path):
  tiny_data(tmp_path / 'data')
  fields = _overrides('lm', tmp_path / 'data', train__max_steps=40)
  # The API changes no JAX setting (launch.py switches the dispatch).
  jax.config.update('jax_cpu_enable_async_dispatch', True)
  summary = rnn_jax.train('lm', str(tmp_path / 'api'), fields)
  assert jax.config.read('jax_cpu_enable_async_dispatch')
  launched = run_launcher('--experiment=lm', f'--workdir={tmp_path}/cli',
                          *(f'--config.{k}={v}' for k, v in fields.items()))
  assert launched.returncode == 0, launched.stderr
  _same(summary, read_summary(tmp_path / 'cli'))
  _same(summary, read_summary(tmp_path / 'api'))

  model = rnn_jax.load(str(tmp_path / 'api'))
  prefixes = ['the quick', 'pack my']
  cli = run_launcher('--experiment=lm', '--mode=predict',
                     f'--workdir={tmp_path}/api', stdin='\n'.join(prefixes))
  assert cli.returncode == 0, cli.stderr
  assert [r['text'] for r in model.predict(prefixes)] == cli.stdout.splitlines()
  assert model.generate('the quick') == cli.stdout.splitlines()[0]
  assert model.generate('the quick', 3) == cli.stdout.splitlines()[0][:12]

  # Sampling: arguments override generate.*, as load's overrides do; each
  # call without a seed draws anew, one with a seed repeats.
  drawn = {model.generate('the', 30, temperature=2.0) for _ in range(3)}
  assert len(drawn) > 1
  seeded = model.generate('the', 30, temperature=2.0, top_k=5, seed=7)
  assert seeded == model.generate('the', 30, temperature=2.0, top_k=5, seed=7)
  hot = rnn_jax.load(str(tmp_path / 'api'), overrides={
      'generate.temperature': 2.0, 'generate.top_k': 5})
  assert hot.generate('the', 30, seed=7) == seeded
  with pytest.raises(rnn_jax.InputError, match='generate.top_k=5: decoding '
                     'is greedy'):
    model.generate('the', top_k=5)

  # Streaming a text in two pieces: the next token's distribution of the
  # text read at once.
  whole = model.stream('the quick brown fo')
  model.reset()
  model.stream('the quick ')
  pieces = model.stream('brown fo')
  np.testing.assert_allclose(pieces, whole, atol=1e-6)
  assert whole.shape == (len(model.vocab),)
  np.testing.assert_allclose(whole.sum(), 1, rtol=1e-5)
  # Without the reset the state goes on: another distribution.
  assert not np.allclose(model.stream('brown fo'), whole, atol=1e-3)

  # --mode=predict with predict.stateful: each line continues the state the
  # previous one left, so the second line's continuation is the one of both
  # lines read at once.
  stream = run_launcher('--experiment=lm', '--mode=predict',
                        f'--workdir={tmp_path}/api',
                        '--config.predict.stateful=true',
                        stdin='the qu\nick br\n')
  assert stream.returncode == 0, stream.stderr
  first, second = stream.stdout.splitlines()
  whole = model.generate('the quick br')
  assert first == model.generate('the qu')
  assert second == 'ick br' + whole[len('the quick br'):]

  evaluated = rnn_jax.evaluate(str(tmp_path / 'api'))
  assert evaluated['test/perplexity'] == summary['test/perplexity']


def test_api_errors_are_input_errors(tmp_path):
  tiny_data(tmp_path / 'data')
  with pytest.raises(rnn_jax.InputError, match='unknown preset'):
    rnn_jax.train('no_such_preset', str(tmp_path / 'w'))
  with pytest.raises(rnn_jax.InputError, match='train.max_steps=2.5: '
                     'expected a value of type int'):
    rnn_jax.train('classify', str(tmp_path / 'w'), {'train.max_steps': 2.5})
  with pytest.raises(rnn_jax.InputError, match='unknown config field'):
    rnn_jax.train('classify', str(tmp_path / 'w'), {'train.max_stepz': 2})
  fields = _overrides('classify', tmp_path / 'data')
  rnn_jax.train('classify', str(tmp_path / 'c'), fields)
  model = rnn_jax.load(str(tmp_path / 'c'))
  record, = model.predict(['word1 other2'])
  assert record['label'] in ('a', 'b') and set(record['probabilities']) == {
      'a', 'b'}
  assert record['probability'] == max(record['probabilities'].values())
  np.testing.assert_allclose(sum(record['probabilities'].values()), 1,
                             rtol=1e-5)
  with pytest.raises(rnn_jax.InputError,
                     match='experiment classify does not generate'):
    model.generate('word1')
  with pytest.raises(rnn_jax.InputError, match='an empty input line'):
    model.predict(['word1', ' '])
  with pytest.raises(rnn_jax.InputError, match='nothing trained there'):
    rnn_jax.load(str(tmp_path / 'nowhere'))
  with pytest.raises(rnn_jax.InputError,
                     match='experiment memory does not export'):
    experiments.get_experiment('memory').exports(None, None)


def test_a_researchers_own_experiments_folder_does_not_clash(tmp_path):
  """The experiment modules install as rnn_jax.experiments: a user's own
  `experiments` package, first on sys.path, stays theirs, and the presets
  still load through rnn_jax (with a top-level `experiments`, one of the two
  shadowed the other)."""
  own = tmp_path / 'experiments'
  own.mkdir()
  (own / '__init__.py').write_text('MINE = True\n')
  (own / 'lm.py').write_text('raise ImportError("the user\'s lm")\n')
  code = ('import experiments, rnn_jax\n'
          'assert experiments.MINE\n'
          'from rnn_jax.experiments import lm\n'
          'print(rnn_jax.get_config("ptb_small_reg").model.weight_dropout,'
          ' lm.LanguageModelling.NAME)\n')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ['0.3', 'lm']


def _readme_blocks(title, path='README.md'):
  with open(os.path.join(REPO, path), encoding='utf-8') as f:
    text = f.read()
  section = text.split(f'## {title}\n', 1)[1].split('\n## ', 1)[0]
  return re.findall(r'```python\n(.*?)```', section, re.S)


def test_the_readme_from_python_section_runs_as_written(tmp_path,
                                                        monkeypatch):
  blocks = _readme_blocks('From Python')
  assert len(blocks) == 2
  monkeypatch.chdir(tmp_path)
  scope = {}
  for block in blocks:
    exec(compile(block, 'README.md', 'exec'), scope)  # pylint: disable=exec-used
  assert scope['summary']['steps'] == 30
  assert read_summary(tmp_path / 'workdirs/api_demo')['steps'] == 60
  # docs/usage.md's Export snippet, on that run's export.
  result = run_launcher('--mode=export', '--workdir=workdirs/api_demo')
  assert result.returncode == 0, result.stderr
  block, = _readme_blocks('Export', 'docs/usage.md')
  block = block.replace('workdirs/timemachine_rnn', 'workdirs/api_demo')
  scope = {}
  exec(compile(block, 'README.md', 'exec'), scope)  # pylint: disable=exec-used
  assert scope['out']['probabilities'].shape == (1, 28)


def test_exported_functions_run_without_the_project(tmp_path):
  """--mode=export: the language model's step and predict (state in, state
  out) and the classifier's predict, deserialised in a process without
  rnn_jax, give the model's outputs and states."""
  tiny_data(tmp_path / 'data')
  lm_dir, classify_dir = tmp_path / 'lm', tmp_path / 'classify'
  rnn_jax.train('lm', str(lm_dir), _overrides(
      'lm', tmp_path / 'data', model__cell='lstm', model__num_layers=2,
      model__embed_size=8))
  rnn_jax.train('classify', str(classify_dir),
                _overrides('classify', tmp_path / 'data'))
  for experiment, workdir in (('lm', lm_dir), ('classify', classify_dir)):
    result = run_launcher(f'--experiment={experiment}', '--mode=export',
                          f'--workdir={workdir}')
    assert result.returncode == 0, result.stderr
    with open(workdir / 'export' / 'signature.json') as f:
      assert json.load(f)['experiment'] == experiment
    assert (workdir / 'export' / 'vocabs' / 'vocab.json').is_file()

  model = rnn_jax.load(str(lm_dir))
  ids = np.asarray([model.task.vocab.encode(list('the qu')),
                    model.task.vocab.encode(list('pack m'))], np.int32)
  carry = model.task.model.initial_carry(2)
  logits, after = model.task.model.apply({'params': model.params}, ids, carry)
  # From the state after the first read: the state goes in and comes out.
  logits2, after2 = model.task.model.apply({'params': model.params}, ids,
                                           after)
  state = [np.asarray(x) for x in jax.tree.leaves(after)]
  assert len(state) == 4                       # 2 layers x (c, h)
  inputs = {'step/0': ids, 'predict/0': ids}
  for i, x in enumerate(state, 1):
    inputs[f'step/{i}'] = inputs[f'predict/{i}'] = x
  got = call_exported(tmp_path, lm_dir, inputs)
  np.testing.assert_allclose(got['step/logits'], logits2, atol=1e-5)
  np.testing.assert_allclose(got['predict/probabilities'],
                             jax.nn.softmax(logits2[:, -1]), atol=1e-6)
  names = ['layer0_c', 'layer0_h', 'layer1_c', 'layer1_h']
  for name, x in zip(names, jax.tree.leaves(after2), strict=True):
    np.testing.assert_allclose(got[f'step/{name}'], x, atol=1e-5)
    np.testing.assert_allclose(got[f'predict/{name}'], x, atol=1e-5)
  assert not np.allclose(logits, logits2, atol=1e-3)   # the state mattered

  model = rnn_jax.load(str(classify_dir))
  vocab = model.task.vocabs['vocab']
  tokens = np.asarray([[vocab.stoi.get(w, vocab.unk_id) for w in
                        ('word1', 'other2', 'word3')],
                       [vocab.stoi.get('word4', 0), vocab.stoi['<pad>'],
                        vocab.stoi['<pad>']]], np.int32)
  lengths = np.asarray([3, 1], np.int32)
  want = model.task.probabilities(model.params, {'tokens': tokens,
                                                 'lengths': lengths})
  got = call_exported(tmp_path, classify_dir, {'predict/0': tokens,
                                                'predict/1': lengths})
  np.testing.assert_allclose(got['predict/probabilities'], want, atol=1e-6)
