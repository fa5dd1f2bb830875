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

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from rnn_jax import configlib
from rnn_jax import decoding
from rnn_jax import experiment
from rnn_jax import layers
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax.models import seq2seq as seq2seq_model
from rnn_jax import plots
from rnn_jax import training
from rnn_jax import workdir as workdir_lib
from rnn_jax.configlib import Field
from rnn_jax.data import builders
from rnn_jax.data import paired
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

# One hypothesis (reference) a line, in the split's order.
PREDICTION_FILES = ('{split}_hypotheses.txt', '{split}_references.txt')


FIELDS = {
    **configlib.run_fields('seq2seq', 'multi30k_gru_attn'),
    'model.embed_size': Field(256, 'source and target embeddings',
                              at_least=1),
    'model.encoder_cell': dataclasses.replace(
        layers.FIELDS['cell'], default='gru', help="the encoder's recurrence"),
    'model.encoder_hidden_size': Field(256, "the encoder's units per layer "
                                       '(and direction)', at_least=1),
    'model.encoder_layers': Field(1, "the encoder's layers", at_least=1),
    'model.bidirectional': Field(True, 'the encoder reads both directions'),
    'model.decoder_cell': dataclasses.replace(
        layers.FIELDS['cell'], default='gru', help="the decoder's recurrence"),
    'model.hidden_size': Field(256, "the decoder's units per layer",
                               at_least=1),
    'model.decoder_layers': Field(1, "the decoder's layers", at_least=1),
    'model.attention': Field('additive', 'additive: Bahdanau; '
                             'multiplicative: Luong', choices=models.ATTENTIONS),
    'model.attention_size': Field(0, 'additive attention: 0 = hidden_size',
                                  at_least=0),
    'model.readout_size': Field(256, '>0: a tanh layer before the vocabulary '
                                'projection', at_least=0),
    'model.dropout': configlib.fraction(0.3, 'on the embeddings, between '
                                        'layers and before the output'),
    **configlib.group('model', layers.REGULARISERS),
    **configlib.group('model', layers.FIELDS, *layers.RUN_FIELDS),
    'model.hierarchical': Field(False, 'read each source line (a bAbI '
                                'statement) on its own, then the statements'),
    'model.max_statements': Field(64, 'hierarchical: most statements a '
                                  'source has (the question included)',
                                  at_least=1),
    'data.name': Field('multi30k', 'the dataset (and its configuration); '
                       'files: data.train, data.valid, data.test',
                       choices=(*builders.registered('seq2seq'), 'files')),
    'data.tokenizer': Field('punct', 'how a line becomes tokens',
                            choices=paired.TOKENIZERS),
    'data.lowercase': Field(True, 'lower-case the text'),
    'data.spm_vocab_size': Field(8000, 'tokenizer=sentencepiece: pieces per '
                                 'side', at_least=8),
    'data.min_freq': Field(2, 'rarer words are <unk> (word tokenizers)',
                           at_least=1),
    'data.max_examples': Field(0, '>0: only the first pairs of train',
                               at_least=0),
    'data.task': Field(0, 'babi: 0 all 20 tasks together, k only task k',
                       at_least=0, at_most=20),
    'data.max_source_lines': Field(0, '>0: keep the last lines of a '
                                   'multi-line source (a bAbI story) before '
                                   'its question', at_least=0),
    'data.max_source_length': Field(0, '>0: truncate longer sources',
                                    at_least=0),
    **configlib.group('data', pipelines.SENTENCE_FIELDS, eval_batch_size=128),
    **readers.file_fields('source<TAB>target lines'),
    **configlib.group('train', training.FIELDS, optimizer='adam',
                      learning_rate=1e-3, clip_norm=1.0, schedule='cosine'),
    'train.teacher_forcing': Field(1.0, 'probability of reading the gold '
                                   'previous token', at_least=0, at_most=1),
    **configlib.group('decode', decoding.FIELDS, temperature=1.0),
    'decode.bleu': Field(True, 'score BLEU (off for one-word answers)'),
    'decode.num_heatmaps': Field(4, 'attention heat maps of the first test '
                                 'examples', at_least=0),
    'decode.examples': Field('', "'src1|src2|...': translated at the end"),
}


