"""Language modelling: predict x_t from x_<t, scored by perplexity.

Default (the main job): the lecture's vanilla RNN on The Time Machine at
character level, `python launch.py --experiment=lm`.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rnn_jax import cells
from rnn_jax import configlib
from rnn_jax import decoding
from rnn_jax import distributed
from rnn_jax import host
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import training
from rnn_jax.data import builders
from rnn_jax.data import files
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

NAME = 'lm'
DEFAULT_PRESET = 'timemachine_rnn'
LOSS_REDUCTIONS = ('token_mean', 'sequence_sum')


def get_config() -> ml_collections.ConfigDict:
  """Defaults = the `timemachine_rnn` preset."""
  c = ml_collections.ConfigDict()
  c.preset = DEFAULT_PRESET  # set by launch.py from --preset; a label only
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      cell='rnn',            # rnn | gru | lstm
      hidden_size=256,
      num_layers=1,
      bidirectional=False,   # not meaningful for a left-to-right LM
      dropout=0.0,
      embed_size=0,          # 0: one-hot inputs (the lecture's x_t)
      activation='tanh',     # rnn cell only: tanh | relu
      init_scale=0.0,        # >0: U(-s, s) for every parameter
      recurrent=True,        # False drops W_hh: the MLP of the lecture
      tie_weights=False,
      unroll=1,
      remat_chunk=0,         # >0: recompute the recurrence in chunks of this
                             # many steps in the backward pass (long num_steps)
      dtype='float32',       # bfloat16: the matmuls' operands (mixed
                             # precision; params, states, logits float32)
      cudnn=False,           # lstm: cuDNN's fused kernel on CUDA GPUs (a slow
                             # scan reference elsewhere; float32, no remat)
  ))
  c.data = ml_collections.ConfigDict(dict(
      name='timemachine',    # timemachine | tinyshakespeare | ptb | files
      level='char',          # char | word
      preprocess='d2l',      # d2l (letters and spaces, lower case) | none
      eos=True,              # word level: <eos> after each line
      min_freq=1,
      batch_size=32,
      num_steps=35,
      eval_batch_size=10,
      partition='sequential',  # sequential (state carried) | random
      train='',              # paths, for name=files
      valid='',
      test='',
      valid_fraction=0.05,   # name=files without valid/test: the end of the
      test_fraction=0.05,    # train text is split off, test last
  ))
  c.train = training.default_config(
      loss_reduction='token_mean',  # or sequence_sum: summed over the T
                                    # steps, averaged over the batch (Zaremba)
      num_epochs=40,
      eval_every_epochs=5,
  )
  c.generate = ml_collections.ConfigDict(dict(
      prefix='time traveller',
      num_tokens=60,
      temperature=0.0,       # 0: greedy
      top_k=0,
      top_p=1.0,
  ))
  return c


# ----------------------------------------------------------------------------
# Data.


def _split_lines(dc) -> dict[str, list[str]]:
  if dc.name != 'files':
    return builders.load_lines(dc.name)
  lines = {'train': files.read_lines(dc.train, what='data.train file')}
  for split in ('valid', 'test'):
    if dc[split]:
      lines[split] = files.read_lines(dc[split], what=f'data.{split} file')
  if len(lines) == 3:
    return lines
  if len(lines) == 2:
    raise InputError('give both data.valid and data.test, or neither')
  # Only a train file: its last fractions become valid and test, by lines.
  text = lines['train']
  n = len(text)
  n_test = int(n * dc.test_fraction)
  n_valid = int(n * dc.valid_fraction)
  if n_test < 1 or n_valid < 1:
    raise InputError(f'{dc.train}: {n} lines are too few to split off '
                     'valid and test; give data.valid and data.test')
  return {'train': text[:n - n_valid - n_test],
          'valid': text[n - n_valid - n_test:n - n_test],
          'test': text[n - n_test:]}


def load_corpus(dc) -> tuple[vocab_lib.Vocab, dict[str, np.ndarray]]:
  """Tokenises the three splits and builds the vocab on train."""
  lines = _split_lines(dc)
  tokens = {split: pipelines.tokenize(lines[split], dc.level,
                                      preprocess=dc.preprocess, eos=dc.eos)
            for split in ('train', 'valid', 'test')}
  for split, toks in tokens.items():
    if len(toks) < 2:
      raise InputError(f'{dc.name}: the {split} split has no text')
  reserved = [vocab_lib.UNK]
  if dc.level == 'word' and dc.eos:
    reserved.append(vocab_lib.EOS)
  vocab = vocab_lib.Vocab.build(tokens['train'], min_freq=dc.min_freq,
                                reserved=reserved)
  return vocab, {s: vocab.encode(t) for s, t in tokens.items()}


# model.dtype -> the models' compute_dtype (None: float32 throughout).
COMPUTE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}


def validate(config):
  """Rejects values no code path accepts, before anything is written."""
  configlib.check_choices(config, {
      'model.cell': tuple(cells.CELLS),
      'model.activation': tuple(cells.ACTIVATIONS),
      'model.dtype': tuple(COMPUTE_DTYPES),
      'data.level': ('char', 'word'),
      'data.preprocess': pipelines.PREPROCESSORS,
      'data.partition': pipelines.PARTITIONS,
      'data.name': tuple(builders.registered('lm')) + ('files',),
      'train.loss_reduction': LOSS_REDUCTIONS,
  })
  training.validate_config(config)
  configlib.check_at_least(config, {**dict.fromkeys([
      'model.hidden_size', 'model.num_layers', 'data.batch_size',
      'data.num_steps', 'data.eval_batch_size', 'generate.num_tokens'], 1),
      'model.remat_chunk': 0})
  configlib.check_fraction(config, ['model.dropout'])
  m = config.model
  if m.cudnn and (m.cell != 'lstm' or not m.recurrent or m.remat_chunk
                  or m.dtype != 'float32'):
    raise InputError('config field model.cudnn: cuDNN runs a recurrent '
                     'float32 LSTM (model.cell=lstm, model.dtype=float32, '
                     'model.remat_chunk=0)')
  if m.bidirectional:
    raise InputError('config field model.bidirectional: a language model '
                     'reads left to right; a backward direction would see '
                     'the tokens it must predict')


# ----------------------------------------------------------------------------
# The task given to the training loop.


def make_model(config, vocab_size: int) -> models.LanguageModel:
  m = config.model
  return models.LanguageModel(
      vocab_size=vocab_size, embed_size=m.embed_size, cell=m.cell,
      hidden_size=m.hidden_size, num_layers=m.num_layers, dropout=m.dropout,
      activation=m.activation, init_scale=m.init_scale or None,
      recurrent=m.recurrent, tie_weights=m.tie_weights, unroll=m.unroll,
      remat_chunk=m.remat_chunk, compute_dtype=COMPUTE_DTYPES[m.dtype],
      cudnn=m.cudnn)


class LMTask:
  """Language modelling as a `training.Task`."""

  def __init__(self, config, vocab_size: int, ids: dict[str, np.ndarray]):
    dc = config.data
    self.config, self.ids = config, ids
    self.model = make_model(config, vocab_size)
    self.stream = pipelines.LMStream(
        ids['train'], dc.batch_size, dc.num_steps, partition=dc.partition,
        seed=config.seed)
    self.steps_per_epoch = self.stream.steps_per_epoch
    self.reset_carry_every_batch = dc.partition == 'random'
    for split in ('valid', 'test'):
      if len(ids[split]) <= dc.eval_batch_size:
        raise InputError(f'{dc.name}: the {split} split has '
                         f'{len(ids[split])} tokens, fewer than '
                         f'data.eval_batch_size={dc.eval_batch_size}')

  def init_params(self, rng):
    dc = self.config.data
    tokens = jnp.zeros((dc.batch_size, dc.num_steps), jnp.int32)
    return self.model.init(rng, tokens, self.initial_carry('train'))['params']

  def initial_carry(self, split):
    dc = self.config.data
    return self.model.initial_carry(
        dc.batch_size if split == 'train' else dc.eval_batch_size)

  def loss(self, params, batch, carry, rng, train):
    rngs = {'dropout': rng} if train else {}
    logits, carry = self.model.apply({'params': params}, batch['inputs'],
                                     carry, train=train, rngs=rngs)
    nll, count = metrics.cross_entropy(logits, batch['targets'])
    if self.config.train.loss_reduction == 'sequence_sum':
      loss = nll / batch['inputs'].shape[0]
    else:
      loss = nll / count
    return loss, ({'loss': nll, 'count': count}, carry)

  def train_batch(self, epoch, index):
    return self.stream.batch(epoch, index)

  def eval_batches(self, split):
    dc = self.config.data
    return pipelines.lm_eval_batches(self.ids[split], dc.eval_batch_size,
                                     dc.num_steps)

  def num_tokens(self, batch):
    return batch['inputs'].size

  def derived_metrics(self, m):
    return {'perplexity': metrics.perplexity(m['loss']),
            'bits_per_token': metrics.bits_per_token(m['loss'])}


# ----------------------------------------------------------------------------
# Generation.


def encode_prefix(config, vocab: vocab_lib.Vocab, prefix: str,
                  what: str = 'generate.prefix') -> list[str]:
  """The prefix's tokens; every one must be in the vocabulary (an unknown
  one would be read as <unk>, which a character model never trained)."""
  dc = config.data
  tokens = pipelines.tokenize([prefix], dc.level, preprocess=dc.preprocess,
                              eos=False)
  if not tokens:
    raise InputError(f'{what}: no tokens in {prefix!r}')
  unknown = [t for t in tokens if t not in vocab.stoi]
  if unknown:
    raise InputError(f'{what}: {unknown[0]!r} is not in the vocabulary of '
                     'the trained model'
                     + (f' (write {vocab_lib.UNK} for it)'
                        if vocab.unk_id is not None else ''))
  return tokens


def generate(config, params, vocab: vocab_lib.Vocab, prefix: str,
             seed: int = 0, what: str = 'generate.prefix') -> str:
  """`prefix` followed by `generate.num_tokens` generated tokens; `what`
  names the prefix in errors."""
  gc, dc = config.generate, config.data
  model = make_model(config, len(vocab))
  prefix_tokens = encode_prefix(config, vocab, prefix, what)
  prefix = jnp.asarray(vocab.encode(prefix_tokens))[None, :]

  def step_fn(p, tokens, carry):
    logits, carry = model.apply({'params': p}, tokens[:, None], carry)
    return logits[:, 0], carry

  ids = decoding.generate(step_fn, params, prefix, model.initial_carry(1),
                          jax.random.PRNGKey(seed), num_tokens=gc.num_tokens,
                          temperature=gc.temperature, top_k=gc.top_k,
                          top_p=gc.top_p)
  sep = '' if dc.level == 'char' else ' '
  return sep.join(prefix_tokens + vocab.decode(np.asarray(ids[0])))


def _write_sample(workdir: str, config, text: str):
  gc = config.generate
  print(f'generated: {text}', flush=True)
  if not distributed.is_primary():
    return
  with open(os.path.join(workdir, 'samples.txt'), 'a', encoding='utf-8') as f:
    f.write(f'# prefix={gc.prefix!r} temperature={gc.temperature} '
            f'top_k={gc.top_k} top_p={gc.top_p}\n{text}\n')


# ----------------------------------------------------------------------------
# Entry points.


def run(config, workdir: str) -> dict:
  """Trains (or resumes), evaluates, generates; writes summary.json."""
  host.dispatch_on_calling_thread()  # one batch shape: nothing to overlap
  validate(config)
  vocab, ids = load_corpus(config.data)
  task = LMTask(config, len(vocab), ids)
  print(f'{config.data.name}: vocab {len(vocab)}, tokens '
        + ', '.join(f'{s} {len(v):,}' for s, v in ids.items()), flush=True)
  encode_prefix(config, vocab, config.generate.prefix)  # before training
  training.write_config(workdir, config)
  vocab.save(os.path.join(workdir, 'vocab.json'))

  result = training.train_and_evaluate(task, config, workdir)
  _write_sample(workdir, config, generate(
      config, result['state'].params, vocab, config.generate.prefix,
      config.seed))
  return training.write_summary(
      workdir, {'experiment': NAME, 'preset': config.preset,
                **result['summary']})


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Recomputes the valid and test perplexity of a checkpoint."""
  params, step = training.load_params(workdir, step)
  vocab, ids = load_corpus(config.data)
  task = LMTask(config, len(vocab), ids)
  return training.write_summary(
      training.evaluation_dir(workdir, step),
      training.evaluate_checkpoint(task, config, params, step, NAME))


def predict(config, workdir: str, prefixes: list[str],
            step: int | None = None) -> list[str]:
  """Each prefix continued by the trained model (config.generate says how);
  needs only the workdir."""
  vocab = training.load_vocab(workdir, 'vocab.json', NAME)
  params, _ = training.load_params(workdir, step)
  return [generate(config, params, vocab, prefix, config.seed,
                   what=f'input line {i}')
          for i, prefix in enumerate(prefixes, 1)]
