"""Shared machinery of the builders: raw-file resolution and loading."""

from __future__ import annotations

import dataclasses
import fcntl
import gzip
import hashlib
import logging
import os
import shutil
import tarfile
import urllib.request
import zipfile
from typing import Callable, Iterable

import tensorflow_datasets as tfds

from rnn_jax.errors import InputError

RAW_DATA_ENV = 'RNN_JAX_RAW_DATA'
DATA_DIR_ENV = 'RNN_JAX_DATA_DIR'

_BUILDERS: dict[str, Callable] = {}


@dataclasses.dataclass(frozen=True)
class RawFile:
  """One raw file: its path inside the mirror, canonical URL and sha256.

  When the canonical URL is an archive (.zip, .tar.gz), `member` names the
  file inside it. The sha256 is that of the file as the source serves it (the
  member itself for an archive). A mirror may hold a gzipped copy of a file
  the source serves uncompressed (`path` ends in .gz, the source's name does
  not); the checksum is then verified on the decompressed bytes.
  """
  path: str
  url: str
  sha256: str
  member: str = ''

  def resolve(self) -> str:
    """Local path of the verified file: from the mirror, else downloaded."""
    mirror = os.environ.get(RAW_DATA_ENV)
    if mirror:
      local = os.path.join(mirror, self.path)
      if not os.path.isfile(local):
        raise InputError(f'missing raw data file {local} '
                         f'(${RAW_DATA_ENV}={mirror}; canonical URL {self.url})')
      gunzip = self.mirror_gzipped
    else:
      local, gunzip = self._download(), False
    digest = sha256_of(local, gunzip=gunzip)
    if digest != self.sha256:
      raise InputError(f'checksum mismatch for {local}: sha256 {digest}, '
                       f'expected {self.sha256}')
    return local


  @property
  def mirror_gzipped(self) -> bool:
    source_name = self.member or self.url.split('?')[0]
    return self.path.endswith('.gz') and not source_name.endswith('.gz')

  def _download(self) -> str:
    """One attempt, cached in <data_dir>/downloads, written atomically."""
    downloads = os.path.join(data_dir(), 'downloads')
    path = self.path[:-3] if self.mirror_gzipped else self.path
    local = os.path.join(downloads, path)
    if os.path.isfile(local):
      return local
    if not self.member:
      _fetch(self.url, local)
      return local
    archive = os.path.join(downloads, 'archives',
                           os.path.basename(self.url.split('?')[0]))
    if not os.path.isfile(archive):
      _fetch(self.url, archive)
    _extract(archive, self.member, local)
    return local


def _fetch(url: str, local: str):
  os.makedirs(os.path.dirname(local), exist_ok=True)
  tmp = f'{local}.{os.getpid()}.tmp'
  try:
    with urllib.request.urlopen(url, timeout=60) as response, \
        open(tmp, 'wb') as f:
      shutil.copyfileobj(response, f)
  except (OSError, ValueError) as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise InputError(f'could not download {url} ({e}); set '
                     f'${RAW_DATA_ENV} to a local mirror') from None
  os.replace(tmp, local)


def _extract(archive: str, member: str, local: str):
  """Copies `member` out of a .zip or .tar(.gz) archive to `local`."""
  os.makedirs(os.path.dirname(local), exist_ok=True)
  tmp = f'{local}.{os.getpid()}.tmp'
  try:
    if zipfile.is_zipfile(archive):
      with zipfile.ZipFile(archive) as z, z.open(member) as src, \
          open(tmp, 'wb') as dst:
        shutil.copyfileobj(src, dst)
    else:
      with tarfile.open(archive) as t:
        src = t.extractfile(member)
        if src is None:
          raise KeyError(member)
        with src, open(tmp, 'wb') as dst:
          shutil.copyfileobj(src, dst)
  except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile) as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise InputError(f'{archive}: cannot extract {member} ({e})') from None
  os.replace(tmp, local)


def _open(path: str, gunzip: bool):
  return gzip.open(path, 'rb') if gunzip else open(path, 'rb')


