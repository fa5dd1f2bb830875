"""End to end through launch.py: learning, non-finite steps, help, every
preset on the real data, bad input."""

import os
import shutil

import jax
import numpy as np
import pytest

from conftest import launch, read_summary, requires_raw, run_launcher
from conftest import tiny_args, tiny_data
from rnn_jax import configlib
from rnn_jax import experiments
from rnn_jax import records
from rnn_jax import workdir as workdir_lib
from rnn_jax.errors import InputError

TM = 'timemachine/timemachine.txt'



@requires_raw(TM)
def test_main_job_config_learns_on_the_time_machine(tmp_path):
  """The default RNN, 300 steps: far better than the uniform guess (28)."""
  result = run_launcher('--experiment=lm', f'--workdir={tmp_path}',
                        '--config.train.max_steps=300')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path)
  assert summary['experiment'] == 'lm'
  assert summary['preset'] == 'timemachine_rnn'
  assert summary['valid/perplexity'] < 10.0
  for key in ('train/perplexity', 'test/perplexity', 'test/bits_per_token',
              'train/tokens_per_sec', 'wall_seconds'):
    assert summary[key] > 0, key
  assert 'generated: time traveller' in result.stdout
  for name in ('config.json', 'vocabs/vocab.json', 'metrics.jsonl',
               'samples.txt', 'run_info.json',
               'plots/perplexity.png', 'plots/grad_norm.png'):
    assert os.path.exists(tmp_path / name), name
  events = list((tmp_path / 'tensorboard').glob('events.out.tfevents.*'))
  assert events and all(e.stat().st_size > 0 for e in events)


@requires_raw(TM)
def test_nonfinite_updates_are_skipped_counted_and_stop_the_run(tmp_path):
  result = run_launcher('--experiment=lm', f'--workdir={tmp_path}',
                        '--config.model.hidden_size=8',
                        '--config.train.learning_rate=inf',
                        '--config.train.clip_norm=0',
                        '--config.train.max_steps=60',
                        '--config.train.log_every_steps=5',
                        '--config.train.nonfinite_patience=10')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path)
  assert summary['stopped'] == 'nonfinite'
  assert summary['nonfinite_steps'] == summary['steps'] == 10
  params = workdir_lib.load_params(str(tmp_path))
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))
  assert '10 updates skipped' in result.stdout


def test_help_is_short_and_helpfull_lists_presets_and_every_field():
  short = run_launcher('--help')
  assert short.returncode == 0 and len(short.stdout.splitlines()) <= 60
  assert all(f'  {name} ' in short.stdout for name in experiments.EXPERIMENTS)
  assert '--helpfull' in short.stdout and 'ptb_small' not in short.stdout
  result = run_launcher('--helpfull')
  assert result.returncode == 0
  lines = result.stdout.splitlines()
  for name in experiments.preset_names():  # its whole first paragraph
    doc = ' '.join(experiments.get_preset(name).__doc__.split('\n\n')[0]
                   .split())
    assert any(l.startswith(f'  {name} ') and l.endswith(doc) for l in lines)
  for name in experiments.EXPERIMENTS:   # every field, with what it means
    declared = experiments.get_experiment(name).FIELDS
    assert configlib.flatten(experiments.get_experiment(name).get_config()
                             ).keys() == declared.keys()
    for line in configlib.describe(declared):
      assert line in lines
  line, = [l for l in lines if "--config.model.cell='rnn'" in l]
  assert 'the recurrence' in line and 'one of rnn, irnn, gru, lstm' in line
  assert any('--config.train.ema_decay=0.999' in l and l.endswith(
      'in [0, 1)') for l in lines)
  # One experiment's presets and fields on request.
  result = run_launcher('--help', '--experiment=tag')
  assert result.returncode == 0
  assert "--config.data.column='ner'" in result.stdout
  assert 'conll2003_ner_bilstm_crf' in result.stdout
  assert '--config.generate.prefix' not in result.stdout
  assert 'ptb_small' not in result.stdout


