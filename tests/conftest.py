"""Shared test set-up: the raw-data mirror and a private prepared-data folder."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_MIRROR = os.path.join(os.path.dirname(REPO), 'shared', 'data')

os.environ.setdefault('RNN_JAX_RAW_DATA', _DEFAULT_MIRROR)
# Prepared TFDS data for this test session only (built from the mirror).
os.environ['RNN_JAX_DATA_DIR'] = tempfile.mkdtemp(prefix='rnn_jax_tfds_')
atexit.register(shutil.rmtree, os.environ['RNN_JAX_DATA_DIR'], True)
MIRROR = os.environ['RNN_JAX_RAW_DATA']


def has_raw(relpath: str) -> bool:
  return os.path.isfile(os.path.join(MIRROR, relpath))


def requires_raw(relpath: str):
  return pytest.mark.skipif(
      not has_raw(relpath),
      reason=f'raw data {relpath} absent from RNN_JAX_RAW_DATA={MIRROR}')


def launch(*args, env=None, timeout=600):
  """Runs launch.py in a subprocess; returns the CompletedProcess."""
  full_env = dict(os.environ)
  full_env.update(env or {})
  full_env = {k: v for k, v in full_env.items() if v is not None}
  return subprocess.run([sys.executable, os.path.join(REPO, 'launch.py'), *args],
                        cwd=REPO, env=full_env, capture_output=True, text=True,
                        timeout=timeout)
