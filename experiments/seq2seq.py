"""Sequence to sequence (many-to-many): translation and question answering.

An encoder reads the source, a decoder with attention writes the target.
Default: a bidirectional-GRU encoder and a GRU decoder with additive attention
translating Multi30k German to English, `python launch.py
--experiment=seq2seq` (the `multi30k_gru_attn` preset).

After training, valid and test are decoded (beam search by default) and
scored by exact match and sacrebleu's corpus BLEU; the hypotheses and
references are written one sentence per line, so that
`sacrebleu test_references.txt < test_hypotheses.txt` gives the reported
BLEU.
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
from rnn_jax import driver
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import plots
from rnn_jax import recurrence
from rnn_jax import training
from rnn_jax.data import builders
from rnn_jax.data import paired
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

NAME = 'seq2seq'
DEFAULT_PRESET = 'multi30k_gru_attn'
# One hypothesis (reference) a line, in the split's order.
PREDICTION_FILES = ('{split}_hypotheses.txt', '{split}_references.txt')


def get_config() -> ml_collections.ConfigDict:
  """Defaults = the `multi30k_gru_attn` preset."""
  c = ml_collections.ConfigDict()
  c.preset = DEFAULT_PRESET  # set by launch.py from --preset; a label only
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      embed_size=256,
      encoder_cell='gru',    # any of rnn_jax.cells.CELLS
      encoder_hidden_size=256,
      encoder_layers=1,
      bidirectional=True,
      decoder_cell='gru',
      hidden_size=256,       # the decoder's
      decoder_layers=1,
      attention='additive',  # none | additive (Bahdanau) | multiplicative (Luong)
      attention_size=0,      # additive: 0 = hidden_size
      readout_size=256,      # >0: tanh layer before the vocabulary projection
      dropout=0.3,           # embeddings, between layers, before the output
      # variational, recurrent_dropout, weight_dropout (off): layers.RNNStack
      **layers.REGULARISERS,
      unroll=1,
      scan='auto',           # linear cells: parallel | sequential | auto
      hierarchical=False,    # read each source line (a bAbI statement) on
                             # its own, then the statements: models.Seq2Seq
      max_statements=64,     # hierarchical: most statements a source has
                             # (the question included)
  ))
  c.data = ml_collections.ConfigDict(dict(
      name='multi30k',       # multi30k[/en-de] | fra_eng | scan[/length|...]
                             # | babi[/en-10k] | files
      tokenizer='punct',     # punct | whitespace | kim | sentencepiece
      lowercase=True,
      spm_vocab_size=8000,   # tokenizer=sentencepiece: pieces per side
      min_freq=2,            # rarer words are <unk> (word tokenizers)
      max_examples=0,        # >0: only the first pairs of train (fra_eng)
      task=0,                # babi: 0 all 20 tasks together, k only task k
      max_source_lines=0,    # >0: keep the last lines of a multi-line source
                             # (a bAbI story) before its question
      max_source_length=0,   # >0 truncates longer sources
      batch_size=64,
      eval_batch_size=128,
      bucket_width=8,
      split_seed=0,
      valid_fraction=0.1,    # carved off train when there is no valid split
      test_fraction=0.1,     # likewise for test
      train='',              # source<TAB>target files, for name=files
      valid='',
      test='',
  ))
  c.train = training.default_config(
      optimizer='adam',
      learning_rate=1e-3,
      clip_norm=1.0,
      schedule='cosine',
      teacher_forcing=1.0,   # probability of reading the gold previous token
      num_epochs=10,
  )
  c.decode = ml_collections.ConfigDict(dict(
      method='beam',         # greedy | beam | sample
      beam_size=5,
      alpha=0.6,             # beam length penalty ((5 + len) / 6) ** alpha
      max_length=0,          # 0: 2 x the longest train target + 10
      temperature=1.0,       # sample only
      top_k=0,
      top_p=1.0,
      bleu=True,             # score BLEU (off for one-word answers)
      num_heatmaps=4,        # attention heat maps of the first test examples
      examples='',           # 'src1|src2|...': translated at the end
  ))
  return c


def validate(config):
  configlib.check_choices(config, {
      'model.encoder_cell': tuple(cells.CELLS),
      'model.decoder_cell': tuple(cells.CELLS),
      'model.scan': recurrence.SCANS,
      'model.attention': models.ATTENTIONS,
      'data.name': tuple(builders.registered(NAME)) + ('files',),
      'data.tokenizer': paired.TOKENIZERS,
      'decode.method': decoding.METHODS,
  })
  configlib.check_at_least(config, {
      **dict.fromkeys([
          'model.embed_size', 'model.encoder_hidden_size',
          'model.encoder_layers', 'model.hidden_size', 'model.decoder_layers',
          'model.max_statements',
          'data.min_freq', 'data.batch_size', 'data.eval_batch_size',
          'data.bucket_width', 'decode.beam_size'], 1),
      **dict.fromkeys([
          'model.attention_size', 'model.readout_size', 'data.max_examples',
          'data.task', 'data.max_source_lines', 'data.max_source_length',
          'decode.max_length', 'decode.top_k', 'decode.num_heatmaps',
          'decode.alpha', 'decode.temperature'], 0),
      'data.spm_vocab_size': 8,
  })
  configlib.check_fraction(config, [
      'model.dropout', 'data.valid_fraction',
      'data.test_fraction'])
  layers.check_regularisers(config, cell_field='model.encoder_cell')
  if config.data.task > 20:
    raise InputError(f'config field data.task={config.data.task}: bAbI has '
                     'tasks 1-20 (0: all)')
  if not 0 <= config.train.teacher_forcing <= 1:
    raise InputError('config field train.teacher_forcing must be in [0, 1], '
                     f'got {config.train.teacher_forcing}')
  if not 0 < config.decode.top_p <= 1:
    raise InputError(f'config field decode.top_p={config.decode.top_p}: '
                     'must be in (0, 1]')


def load_data(config):
  return paired.load_splits(config.data)


# ----------------------------------------------------------------------------
# The task given to the training loop.


class Seq2SeqTask(training.SentenceTask):
  """Teacher-forced training as a `training.Task`, plus decoding."""

  def __init__(self, config, examples, workdir: str, vocabs=None):
    dc = config.data
    self.config = config
    # The tokenisers' models (sentencepiece) live beside the vocabularies.
    self.data = data = paired.Data(dc, examples or {}, os.path.join(
        workdir, driver.VOCABS), vocabs, statements=config.model.hierarchical)
    self.vocabs = data.vocabs
    self.model = models.Seq2Seq(
        source_vocab_size=len(data.source_vocab),
        target_vocab_size=len(data.target_vocab),
        separator_id=data.source_vocab.stoi.get(paired.SEP, -1),
        **config.model)
    for split, side in data.source.items():
      self.check_statements(side.ids, f'{split} example')
    vocab = data.target_vocab
    self.pad, self.bos, self.eos = (vocab.stoi[vocab_lib.PAD],
                                    vocab.stoi[vocab_lib.BOS],
                                    vocab.stoi[vocab_lib.EOS])
    # Any splits (predict mode has none: it translates raw sentences).
    self.batches = {split: pipelines.PairedBatches(
        data.source[split].ids, data.target[split].ids,
        dc.batch_size if split == 'train' else dc.eval_batch_size,
        pad_id=self.pad, bos_id=self.bos, eos_id=self.eos, seed=config.seed,
        bucket_width=dc.bucket_width, max_length=dc.max_source_length)
                    for split in data.source}
    # A training run writes the limit it derives into config.json, where
    # evaluation and prediction find it.
    if not config.decode.max_length:
      if 'train' not in data.target:
        raise InputError('config field decode.max_length: give the longest '
                         'output to decode (this workdir does not record it)')
      config.decode.max_length = 2 * max(
          len(t) for t in data.target['train'].ids) + 10
    self.max_length = config.decode.max_length

    model = self.model

    def step_fn(params, context, tokens, state):
      logits, state, _ = model.apply({'params': params}, tokens, state,
                                     context, method=models.Seq2Seq.step)
      return logits, state
    self.step_fn = step_fn
    self.encode = jax.jit(lambda params, tokens, lengths: model.apply(
        {'params': params}, tokens, lengths, method=models.Seq2Seq.encode))
    self.attention = jax.jit(lambda params, batch: models.seq2seq_logits(
        model, params, batch['tokens'], batch['lengths'],
        batch['target_inputs'])[1])

  def check_statements(self, sources, what: str):
    """A hierarchical model reads the last model.max_statements statements
    of a source: refuses one with more rather than drop its first ones."""
    limit, sep = self.config.model.max_statements, self.model.separator_id
    if sep < 0:   # not read as statements
      return
    for number, ids in enumerate(sources, 1):
      if (count := int((ids == sep).sum())) > limit:
        raise InputError(
            f'{what} {number}: {count} statements (the question '
            f'included), more than config field model.max_statements={limit}'
            ' (raise it, or cut the stories with data.max_source_lines)')

  def describe(self) -> str:
    data = self.data
    return (f'{self.config.data.name}: vocab {len(data.source_vocab)} source, '
            f'{len(data.target_vocab)} target; examples '
            + ', '.join(f'{s} {len(v.ids):,}' for s, v in data.source.items()))

  def init_params(self, rng):
    batch = self.batches['train'].batch(0, 0)
    return self.model.init(rng, batch['tokens'], batch['lengths'],
                           batch['target_inputs'][:, :2])['params']

  def loss(self, params, batch, carry, rng, train):
    logits, _ = models.seq2seq_logits(
        self.model, params, batch['tokens'], batch['lengths'],
        batch['target_inputs'], rng=rng, train=train,
        teacher_forcing=self.config.train.teacher_forcing)
    steps = jnp.arange(batch['targets'].shape[1])
    mask = ((steps[None, :] < batch['target_lengths'][:, None])
            * batch['weights'][:, None])
    nll, count = metrics.cross_entropy(logits, batch['targets'], mask)
    correct, _ = metrics.accuracy(logits, batch['targets'], mask)
    stats = {'loss': nll, 'count': count, 'accuracy': correct}
    return nll / jnp.maximum(count, 1.0), (stats, carry)

  def num_tokens(self, batch):
    return int(batch['target_lengths'].sum())

  def derived_metrics(self, m):
    return {'perplexity': metrics.perplexity(m['loss'])}

  # --------------------------------------------------------------------------
  # Decoding.

  def decode_ids(self, params, tokens, lengths, rng=None) -> np.ndarray:
    """Source batch -> [B, max_length] target ids (eos-filled after the end)."""
    dec = self.config.decode
    context, state = self.encode(params, tokens, lengths)
    return np.asarray(decoding.decode_with(
        dec.method, self.step_fn, params, context, state, rng, bos=self.bos,
        eos=self.eos, max_length=self.max_length, beam_size=dec.beam_size,
        alpha=dec.alpha, temperature=dec.temperature, top_k=dec.top_k,
        top_p=dec.top_p))

  def strip(self, ids) -> list[str]:
    """Ids up to (not including) the first <eos>, as target tokens."""
    ids = list(ids)
    if self.eos in ids:
      ids = ids[:ids.index(self.eos)]
    return self.data.target_vocab.decode(ids)

  def predict_batch(self, params, batch, rng) -> list[list[str]]:
    """Each row's hypothesis tokens."""
    ids = self.decode_ids(params, batch['tokens'], batch['lengths'], rng)
    return [self.strip(row) for row in ids]

  def translate(self, params, sentences: list[str]) -> list[str]:
    """Decodes raw source sentences with the configured method, in batches
    of data.eval_batch_size."""
    dc = self.config.data
    ids = self.data.encode_sources(sentences, dc)
    self.check_statements(ids, 'input line')
    out = []
    for start in range(0, len(ids), dc.eval_batch_size):
      chunk = ids[start:start + dc.eval_batch_size]
      batch = pipelines.pad_batch(chunk, [0] * len(chunk), len(chunk),
                                  max(len(i) for i in chunk), self.pad)
      out.extend(self.decode_ids(params, batch['tokens'], batch['lengths']))
    return [self.data.target_tokenizer.decode(self.strip(row)) for row in out]


