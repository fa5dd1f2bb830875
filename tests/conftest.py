"""Shared test set-up: the raw-data mirror, a private prepared-data folder,
launch.py in a subprocess and the tiniest run of each experiment."""

import atexit
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from rnn_jax import host

# As launch.py does, before the first computation: the runs in this process
# reuse the memory their steps free.
host.keep_freed_memory()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # launch.py, for run_launcher
_DEFAULT_MIRROR = os.path.join(os.path.dirname(REPO), 'shared', 'data')

os.environ.setdefault('RNN_JAX_RAW_DATA', _DEFAULT_MIRROR)
# Most tests compile a tiny model and run it for a few steps, so compiling
# dominates: XLA's LLVM backend optimises less, and XLA:CPU emits its fusions
# the older way, which compiles in about half the time (the same
# computation, compiled faster; a one-step CoNLL-2000 preset run: 28 -> 23 s
# for the first, its train step's compilation 7.0 -> 3.5 s for the second).
# An XLA that does not know a flag aborts: they are tried first.
_FAST_COMPILE = ('--xla_backend_optimization_level=0',
                 '--xla_cpu_use_fusion_emitters=false')


def _xla_accepts(flag: str) -> bool:
  probe = 'import jax; jax.numpy.zeros(1).block_until_ready()'
  result = subprocess.run(
      [sys.executable, '-c', probe],
      env={**os.environ, 'XLA_FLAGS': flag, 'JAX_PLATFORMS': 'cpu'},
      capture_output=True, timeout=300)
  return result.returncode == 0


# One scratch folder per test session, made by the first process that loads
# this file (the xdist controller; its workers inherit the variable) and
# shared by the workers and the launch.py processes they start: the TFDS data
# prepared from the mirror (each dataset once, under a lock), and a
# persistent compilation cache, since most end-to-end tests run a tiny model
# more than once and compiling dominates such a run.
if 'RNN_JAX_TEST_SCRATCH' not in os.environ:
  os.environ['RNN_JAX_TEST_SCRATCH'] = tempfile.mkdtemp(prefix='rnn_jax_test_')
  atexit.register(shutil.rmtree, os.environ['RNN_JAX_TEST_SCRATCH'], True)
  fast = (_FAST_COMPILE if _xla_accepts(' '.join(_FAST_COMPILE))
          else [f for f in _FAST_COMPILE if _xla_accepts(f)])
  os.environ['XLA_FLAGS'] = ' '.join(filter(None, [os.environ.get('XLA_FLAGS'),
                                                   *fast]))
_SCRATCH = os.environ['RNN_JAX_TEST_SCRATCH']
os.environ['RNN_JAX_DATA_DIR'] = os.path.join(_SCRATCH, 'tfds')
os.environ['JAX_COMPILATION_CACHE_DIR'] = os.path.join(_SCRATCH, 'jit')
os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '-1'
MIRROR = os.environ['RNN_JAX_RAW_DATA']

# The files of the longest tests, run first: with one worker per core the
# suite ends when its last long test does, so none should start at the end.
_LONG_FIRST = ('test_search.py', 'test_workdir.py', 'test_sweeps.py',
               'test_distributed.py', 'test_presets.py', 'test_seq2seq.py')


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: item.path.name not in _LONG_FIRST)


def has_raw(relpath: str) -> bool:
  return os.path.isfile(os.path.join(MIRROR, relpath))


def requires_raw(relpath: str):
  return pytest.mark.skipif(
      not has_raw(relpath),
      reason=f'raw data {relpath} absent from RNN_JAX_RAW_DATA={MIRROR}')


