"""Shared machinery of the builders: raw-file resolution and loading."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import urllib.request
from typing import Callable

from rnn_jax.errors import InputError

RAW_DATA_ENV = 'RNN_JAX_RAW_DATA'
DATA_DIR_ENV = 'RNN_JAX_DATA_DIR'

_BUILDERS: dict[str, Callable] = {}


@dataclasses.dataclass(frozen=True)
class RawFile:
  """One raw file: its path inside the mirror, canonical URL and sha256."""
  path: str
  url: str
  sha256: str

  def resolve(self) -> str:
    """Local path of the verified file: from the mirror, else downloaded."""
    mirror = os.environ.get(RAW_DATA_ENV)
    if mirror:
      local = os.path.join(mirror, self.path)
      if not os.path.isfile(local):
        raise InputError(f'missing raw data file {local} '
                         f'(${RAW_DATA_ENV}={mirror}; canonical URL {self.url})')
    else:
      local = self._download()
    digest = sha256_of(local)
    if digest != self.sha256:
      raise InputError(f'checksum mismatch for {local}: sha256 {digest}, '
                       f'expected {self.sha256}')
    return local


  def _download(self) -> str:
    """One attempt, cached in <data_dir>/downloads, written atomically."""
    local = os.path.join(data_dir(), 'downloads', self.path)
    if os.path.isfile(local):
      return local
    os.makedirs(os.path.dirname(local), exist_ok=True)
    tmp = f'{local}.{os.getpid()}.tmp'
    try:
      with urllib.request.urlopen(self.url, timeout=60) as response, \
          open(tmp, 'wb') as f:
        shutil.copyfileobj(response, f)
    except (OSError, ValueError) as e:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise InputError(f'could not download {self.url} ({e}); set '
                       f'${RAW_DATA_ENV} to a local mirror') from None
    os.replace(tmp, local)
    return local


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def data_dir() -> str:
  return os.environ.get(DATA_DIR_ENV) or os.path.expanduser(
      '~/.cache/rnn_jax/tfds')


def register(name: str):
  def wrap(cls):
    _BUILDERS[name] = cls
    return cls
  return wrap


def registered() -> list[str]:
  return sorted(_BUILDERS)


def _quiet_tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  logging.getLogger('absl').setLevel(logging.WARNING)
  return tfds


def load_lines(name: str, splits=('train', 'valid', 'test')) -> dict[str, list[str]]:
  """Prepares dataset `name` if needed and returns its lines per split."""
  if name not in _BUILDERS:
    raise InputError(f'unknown dataset {name!r}; known: {", ".join(registered())}')
  _quiet_tfds()
  builder = _BUILDERS[name](data_dir=data_dir(), file_format='array_record')
  builder.download_and_prepare()
  sources = builder.as_data_source()
  out = {}
  for split in splits:
    source = sources[split]
    records = source.__getitems__(list(range(len(source))))
    out[split] = [r['text'].decode('utf-8') for r in records]
  return out