def _outside(f: configlib.Field):
  """A value of the field's type that its declaration rules out."""
  if f.choices:
    return 'no-such-choice'
  kind = type(f.default)
  step = 1 if kind is int else 0.5
  if f.at_least is not None:
    return kind(f.at_least - step)
  if f.above is not None:
    return kind(f.above)
  if f.at_most is not None:
    return kind(f.at_most + step)
  return kind(f.below)


@pytest.mark.parametrize('name', experiments.EXPERIMENTS)
def test_runs_are_checked_against_the_declarations_help_prints(name):
  """Each declared bound or choice is the one a run enforces: a value just
  outside it is refused, naming the field; every preset's values are
  inside."""
  module = experiments.get_experiment(name)
  checked = 0
  for field, f in module.FIELDS.items():
    if not f.allowed():
      continue
    with pytest.raises(InputError, match=f'config field {field}'):
      experiments.check_run(name, None, {field: _outside(f)})
    checked += 1
  assert checked >= 5
  for preset_name in experiments.preset_names():
    if experiments.get_preset(preset_name).EXPERIMENT == name:
      configlib.check(experiments.get_preset(preset_name).get_config(),
                      module.FIELDS)


def _file(path, data: bytes):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  return path


def _corrupt_mirror(tmp, relpath='timemachine/timemachine.txt'):
  _file(tmp / 'mirror' / relpath, b'not the book')
  return {'RNN_JAX_RAW_DATA': str(tmp / 'mirror'),
          'RNN_JAX_DATA_DIR': str(tmp / 'prepared')}


def _own_text(path):
  return ['--experiment=lm', '--config.data.name=files',
          f'--config.data.train={path}']