def launch(*args, env=None, timeout=600, stdin=''):
  """Runs launch.py in a subprocess (`stdin` is its standard input);
  returns the CompletedProcess."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  full_env = {k: v for k, v in full_env.items() if v is not None}
  return subprocess.run([sys.executable, os.path.join(REPO, 'launch.py'), *args],
                        cwd=REPO, env=full_env, capture_output=True, text=True,
                        timeout=timeout, input=stdin)


def run_launcher(*args, env=None, stdin=''):
  """launch.py's command line in this process (where the process boundary
  adds nothing): its exit status and what it printed, as `launch` returns
  them. `env` entries are set for the call (None removes one)."""
  import launch as launcher  # pylint: disable=g-import-not-at-top
  saved = {k: os.environ.get(k) for k in (env or {})}
  out, err = io.StringIO(), io.StringIO()
  old_stdin = sys.stdin
  try:
    for k, v in (env or {}).items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    sys.stdin = io.StringIO(stdin)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      code = launcher.run(['launch.py', *map(str, args)])
  finally:
    sys.stdin = old_stdin
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return subprocess.CompletedProcess(args, code, out.getvalue(),
                                     err.getvalue())


def read_summary(workdir) -> dict:
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


# The smallest runs of each experiment, on the files `tiny_data` writes.
TINY = {
    'lm': {'data.name': 'files', 'data.train': '{d}/text.txt',
           'data.batch_size': 2, 'data.eval_batch_size': 1,
           'data.num_steps': 8, 'model.hidden_size': 8},
    'classify': {'data.name': 'files', 'data.train': '{d}/labels.tsv',
                 'model.hidden_size': 8, 'model.embed_size': 8,
                 'model.mlp_size': 0, 'data.batch_size': 4},
    'tag': {'data.name': 'files', 'data.train': '{d}/tags.conll',
            'data.column': 1, 'model.hidden_size': 8, 'model.embed_size': 8,
            'model.char_hidden_size': 4, 'data.batch_size': 4},
    'seq2seq': {'data.name': 'files', 'data.train': '{d}/pairs.tsv',
                'model.embed_size': 8, 'model.encoder_hidden_size': 8,
                'model.hidden_size': 8, 'data.batch_size': 4,
                'decode.method': 'greedy'},
}
TINY_TEXT = '\n'.join(['the quick brown fox jumps over the lazy dog',
                       'pack my box with five dozen liquor jugs',
                       'how vexingly quick daft zebras jump'] * 100) + '\n'


def tiny_data(folder):
  """Writes the four experiments' tiny training files into `folder`."""
  folder.mkdir(exist_ok=True)
  (folder / 'text.txt').write_text(TINY_TEXT)
  (folder / 'labels.tsv').write_text(''.join(
      f'{"ab"[i % 2]}\tword{i % 7} other{i % 3}\n' for i in range(60)))
  (folder / 'tags.conll').write_text(''.join(
      f'w{i % 5} {"BI"[i % 2]}-X\nv{i % 3} O\n\n' for i in range(60)))
  (folder / 'pairs.tsv').write_text(''.join(
      f'a{i % 4} b{i % 3}\tb{i % 3} a{i % 4}\n' for i in range(60)))
  return folder


def error_line(experiment, tmp_path, *flags) -> str:
  """The one line a refused tiny run of `experiment` (on `tiny_data`, with
  `flags` added) prints; it must exit with status 2."""
  tiny_data(tmp_path / 'data')
  result = run_launcher(f'--experiment={experiment}',
                        f'--workdir={tmp_path}/refused',
                        *tiny_args(experiment, tmp_path / 'data'), *flags)
  assert result.returncode == 2, (result.stdout, result.stderr)
  line, = result.stderr.strip().splitlines()
  return line


def tiny_args(experiment, folder, swept=(), **overrides):
  """--config flags of `experiment`'s tiny run on `tiny_data(folder)`: two
  steps unless `overrides` ('train__max_steps': n) say otherwise; fields in
  `swept` are left out."""
  fields = {'train.max_steps': 2, 'train.eval_steps': 1, **TINY[experiment],
            **{k.replace('__', '.'): v for k, v in overrides.items()}}
  return [f'--config.{k}={str(v).format(d=folder)}'
          for k, v in fields.items() if k not in swept]


# Run in a fresh process that imports jax and numpy only: the exported
# functions, each called on the inputs in inputs.npz, outputs to outputs.npz.
_LOAD_EXPORTED = '''
import json, sys
import numpy as np
from jax import export
folder = sys.argv[1]
with open(folder + '/signature.json') as f:
    signature = json.load(f)
inputs = np.load('inputs.npz')
outputs = {}
for name in signature['functions']:
    with open(f'{folder}/{name}.jax', 'rb') as f:
        function = export.deserialize(bytearray(f.read()))
    args = [inputs[f'{name}/{i}'] for i in range(len(
        signature['functions'][name]['inputs']))]
    for key, out in function.call(*args).items():
        outputs[f'{name}/{key}'] = np.asarray(out)
np.savez('outputs.npz', **outputs)
assert not any(m.split('.')[0] in ('rnn_jax', 'experiments', 'flax')
               for m in sys.modules), 'imported the project'
print('ok')
'''


def call_exported(tmp_path, workdir, inputs):
  """The exported functions of `workdir` on `inputs` ({'fn/i': the i-th
  argument}), called in a fresh process that does not import rnn_jax:
  {'fn/output name': array}."""
  np.savez(tmp_path / 'inputs.npz', **inputs)
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run(
      [sys.executable, '-c', _LOAD_EXPORTED, str(workdir / 'export')],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0 and result.stdout.strip() == 'ok', (
      result.stderr[-2000:])
  return dict(np.load(tmp_path / 'outputs.npz'))