# ----------------------------------------------------------------------------
# The task given to the training loop.


class Seq2SeqTask(training.SentenceTask):
  """Teacher-forced training as a `training.Task`, plus decoding."""

  def __init__(self, config, examples, workdir: str, vocabs=None):
    dc = config.data
    self.config = config
    # The tokenisers' models (sentencepiece) live beside the vocabularies.
    self.data = data = paired.Data(dc, examples or {}, os.path.join(
        workdir, workdir_lib.VOCABS), vocabs,
        config.model.max_statements if config.model.hierarchical else 0)
    self.vocabs = data.vocabs
    self.model = models.Seq2Seq(
        source_vocab_size=len(data.source_vocab),
        target_vocab_size=len(data.target_vocab),
        separator_id=data.source_vocab.stoi.get(paired.SEP, -1),
        **config.model)
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
    self.attention = jax.jit(lambda params, batch: models.seq2seq_logits(
        self.model, params, batch['tokens'], batch['lengths'],
        batch['target_inputs'])[1])

  def describe(self) -> str:
    data = self.data
    return (f'{self.config.data.name}: vocab {len(data.source_vocab)} source, '
            f'{len(data.target_vocab)} target; examples '
            + ', '.join(f'{s} {len(v.ids):,}' for s, v in data.source.items()))

  def init_params(self, rng):
    batch = self.batches['train'].batch(0, 0)
    return models.init_params(self.model, rng, batch['tokens'],
                              batch['lengths'], batch['target_inputs'][:, :2])

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

  def decode_ids(self, params, tokens, lengths, rng=None) -> np.ndarray:
    """Source batch -> [B, max_length] target ids (eos-filled after the end)."""
    dec = self.config.decode   # its max_length: self.max_length
    return np.asarray(models.decode(
        self.model, params, tokens, lengths, rng, bos=self.bos, eos=self.eos,
        **{name: dec[name] for name in decoding.FIELDS}))

  def strip(self, ids) -> list[str]:
    """Ids up to (not including) the first <eos>, as target tokens."""
    ids = list(ids)
    return self.data.target_vocab.decode(
        ids[:ids.index(self.eos)] if self.eos in ids else ids)

  def translate(self, params, sentences: list[str]) -> list[dict]:
    """Raw source sentences decoded as configured, data.eval_batch_size at a
    time: {'output', 'log_prob' (<eos> included, given the source)}."""
    dc = self.config.data
    ids = self.data.encode_sources(sentences, dc)
    out = []
    for start in range(0, len(ids), dc.eval_batch_size):
      chunk = ids[start:start + dc.eval_batch_size]
      batch = pipelines.pad_batch(chunk, [0] * len(chunk), len(chunk),
                                  max(len(i) for i in chunk), self.pad)
      decoded = self.decode_ids(params, batch['tokens'], batch['lengths'])
      scores = models.log_likelihood(
          self.model, params, batch['tokens'], batch['lengths'], decoded,
          bos=self.bos, eos=self.eos)
      out += [{'output': self.data.target_tokenizer.decode(self.strip(row)),
               'log_prob': float(score)} for row, score in zip(decoded, scores)]
    return out


# ----------------------------------------------------------------------------
# Scoring, files, heat maps.


def _scored(task: Seq2SeqTask, split: str, hypotheses):
  """(indices, detokenised hypotheses, references) of the decoded ones."""
  done = [i for i, h in enumerate(hypotheses) if h is not None]
  return (done,
          [task.data.target_tokenizer.decode(hypotheses[i]) for i in done],
          [task.data.references[split][i] for i in done])


def exact_match(task: Seq2SeqTask, split: str, hypotheses) -> float:
  """The share of decoded examples whose tokens are the gold ones."""
  gold = task.data.target[split].tokens
  correct = [hypotheses[i] == gold[i] for i in _scored(task, split,
                                                        hypotheses)[0]]
  return float(np.mean(correct)) if correct else 0.0