# case -> tmp_path -> (arguments, environment, what the message must name)
BAD_INPUTS = {
    'unknown experiment': lambda tmp: (['--experiment=nope'], None, 'nope'),
    'unknown preset': lambda tmp: (['--preset=nope'], None, 'nope'),
    'preset of another experiment': lambda tmp: (
        ['--experiment=nope', '--preset=ptb_small'], None, 'ptb_small'),
    'unknown field': lambda tmp: (
        ['--experiment=lm', '--config.train.lr=3'], None, 'train.lr'),
    'lm: own file without data.name=files': lambda tmp: (
        ['--experiment=lm', '--config.data.train=' + str(_file(
            tmp / 'mine.txt', b'my own text\n'))], None, 'data.name=files'),
    'lm: normalisation of a built-in dataset': lambda tmp: (
        ['--experiment=lm', '--config.data.normalize=NFC'], None,
        'data.normalize'),
    'seq2seq: top_k with greedy decoding': lambda tmp: (
        ['--experiment=seq2seq', '--config.decode.method=greedy',
         '--config.decode.top_k=5'], None, 'decode.top_k=5'),
    'lm: tied readout with one-hot input': lambda tmp: (
        ['--experiment=lm', '--config.model.tie_weights=true',
         '--config.model.embed_size=0'], None, 'model.tie_weights'),
    'lm: select_by a metric it does not report': lambda tmp: (
        ['--experiment=lm', '--config.train.select_by=valid/accuracy'], None,
        'train.select_by'),
    'wrong type': lambda tmp: (
        ['--experiment=lm', '--config.train.num_epochs=many'], None,
        'train.num_epochs'),
    'bad choice': lambda tmp: (
        ['--experiment=lm', '--config.model.cell=transformer'], None,
        'model.cell'),
    'unknown flag': lambda tmp: (['--experiment=lm', '--epochs=3'], None,
                                 'epochs'),
    'zero hidden units': lambda tmp: (
        ['--experiment=lm', '--config.model.hidden_size=0'], None,
        'model.hidden_size'),
    'a batch larger than the corpus': lambda tmp: (
        ['--experiment=lm', '--config.data.batch_size=10000000'], None,
        'batch_size=10000000'),
    'missing mirror file': lambda tmp: (
        ['--experiment=lm'], {'RNN_JAX_RAW_DATA': str(tmp / 'void'),
                              'RNN_JAX_DATA_DIR': str(tmp / 'prepared')},
        'timemachine.txt'),
    'checksum mismatch': lambda tmp: (
        ['--experiment=lm'], _corrupt_mirror(tmp), 'checksum'),
    'empty text file': lambda tmp: (
        _own_text(_file(tmp / 'empty.txt', b'\n  \n')), None, 'empty.txt'),
    'missing text file': lambda tmp: (
        _own_text(tmp / 'absent.txt'), None, 'absent.txt'),
    'not utf-8': lambda tmp: (
        _own_text(_file(tmp / 'latin1.txt', 'caf\xe9\n'.encode('latin-1'))),
        None, 'latin1.txt:1'),
    'predict without a run': lambda tmp: (
        ['--experiment=lm', '--mode=predict'], None, 'run'),
    'classify: bad readout': lambda tmp: (
        ['--experiment=classify', '--config.model.readout=cls'], None,
        'model.readout'),
    'classify: fold out of range': lambda tmp: (
        ['--experiment=classify', '--config.data.cv_folds=3',
         '--config.data.fold=3'], None, 'data.fold'),
    'classify: missing mirror file': lambda tmp: (
        ['--preset=trec_bilstm'], {'RNN_JAX_RAW_DATA': str(tmp / 'void'),
                                   'RNN_JAX_DATA_DIR': str(tmp / 'prepared')},
        'train_5500.label'),
    'seq2seq: bad attention': lambda tmp: (
        ['--experiment=seq2seq', '--config.model.attention=dot'], None,
        'model.attention'),
    'seq2seq: teacher forcing above 1': lambda tmp: (
        ['--experiment=seq2seq', '--config.train.teacher_forcing=1.5'], None,
        'train.teacher_forcing'),
    'seq2seq: missing mirror file': lambda tmp: (
        ['--preset=scan_simple_lstm'],
        {'RNN_JAX_RAW_DATA': str(tmp / 'void'),
         'RNN_JAX_DATA_DIR': str(tmp / 'prepared')},
        'tasks_train_simple.txt.gz'),
    'seq2seq: mirror .gz not gzip': lambda tmp: (
        ['--preset=scan_simple_lstm'],
        _corrupt_mirror(tmp, 'scan/simple_split/tasks_train_simple.txt.gz'),
        'tasks_train_simple.txt.gz'),
    'seq2seq: babi task out of range': lambda tmp: (
        ['--preset=babi_lstm', '--config.data.task=21'], None, 'data.task'),
    'tag: column the dataset lacks': lambda tmp: (
        ['--experiment=tag', '--config.data.column=chunks'], None, "'chunks'"),
    'tag: malformed conll line': lambda tmp: (
        ['--experiment=tag', '--config.data.name=files',
         '--config.data.column=1', '--config.data.train=' + str(_file(
             tmp / 'bad.conll', b'The B-NP\ncat I-NP\n\nsat\n'))],
        None, 'bad.conll:4'),
    'tag: conllu line without ten fields': lambda tmp: (
        ['--experiment=tag', '--config.data.name=files',
         '--config.data.format=conllu', '--config.data.column=upos',
         '--config.data.train=' + str(_file(
             tmp / 'bad.conllu', b'# c\n1\tThe\tthe\tDET\n'))],
        None, 'bad.conllu:2'),
    'tag: column number past the files': lambda tmp: (
        ['--experiment=tag', '--config.data.name=files',
         '--config.data.column=5', '--config.data.train=' + str(_file(
             tmp / 'two.conll', b'The B-NP\ncat I-NP\n'))],
        None, 'data.column'),
    'benchmark: unknown shape': lambda tmp: (
        ['--benchmark=standard', '--config.benchmark.shapes=char_rnn_h9'],
        None, 'char_rnn_h9'),
    'benchmark: has no eval': lambda tmp: (
        ['--benchmark=standard', '--mode=eval'], None, '--mode=eval'),
    'benchmark: an unknown group': lambda tmp: (
        ['--benchmark=fast'], None, '--benchmark'),
    'the experiment set as a field': lambda tmp: (
        ['--experiment=lm', '--config.experiment=tag'], None,
        '--config.experiment'),
    'an experiment file that is not there': lambda tmp: (
        ['--experiment=' + str(tmp / 'nowhere.py')], None, 'nowhere.py'),
    'an experiment file defining no experiment': lambda tmp: (
        ['--experiment=' + str(_file(tmp / 'empty.py', b'X = 1\n'))], None,
        'exactly one subclass'),
    'multi-process: a flag missing': lambda tmp: (
        ['--experiment=lm', '--coordinator_address=localhost:1234',
         '--num_processes=2'], None, '--process_id'),
    'multi-process: id out of range': lambda tmp: (
        ['--experiment=lm', '--coordinator_address=localhost:1234',
         '--num_processes=2', '--process_id=2'], None, '--process_id=2'),
    'classify: test label unseen in train': lambda tmp: (
        ['--experiment=classify', '--config.data.name=files',
         '--config.data.train=' + str(_file(tmp / 'tr.tsv', b'a\tx y\nb\ty z\n')),
         '--config.data.valid=' + str(_file(tmp / 'va.tsv', b'a\tx\n')),
         '--config.data.test=' + str(_file(tmp / 'te.tsv', b'c\tz\n'))],
        None, "'c'"),
}