# ----------------------------------------------------------------------------
# Scoring, files, heat maps.


def score_split(task: Seq2SeqTask, split: str, hypotheses,
                directory: str) -> dict:
  """Exact match (per bAbI task too) and BLEU of the decoded examples;
  writes <split>_hypotheses.txt and <split>_references.txt."""
  data = task.data
  done = [i for i, h in enumerate(hypotheses) if h is not None]
  gold = data.target[split].tokens
  hyp_text = [data.target_tokenizer.decode(hypotheses[i]) for i in done]
  refs = [data.references[split][i] for i in done]
  for name, lines in zip(PREDICTION_FILES, (hyp_text, refs)):
    with open(os.path.join(directory, name.format(split=split)), 'w',
              encoding='utf-8') as f:
      f.writelines(line + '\n' for line in lines)
  correct = [hypotheses[i] == gold[i] for i in done]
  result = {f'{split}/exact_match': float(np.mean(correct)) if done else 0.0}
  tasks = [data.examples[split][i].get('task', 0) for i in done]
  if any(tasks):
    per_task = metrics.group_means(correct, tasks)
    result.update({f'{split}/exact_match_task{k}': v
                   for k, v in per_task.items()})
    result[f'{split}/tasks_passed'] = sum(v >= 0.95 for v in per_task.values())
  if task.config.decode.bleu and done:
    # A lower-casing model is scored against the cased references with
    # BLEU's own lower-casing (signature case:lc).
    score, signature = metrics.corpus_bleu(
        hyp_text, refs, lowercase=task.config.data.lowercase)
    result[f'{split}/bleu'] = score
    result[f'{split}/bleu_signature'] = signature
  return result


