"""Language modelling: predict x_t from x_<t, scored by perplexity.

Default (the main job): the lecture's vanilla RNN on The Time Machine at
character level, `python launch.py --experiment=lm`.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import decoding
from rnn_jax import distributed
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import training
from rnn_jax.configlib import Field
from rnn_jax.data import builders
from rnn_jax.data import corpus
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vectors
from rnn_jax.errors import InputError
from rnn_jax.models import language_model

LOSS_REDUCTIONS = ('token_mean', 'sequence_sum')
# model.dtype -> the models' compute_dtype (None: float32 throughout).
COMPUTE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}


FIELDS = {
    **configlib.run_fields('lm', 'timemachine_rnn'),
    **configlib.group('model', layers.FIELDS, 'cell', 'hidden_size',
                      'num_layers', 'activation', 'block', *layers.RUN_FIELDS,
                      cell='rnn'),
    'model.dropout': configlib.fraction(0.0, 'on the inputs, between '
                                        'layers and before the readout'),
    **configlib.group('model', layers.REGULARISERS),
    **configlib.group('model', vectors.FIELDS),
    'model.embed_word_dropout': configlib.fraction(
        0.0, "whole words' embeddings, one mask per batch"),
    'model.embed_size': Field(0, "the embeddings' size; 0: one-hot inputs "
                              "(the lecture's x_t)", at_least=0),
    'model.init_scale': Field(0.0, '>0: every parameter from U(-s, s)',
                              at_least=0),
    'model.recurrent': Field(True, "false drops W_hh: the lecture's MLP"),
    'model.tie_weights': Field(False, 'the readout is the embedding, '
                               'transposed'),
    'model.mlp_ratio': Field(4, "residual blocks: the MLP's width / "
                             'hidden_size', at_least=0),
    'model.remat_chunk': Field(0, '>0: recompute the recurrence (matrix '
                               'cells: the layer) in chunks of this many '
                               'steps in the backward pass', at_least=0),
    'model.dtype': Field('float32', "bfloat16: the matmuls' operands (params, "
                         'states and logits stay float32)',
                         choices=tuple(COMPUTE_DTYPES)),
    'model.cudnn': Field(False, "lstm: cuDNN's fused kernel on CUDA GPUs (a "
                         'slow scan reference elsewhere)'),
    'data.name': Field('timemachine', 'the corpus; files: data.train, '
                       'data.valid, data.test', choices=(
                           *builders.registered('lm'), 'files')),
    'data.level': Field('char', 'the tokens', choices=('char', 'word')),
    'data.preprocess': Field('auto', 'd2l: letters and spaces, lower case; '
                             'auto: d2l for timemachine, else none',
                             choices=(*pipelines.PREPROCESSORS, 'auto')),
    'data.eos': Field(True, 'word level: <eos> after each line'),
    'data.min_freq': Field(1, 'rarer tokens are <unk>', at_least=1),
    'data.batch_size': Field(32, 'streams read side by side', at_least=1),
    'data.num_steps': Field(35, 'steps of backpropagation through time',
                            at_least=1),
    'data.eval_batch_size': Field(10, 'streams when evaluating', at_least=1),
    'data.partition': Field('sequential', 'sequential: the state carries '
                            'over between batches; random: each starts '
                            'from zeros', choices=pipelines.PARTITIONS),
    **readers.file_fields('text'),
    'data.valid_fraction': configlib.fraction(0.05, 'files without '
                                              'data.valid: the end of train '
                                              'before test'),
    'data.test_fraction': configlib.fraction(0.05, 'files without data.test: '
                                             'the end of train'),
    **configlib.group('train', training.FIELDS, num_epochs=40,
                      eval_every_epochs=5),
    'train.loss_reduction': Field('token_mean', "sequence_sum: summed over "
                                  "the steps, averaged over the batch "
                                  "(Zaremba's)", choices=LOSS_REDUCTIONS),
    'train.activation_reg': Field(0.0, "AR: + this x mean(h_t^2) of the top "
                                  "layer's dropped outputs", at_least=0),
    'train.temporal_activation_reg': Field(0.0, 'TAR: + this x '
                                           'mean((h_t - h_{t-1})^2) of its '
                                           'outputs before dropout',
                                           at_least=0),
    'generate.prefix': Field('time traveller', 'generate from this (one '
                             'outside the vocabulary: the train text\'s '
                             'first tokens)'),
    'generate.num_tokens': Field(60, 'tokens generated', at_least=1),
    **configlib.group('generate', decoding.SAMPLING_FIELDS),
    'predict.stateful': Field(False, '--mode=predict: each input line '
                              'continues from the state the last one left'),
}


def make_model(config, vocab_size: int) -> models.LanguageModel:
  fields = vectors.module_fields(config.model)
  compute_dtype = COMPUTE_DTYPES[fields.pop('dtype')]
  return models.LanguageModel(vocab_size=vocab_size,
                              compute_dtype=compute_dtype, **fields)


class LMTask:
  """Language modelling as a `training.Task`."""

  def __init__(self, config, tokens, workdir: str = '', vocabs=None):
    del workdir
    dc = config.data
    self.config = config
    self.vocabs = (vocabs if vocabs is not None else
                   {'vocab': corpus.build_vocab(tokens['train'], dc)})
    self.vocab = self.vocabs['vocab']
    self.model = make_model(config, len(self.vocab))
    self.steps_per_epoch = 0
    self.reset_carry_every_batch = dc.partition == 'random'
    self.pretrained = None  # predict mode restores the trained weights
    if tokens is None:  # predict mode
      return
    self.pretrained = vectors.make(config.model, self.vocab.itos)
    self.ids = corpus.encode(tokens, self.vocab)
    self.stream = pipelines.LMStream(
        self.ids['train'], dc.batch_size, dc.num_steps, partition=dc.partition,
        seed=config.seed)
    self.steps_per_epoch = self.stream.steps_per_epoch
    for split in ('valid', 'test'):
      if len(self.ids[split]) <= dc.eval_batch_size:
        raise InputError(f'{dc.name}: the {split} split has '
                         f'{len(self.ids[split])} tokens, fewer than '
                         f'data.eval_batch_size={dc.eval_batch_size}')
    if vocabs is None:
      config.generate.prefix = corpus.readable_prefix(
          config.generate.prefix, tokens['train'], self.vocab, dc)

  def describe(self) -> str:
    return (f'{self.config.data.name}: vocab {len(self.vocab)}, tokens '
            + ', '.join(f'{s} {len(v):,}' for s, v in self.ids.items()))

  def init_params(self, rng):
    # The parameters' shapes do not depend on the batch: one token.
    tokens = jnp.zeros((1, 1), jnp.int32)
    params = models.init_params(self.model, rng, tokens,
                                self.model.initial_carry(1))
    return vectors.initialise(self.pretrained, params)

  def initial_carry(self, split):
    dc = self.config.data
    return self.model.initial_carry(
        dc.batch_size if split == 'train' else dc.eval_batch_size)

  def loss(self, params, batch, carry, rng, train):
    tc = self.config.train
    rngs = {'dropout': rng} if train else {}
    regularise = train and (tc.activation_reg or tc.temporal_activation_reg)
    (logits, carry), sown = self.model.apply(
        {'params': params}, batch['inputs'], carry, train=train, rngs=rngs,
        mutable=['intermediates'] if regularise else [])
    nll, count = metrics.cross_entropy(logits, batch['targets'],
                                       batch.get('mask'))
    if tc.loss_reduction == 'sequence_sum':
      loss = nll / batch['inputs'].shape[0]
      steps = batch['inputs'].shape[1]  # the penalties summed like the loss
    else:
      loss, steps = nll / count, 1
    if regularise:
      top = sown['intermediates']
      (hs,), (dropped,) = top['outputs'], top['dropped']   # [T, B, H]
      loss += steps * (
          tc.activation_reg * jnp.mean(dropped ** 2)
          + tc.temporal_activation_reg * jnp.mean((hs[1:] - hs[:-1]) ** 2))
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


class LanguageModelling(experiment.Experiment):
  """Predict x_t from x_<t; perplexity, generation, streams, export."""
  NAME = 'lm'
  DEFAULT_PRESET = 'timemachine_rnn'
  FIELDS = FIELDS
  SWEEP_METRICS = ('valid/perplexity', 'test/perplexity')
  # One batch shape: nothing for asynchronous dispatch to overlap, and the
  # step's temporaries come from the main heap (see rnn_jax/host.py).
  DISPATCH_ON_CALLING_THREAD = True

  def validate(self, config):
    layers.check_fields(config)
    vectors.check(config)
    language_model.check_fields(config.model)
    decoding.check_sampling('generate', config.generate,
                            not config.generate.temperature)

  def load_data(self, config) -> dict[str, list[str]]:
    return corpus.load_tokens(config.data)

  def make_task(self, config, data, workdir, vocabs=None):
    return LMTask(config, data, workdir, vocabs)

  def generate(self, task, params, prefix, seed=0, num_tokens=None,
               what='generate.prefix', carry=None, **sampling) -> str:
    """`prefix` (named `what` in errors) read from `carry` (the initial
    state when None) and followed by `num_tokens` (default
    `generate.num_tokens`) tokens drawn as `generate.*`, or `sampling`,
    says."""
    gc, vocab = {**task.config.generate, **sampling}, task.vocab
    prefix_tokens = corpus.prefix_tokens(prefix, vocab, task.config.data,
                                         what)
    ids = decoding.generate(
        language_model.step_fn(task.model), params,
        jnp.asarray(vocab.encode(prefix_tokens))[None, :],
        task.model.initial_carry(1) if carry is None else carry,
        jax.random.PRNGKey(seed),
        num_tokens=num_tokens or gc['num_tokens'],
        temperature=gc['temperature'], top_k=gc['top_k'], top_p=gc['top_p'])
    return corpus.join(prefix_tokens + vocab.decode(np.asarray(ids[0])),
                       task.config.data)

  def read(self, task, params, text, carry=None, what='text'):
    """A text read in pieces, each from the state the last one left, is
    the text read at once."""
    tokens = corpus.prefix_tokens(text, task.vocab, task.config.data, what)
    ids = jnp.asarray(task.vocab.encode(tokens))[None, :]
    if carry is None:
      carry = task.model.initial_carry(1)
    logits, carry = language_model.apply_fn(task.model)(params, ids, carry)
    return np.asarray(jax.nn.softmax(logits[0, -1])), carry

  def vocabulary(self, task) -> list[str]:
    return list(task.vocab.itos)

  def exports(self, task, params) -> dict:
    """The step and predict functions of `language_model.exports`."""
    return language_model.exports(task.model, params)

  def write_outputs(self, task, params, predictions, directory) -> dict:
    """A sample from generate.prefix, printed and appended to samples.txt."""
    del predictions
    gc = task.config.generate
    text = self.generate(task, params, gc.prefix, task.config.seed)
    print(f'generated: {text}', flush=True)
    if distributed.is_primary():
      with open(os.path.join(directory, 'samples.txt'), 'a',
                encoding='utf-8') as f:
        f.write(f'# prefix={gc.prefix!r} temperature={gc.temperature} '
                f'top_k={gc.top_k} top_p={gc.top_p}\n{text}\n')
    return vectors.summary(task.pretrained)

  def predict(self, task, params, lines) -> list[dict]:
    """Each prefix continued (config.generate says how): {'text'}, printed
    on one line with newlines and tabs escaped (\\n, \\t). With
    `predict.stateful`, each prefix is read from the state the previous one
    left (its generated continuation is not read on): a stream."""
    results, carry = [], None
    for i, prefix in enumerate(lines, 1):
      what = f'input line {i}'
      results.append({'text': self.generate(
          task, params, prefix, task.config.seed, what=what, carry=carry)})
      if task.config.predict.stateful:
        _, carry = self.read(task, params, prefix, carry, what)
    return results