def _assert_one_line_exit_2(result, culprit):
  assert result.returncode == 2, (result.stdout, result.stderr)
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
  assert culprit in lines[0]
  assert 'Traceback' not in result.stdout + result.stderr


@pytest.mark.parametrize('case', sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path):
  args, env, culprit = BAD_INPUTS[case](tmp_path)
  workdir = tmp_path / 'run'
  _assert_one_line_exit_2(
      run_launcher(*args, f'--workdir={workdir}', env=env), culprit)
  assert not workdir.exists()


def test_the_command_line_prints_bad_input_as_one_line_and_exits_2(tmp_path):
  """The process boundary itself: exit status and stderr of launch.py."""
  result = launch('--experiment=lm', '--config.train.lr=3',
                  f'--workdir={tmp_path / "run"}')
  _assert_one_line_exit_2(result, 'train.lr')
  assert result.stderr.startswith("error: unknown config field 'train.lr'")
  assert not (tmp_path / 'run').exists()


def _tiny_lm(data):
  return tiny_args('lm', tiny_data(data), train__max_steps=20,
                   data__preprocess='none')


@pytest.fixture(scope='module')
def trained_lm(tmp_path_factory):
  """A tiny character lm trained for 20 steps (its checkpoint: step 20) on
  raw lower-case text."""
  folder = tmp_path_factory.mktemp('trained')
  result = run_launcher('--experiment=lm', *_tiny_lm(folder / 'data'),
                        f'--workdir={folder / "run"}')
  assert result.returncode == 0, result.stderr
  return folder / 'run'


def _spoil(path, data=b'{not json'):
  for name in ([path] if path.is_file() else
               [p for p in path.rglob('*') if p.is_file()]):
    name.write_bytes(data)