def plot_attention(task: Seq2SeqTask, params, split: str, hypotheses,
                   count: int, directory: str):
  """plots/attention_<i>.png: the decoder's attention over the source while
  it writes its own hypothesis, for the first `count` examples."""
  data = task.data
  for i in range(min(count, len(hypotheses))):
    if hypotheses[i] is None:
      continue
    src = data.source[split].ids[i]
    hyp = data.target_vocab.encode(hypotheses[i])
    batch = pipelines.PairedBatches(
        [src], [hyp], 1, pad_id=task.pad, bos_id=task.bos,
        eos_id=task.eos).batch(0, 0)
    weights = np.asarray(task.attention(params, batch))[0]
    plots.attention(os.path.join(directory, 'plots', f'attention_{i}.png'),
                    weights[:len(hyp) + 1, :len(src)],
                    data.source_vocab.decode(src),
                    list(hypotheses[i]) + [vocab_lib.EOS])


make_task = Seq2SeqTask


def write_outputs(task: Seq2SeqTask, params, predictions,
                  directory: str) -> dict:
  """Scores valid and test, writes their hypotheses and references and the
  test attention maps; translates decode.examples."""
  config = task.config
  dec = config.decode
  summary = {}
  for split, hypotheses in predictions.items():
    scores = score_split(task, split, hypotheses, directory)
    summary.update(scores)
    print(f'{split} ({dec.method}) | ' + ' '.join(
        f'{k.split("/", 1)[1]} {v:.4g}' for k, v in scores.items()
        if isinstance(v, float) and 'task' not in k), flush=True)
    if f'{split}/bleu_signature' in scores:
      print(f'  sacrebleu {scores[f"{split}/bleu_signature"]}', flush=True)
    if split == 'test' and config.model.attention != 'none':
      plot_attention(task, params, split, hypotheses, dec.num_heatmaps,
                     directory)
  if dec.examples:
    sentences = [s.strip() for s in dec.examples.split('|') if s.strip()]
    translations = task.translate(params, sentences)
    summary['examples'] = dict(zip(sentences, translations))
    for s, t in zip(sentences, translations):
      print(f'  {s} => {t}', flush=True)
  return summary


def predict(task: Seq2SeqTask, params, sentences: list[str]) -> list[str]:
  """The translation (or answer) of each source sentence, decoded as
  config.decode says."""
  return task.translate(params, sentences)