def bleu(task: Seq2SeqTask, split: str, hypotheses, signature=False):
  """sacrebleu's corpus BLEU of the decoded examples (0 for none), and with
  `signature` its signature; a lower-casing model is scored against the
  cased references with BLEU's own lower-casing (case:lc)."""
  _, hyp_text, refs = _scored(task, split, hypotheses)
  score = (metrics.corpus_bleu(hyp_text, refs, lowercase=task.config.data
                               .lowercase) if hyp_text else (0.0, ''))
  return score if signature else score[0]


def score_split(task: Seq2SeqTask, split: str, hypotheses,
                directory: str) -> dict:
  """Exact match (per bAbI task too) and BLEU of the decoded examples;
  writes <split>_hypotheses.txt and <split>_references.txt."""
  data = task.data
  done, hyp_text, refs = _scored(task, split, hypotheses)
  for name, lines in zip(PREDICTION_FILES, (hyp_text, refs)):
    with open(os.path.join(directory, name.format(split=split)), 'w',
              encoding='utf-8') as f:
      f.writelines(line + '\n' for line in lines)
  result = {f'{split}/exact_match': exact_match(task, split, hypotheses)}
  tasks = [data.examples[split][i].get('task', 0) for i in done]
  if any(tasks):
    gold = data.target[split].tokens
    per_task = metrics.group_means([hypotheses[i] == gold[i] for i in done],
                                   tasks)
    result.update({f'{split}/exact_match_task{k}': v
                   for k, v in per_task.items()})
    result[f'{split}/tasks_passed'] = sum(v >= 0.95 for v in per_task.values())
  if task.config.decode.bleu and done:
    result[f'{split}/bleu'], result[f'{split}/bleu_signature'] = bleu(
        task, split, hypotheses, signature=True)
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


class Seq2Seq(experiment.Experiment):
  """Read a source, write a target: translation, question answering."""
  NAME = 'seq2seq'
  DEFAULT_PRESET = 'multi30k_gru_attn'
  FIELDS = FIELDS
  PREDICTION_FILES = PREDICTION_FILES
  SWEEP_METRICS = ('valid/bleu', 'test/bleu', 'test/exact_match')

  def make_task(self, config, data, workdir, vocabs=None):
    return Seq2SeqTask(config, data, workdir, vocabs)

  def predict_batch(self, task, params, batch, rng) -> list[list[str]]:
    """Each row's hypothesis tokens."""
    ids = task.decode_ids(params, batch['tokens'], batch['lengths'], rng)
    return [task.strip(row) for row in ids]

  def evaluators(self):
    return {'bleu': experiment.Evaluator(bleu, higher_is_better=True),
            'exact_match': experiment.Evaluator(exact_match,
                                                higher_is_better=True)}

  def validate(self, config):
    """What the declarations cannot say: fields that constrain each other."""
    layers.check_fields(config)
    decoding.check_sampling('decode', config.decode,
                            config.decode.method != 'sample')

  def load_data(self, config):
    return paired.load_splits(config.data)

  def write_outputs(self, task: Seq2SeqTask, params, predictions,
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
      translations = [r['output'] for r in task.translate(params, sentences)]
      summary['examples'] = dict(zip(sentences, translations))
      for s, t in zip(sentences, translations):
        print(f'  {s} => {t}', flush=True)
    return summary

  def exports(self, task: Seq2SeqTask, params) -> dict:
    """`translate`: greedy target ids of padded source ids."""
    return seq2seq_model.exports(task.model, params, task.pad, task.bos,
                                 task.eos, task.max_length)

  def predict(self, task: Seq2SeqTask, params,
              sentences: list[str]) -> list[dict]:
    """Each source sentence's translation (or answer), decoded as
    config.decode says, and its log-probability: printed tab-separated."""
    return task.translate(params, sentences)