# case -> (a trained lm workdir to spoil, tmp_path) -> (arguments, stdin,
# what the message must name); the arguments follow --workdir=<the copy>.
WORKDIR_BAD_INPUTS = {
    'resume with another hidden size': lambda w, tmp: (
        ['--config.model.hidden_size=16'], '', 'model.hidden_size=8'),
    'train with --checkpoint': lambda w, tmp: (
        ['--checkpoint=20'], '', '--checkpoint'),
    'rerun with another seed': lambda w, tmp: (
        ['--config.seed=1'], '', 'seed=0'),
    'eval where its folder would be a file': lambda w, tmp: (
        _file(w / 'eval_20', b'x'), ['--mode=eval'], '', 'eval_20')[1:],
    'export where its folder would be a file': lambda w, tmp: (
        _file(w / 'export.tmp', b'x'), ['--mode=export'], '',
        'export.tmp')[1:],
    'eval of a step never saved': lambda w, tmp: (
        ['--mode=eval', '--checkpoint=7'], '', '--checkpoint=7'),
    'eval with another model': lambda w, tmp: (
        ['--mode=eval', '--config.model.hidden_size=16'], '',
        'model.hidden_size'),
    'eval as another experiment': lambda w, tmp: (
        ['--mode=eval', '--experiment=tag'], '', '--experiment=lm run'),
    'eval without checkpoints': lambda w, tmp: (
        shutil.rmtree(w / 'checkpoints'), ['--mode=eval'], '',
        'no checkpoints')[1:],
    'eval of a corrupt checkpoint': lambda w, tmp: (
        _spoil(w / 'checkpoints' / '20'), ['--mode=eval'], '', 'step 20')[1:],
    'eval with a corrupt config.json': lambda w, tmp: (
        _spoil(w / 'config.json'), ['--mode=eval'], '', 'config.json')[1:],
    'predict without vocab.json': lambda w, tmp: (
        os.remove(w / 'vocabs' / 'vocab.json'), ['--mode=predict',
                                                 '--input=the'], '',
        'vocab.json')[1:],
    'predict a character never seen': lambda w, tmp: (
        ['--mode=predict', '--input=The quick'], '', "'T'"),
    'predict an empty line': lambda w, tmp: (
        ['--mode=predict'], 'the\n  \nquick\n', '<stdin>:2'),
    'predict from no input': lambda w, tmp: (['--mode=predict'], '', '<stdin>'),
    'predict from a missing file': lambda w, tmp: (
        ['--mode=predict', f'--input_file={tmp / "absent.txt"}'], '',
        'absent.txt'),
    'predict from a file not utf-8': lambda w, tmp: (
        ['--mode=predict', '--input_file=' + str(_file(
            tmp / 'latin1.txt', 'ok\ncaf\xe9\n'.encode('latin-1')))], '',
        'latin1.txt:2'),
    'predict with --input and --input_file': lambda w, tmp: (
        ['--mode=predict', '--input=the', f'--input_file={tmp}'], '',
        '--input_file'),
}