def sha256_of(path: str, gunzip: bool = False) -> str:
  h = hashlib.sha256()
  try:
    with _open(path, gunzip) as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        h.update(block)
  except (OSError, EOFError) as e:   # a corrupt gzip
    raise InputError(f'cannot read {path} ({e})') from None
  return h.hexdigest()


def read_text(raw: RawFile, encoding: str = 'utf-8') -> str:
  """The verified file's text; a .gz file is decompressed."""
  path = raw.resolve()
  with _open(path, path.endswith('.gz')) as f:
    data = f.read()
  try:
    return data.decode(encoding)
  except UnicodeDecodeError as e:
    raise InputError(f'{path}: not valid {encoding} ({e.reason})') from None


class ExamplesBuilder(tfds.core.GeneratorBasedBuilder,
                      skip_registration=True):
  """The base of every builder here: `_features()` gives the feature dict,
  `_examples()` split -> the split's examples in file order (each turned
  into a feature dict by `_record`), read from `RawFile`s, which resolve
  the mirror or download by themselves."""
  TASK = ''
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  HOMEPAGE = ''

  def _features(self) -> dict:
    raise NotImplementedError

  def _examples(self) -> dict[str, Iterable]:
    raise NotImplementedError

  def _record(self, example) -> dict:
    return example

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__,
        features=tfds.features.FeaturesDict(self._features()),
        homepage=self.HOMEPAGE, disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(examples)
            for split, examples in self._examples().items()}

  def _generate_examples(self, examples):
    for i, example in enumerate(examples):
      yield i, self._record(example)


def data_dir() -> str:
  return os.environ.get(DATA_DIR_ENV) or os.path.expanduser(
      '~/.cache/rnn_jax/tfds')


def register(name: str):
  def wrap(cls):
    _BUILDERS[name] = cls
    return cls
  return wrap


def registered(task: str | None = None) -> list[str]:
  """Dataset names, with `name/config` for builders that have configs; only
  those for `task` (a builder's TASK: 'lm', 'classify', ...) when given."""
  names = []
  for name, cls in sorted(_BUILDERS.items()):
    if task and cls.TASK != task:
      continue
    names.append(name)
    names.extend(f'{name}/{c.name}' for c in cls.BUILDER_CONFIGS)
  return names


def version(name: str) -> str:
  """The version of registered dataset `name` (or `name/config`)."""
  return str(_BUILDERS[name.partition('/')[0]].VERSION)


def _quiet_tfds():
  tfds.disable_progress_bar()
  logging.getLogger('absl').setLevel(logging.WARNING)


def load(name: str, limits: dict[str, int] | None = None
         ) -> dict[str, list[dict]]:
  """Prepares dataset `name` (or `name/config`) if needed; returns every
  split's records in order (only the first `limits[split]` of a split
  named there), text features decoded to str."""
  if name not in registered():
    raise InputError(f'unknown dataset {name!r}; known: {", ".join(registered())}')
  _quiet_tfds()
  builder_name, _, config = name.partition('/')
  os.makedirs(data_dir(), exist_ok=True)
  # One preparation at a time per dataset: parallel runs of a sweep (or
  # test workers) that start on a dataset not yet prepared wait for the
  # first to finish, then read what it wrote.
  with open(os.path.join(data_dir(), f'.{builder_name}.lock'), 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    builder = _BUILDERS[builder_name](config=config or None,
                                      data_dir=data_dir(),
                                      file_format='array_record')
    builder.download_and_prepare()
  out = {}
  for split, source in builder.as_data_source().items():
    count = len(source)
    if (limits or {}).get(split):
      count = min(count, limits[split])
    records = source.__getitems__(list(range(count)))
    out[split] = [{k: _decode(v) for k, v in r.items()} for r in records]
  return out


def _decode(value):
  """Text features come back as bytes, sequences of them as lists."""
  if isinstance(value, bytes):
    return value.decode('utf-8')
  if isinstance(value, list):
    return [_decode(v) for v in value]
  return value


def load_lines(name: str) -> dict[str, list[str]]:
  """A text corpus's lines per split."""
  return {split: [r['text'] for r in records]
          for split, records in load(name).items()}