@pytest.mark.parametrize('case', sorted(WORKDIR_BAD_INPUTS))
def test_bad_input_on_a_workdir_changes_no_file_in_it(case, tmp_path,
                                                       trained_lm):
  workdir = tmp_path / 'run'
  shutil.copytree(trained_lm, workdir)
  args, stdin, culprit = WORKDIR_BAD_INPUTS[case](workdir, tmp_path)
  if not any(a.startswith('--mode') for a in args):  # the training command
    args = _tiny_lm(trained_lm.parent / 'data') + args
  before = {p: p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  _assert_one_line_exit_2(run_launcher('--experiment=lm',
                                       f'--workdir={workdir}', *args,
                                       stdin=stdin), culprit)
  assert {p: p.read_bytes() for p in workdir.rglob('*') if p.is_file()} == before


def test_a_rerun_on_changed_data_is_refused_and_the_run_still_predicts(
    tmp_path, trained_lm):
  """The train file rewritten in place (same path, other contents), or
  another experiment: the rerun is another run, refused before anything is
  written; the finished run still predicts. A workdir that cannot be made is one line too."""
  workdir = tmp_path / 'run'
  shutil.copytree(trained_lm, workdir)
  data = trained_lm.parent / 'data'
  args = _tiny_lm(data)
  before = {p: p.read_bytes() for p in workdir.rglob('*') if p.is_file()}
  (data / 'text.txt').write_text((data / 'text.txt').read_text() + 'more\n')
  try:
    _assert_one_line_exit_2(run_launcher('--experiment=lm', *args,
                                         f'--workdir={workdir}'), 'text.txt')
  finally:
    tiny_data(data)
  _assert_one_line_exit_2(run_launcher(
      '--experiment=classify', *tiny_args('classify', data),
      f'--workdir={workdir}'), "experiment='lm'")
  assert {p: p.read_bytes() for p in workdir.rglob('*') if p.is_file()} == before
  result = run_launcher('--mode=predict', f'--workdir={workdir}',
                        '--input=the')
  assert result.returncode == 0 and result.stdout.startswith('the'), result
  under_a_file = _file(tmp_path / 'a_file', b'x') / 'run'
  _assert_one_line_exit_2(run_launcher('--experiment=lm', *args,
                                       f'--workdir={under_a_file}'), 'a_file')


@pytest.mark.parametrize('with_valid_and_test', [False, True])
def test_own_text_files(tmp_path, with_valid_and_test):
  sentences = ['the quick brown fox jumps over the lazy dog',
               'pack my box with five dozen liquor jugs',
               'how vexingly quick daft zebras jump']
  text = '\n'.join(sentences[i % 3] for i in range(300)) + '\n'
  train = _file(tmp_path / 'train.txt', text.encode())
  args = _own_text(train) + ['--config.data.level=word',
                             '--config.data.batch_size=4',
                             '--config.data.num_steps=8',
                             '--config.data.eval_batch_size=2',
                             '--config.train.max_steps=150',
                             '--config.train.optimizer=adam',
                             '--config.train.learning_rate=0.003',
                             '--config.generate.prefix=the quick']
  if with_valid_and_test:
    args += [f'--config.data.valid={_file(tmp_path / "v.txt", text[:400].encode())}',
             f'--config.data.test={_file(tmp_path / "t.txt", text[:400].encode())}']
  result = run_launcher(*args, f'--workdir={tmp_path / "run"}')
  assert result.returncode == 0, result.stderr
  summary = read_summary(tmp_path / 'run')
  # 23 tokens, but the three sentences repeat in a fixed cycle: a model
  # that learned them is nearly certain of every next word. (At Adam 0.01
  # this tanh RNN of 256 is chaotic: valid perplexity after 150 steps was
  # 8.0 on two XLA threads and 4.1 on one; at 0.003 it is 1.05 on both.)
  assert summary['valid/perplexity'] < 3.0
  assert 'generated: the quick' in result.stdout
  assert summary['preset'] is None and summary['data'] == 'files'
  assert summary['data_files']['train'] == str(train)
  if with_valid_and_test:
    # Every target is scored: all the tokens (words and an <eos> per line)
    # but the first.
    valid = text[:400]
    tokens = len(valid.split()) + sum(1 for l in valid.split('\n') if l.strip())
    assert summary['valid/num_targets'] == tokens - 1


def test_word_level_own_text_generates_from_its_own_start(tmp_path):
  """The default prefix ('time traveller') is not in this text's words: the
  run says so and generates from the text's first words."""
  train = _file(tmp_path / 'train.txt',
                ('Alpha beta gamma.\nDelta epsilon.\n' * 60).encode())
  result = run_launcher(*_own_text(train), '--config.data.level=word',
                        '--config.data.batch_size=2',
                        '--config.data.num_steps=4',
                        '--config.data.eval_batch_size=1',
                        '--config.train.max_steps=2',
                        f'--workdir={tmp_path / "run"}')
  assert result.returncode == 0, result.stderr
  assert ("generate.prefix 'time traveller' is not in the vocabulary of "
          "files: generating from 'Alpha beta'") in result.stdout
  assert 'generated: Alpha beta' in result.stdout


def test_max_steps_stops_early_without_shortening_the_schedule(tmp_path):
  data = tiny_data(tmp_path / 'data')
  run = tmp_path / 'run'
  args = tiny_args('lm', data, train__max_steps=10,
                   train__log_every_steps=5, train__schedule='cosine')
  assert run_launcher('--experiment=lm', *args,
                      f'--workdir={run}').returncode == 0
  rates = {r['step']: r['train/learning_rate']
           for r in records.read_metrics(str(run)) if 'train/learning_rate' in r}
  # The cosine spans num_epochs (thousands of steps), not the 10 run here.
  assert rates[10] > 0.99
