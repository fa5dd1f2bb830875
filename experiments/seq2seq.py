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
from rnn_jax import metrics
from rnn_jax import models
from rnn_jax import training
from rnn_jax.data import builders
from rnn_jax.data import files
from rnn_jax.data import pipelines
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

NAME = 'seq2seq'
DEFAULT_PRESET = 'multi30k_gru_attn'
SPLITS = ('train', 'valid', 'test')
TOKENIZERS = pipelines.TOKENIZERS + ('sentencepiece',)
METHODS = ('greedy', 'beam', 'sample')
RESERVED = [vocab_lib.PAD, vocab_lib.UNK, vocab_lib.BOS, vocab_lib.EOS]


def get_config() -> ml_collections.ConfigDict:
  """Defaults = the `multi30k_gru_attn` preset."""
  c = ml_collections.ConfigDict()
  c.preset = DEFAULT_PRESET  # set by launch.py from --preset; a label only
  c.seed = 0
  c.model = ml_collections.ConfigDict(dict(
      embed_size=256,
      encoder_cell='gru',    # rnn | gru | lstm
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
      unroll=1,
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
  """Rejects values no code path accepts, before anything is written."""
  configlib.check_choices(config, {
      'model.encoder_cell': tuple(cells.CELLS),
      'model.decoder_cell': tuple(cells.CELLS),
      'model.attention': models.ATTENTIONS,
      'data.name': tuple(builders.registered(NAME)) + ('files',),
      'data.tokenizer': TOKENIZERS,
      'decode.method': METHODS,
  })
  training.validate_config(config)
  configlib.check_at_least(config, {
      **dict.fromkeys([
          'model.embed_size', 'model.encoder_hidden_size',
          'model.encoder_layers', 'model.hidden_size', 'model.decoder_layers',
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
  if config.data.task > 20:
    raise InputError(f'config field data.task={config.data.task}: bAbI has '
                     'tasks 1-20 (0: all)')
  if not 0 <= config.train.teacher_forcing <= 1:
    raise InputError('config field train.teacher_forcing must be in [0, 1], '
                     f'got {config.train.teacher_forcing}')
  if not 0 < config.decode.top_p <= 1:
    raise InputError(f'config field decode.top_p={config.decode.top_p}: '
                     'must be in (0, 1]')


# ----------------------------------------------------------------------------
# Data: (source, target) texts per split, tokenisers, ids.


def load_splits(dc) -> dict[str, list[dict]]:
  """train/valid/test examples ({'source', 'target'}[, 'task']); a missing
  valid or test split is carved off train with a fixed seed."""
  if dc.name == 'files':
    splits = {'train': dc.train}
    splits.update({s: dc[s] for s in ('valid', 'test') if dc[s]})
    data = {split: [{'source': s, 'target': t} for s, t in files.read_pairs(
        path, ('source', 'target'), what=f'data.{split} file')]
            for split, path in splits.items()}
  else:
    data = builders.load(dc.name)
  if dc.task:
    if not dc.name.startswith('babi'):
      raise InputError(f'config field data.task={dc.task} is for babi, not '
                       f'{dc.name}')
    data = {s: [e for e in examples if e['task'] == dc.task]
            for s, examples in data.items()}
    if not data['train']:
      raise InputError(f'{dc.name} has no training data for task {dc.task}')
  if dc.max_examples:
    data['train'] = data['train'][:dc.max_examples]
  return pipelines.carve_missing(data, dc)


def source_text(text: str, dc) -> str:
  """A multi-line source (story + question) on one line, cut to the last
  `max_source_lines` lines before the final one."""
  lines = text.split('\n')
  if dc.max_source_lines and len(lines) > dc.max_source_lines + 1:
    lines = lines[-dc.max_source_lines - 1:]
  return ' '.join(lines)


def reference_text(text: str, dc) -> str:
  """The target as BLEU's reference: spacing normalised, lower-cased when
  the model's text is."""
  text = ' '.join(pipelines.normalize_spaces(text).split())
  return text.lower() if dc.lowercase else text


class Tokenizer:
  """Text <-> tokens for one side: words ('punct', 'whitespace', 'kim') or
  sentencepiece pieces (a unigram model trained on that side's train
  texts, saved in the workdir)."""

  def __init__(self, dc, texts: list[str] | None, workdir: str, side: str):
    """`texts`: the side's train texts (None: a trained workdir's model)."""
    self.dc = dc
    self.spm = None
    if dc.tokenizer == 'sentencepiece':
      import sentencepiece  # pylint: disable=g-import-not-at-top
      prefix = os.path.join(workdir, f'spm_{side}')
      if not os.path.exists(prefix + '.model'):
        if texts is None:
          raise InputError(f'no spm_{side}.model in {workdir}: not a trained '
                           'sentencepiece seq2seq workdir')
        os.makedirs(workdir, exist_ok=True)
        try:
          sentencepiece.SentencePieceTrainer.train(
              sentence_iterator=iter([self._normalize(t) for t in texts]),
              model_prefix=prefix, vocab_size=dc.spm_vocab_size,
              model_type='unigram', character_coverage=1.0,
              bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2,
              num_threads=1, shuffle_input_sentence=False)
        except RuntimeError as e:
          raise InputError(f'sentencepiece on the {side} side: '
                           f'{str(e).splitlines()[-1]} (data.spm_vocab_size='
                           f'{dc.spm_vocab_size})') from None
      self.spm = sentencepiece.SentencePieceProcessor(
          model_file=prefix + '.model')

  def _normalize(self, text: str) -> str:
    text = pipelines.normalize_spaces(text)
    return text.lower() if self.dc.lowercase else text

  def encode(self, text: str) -> list[str]:
    if self.spm is not None:
      return self.spm.encode(self._normalize(text), out_type=str)
    return pipelines.split_words(text, self.dc.tokenizer,
                                 lowercase=self.dc.lowercase)

  def decode(self, tokens: list[str]) -> str:
    if self.spm is not None:
      return self.spm.decode_pieces(list(tokens))
    return pipelines.detokenize(tokens)


class Side:
  """One side (source or target) of a split: texts, tokens and ids."""

  def __init__(self, texts, tokens, vocab: vocab_lib.Vocab):
    self.texts, self.tokens = texts, tokens
    self.ids = [vocab.encode(t) for t in tokens]


def build_vocab(tokens: list[list[str]], dc) -> vocab_lib.Vocab:
  min_freq = 1 if dc.tokenizer == 'sentencepiece' else dc.min_freq
  return vocab_lib.Vocab.build((w for t in tokens for w in t),
                               min_freq=min_freq, reserved=RESERVED)


class Data:
  """Tokenisers, vocabularies and the given splits' two sides."""

  def __init__(self, dc, examples: dict[str, list[dict]], workdir: str,
               vocabularies=None):
    """`vocabularies`: (source, target) of a trained workdir, whose
    tokenisers are loaded from there too; None builds both on train."""
    self.examples = examples
    sources = {s: [source_text(e['source'], dc) for e in ex]
               for s, ex in examples.items()}
    targets = {s: [e['target'] for e in ex] for s, ex in examples.items()}
    train = vocabularies is None
    self.source_tokenizer = Tokenizer(
        dc, sources['train'] if train else None, workdir, 'source')
    self.target_tokenizer = Tokenizer(
        dc, targets['train'] if train else None, workdir, 'target')
    source_tokens = {s: [self.source_tokenizer.encode(t) for t in texts]
                     for s, texts in sources.items()}
    target_tokens = {s: [self.target_tokenizer.encode(t) for t in texts]
                     for s, texts in targets.items()}
    if train:
      vocabularies = (build_vocab(source_tokens['train'], dc),
                      build_vocab(target_tokens['train'], dc))
    self.source_vocab, self.target_vocab = vocabularies
    self.source = {s: Side(sources[s], source_tokens[s], self.source_vocab)
                   for s in examples}
    self.target = {s: Side(targets[s], target_tokens[s], self.target_vocab)
                   for s in examples}
    self.references = {s: [reference_text(t, dc) for t in targets[s]]
                       for s in examples}
    for split in examples:
      empty = [i for i, (a, b) in enumerate(zip(self.source[split].ids,
                                                self.target[split].ids))
               if not len(a) or not len(b)]
      if empty:
        raise InputError(f'{dc.name} {split}: example {empty[0] + 1} has an '
                         'empty source or target after tokenisation')

  @classmethod
  def load(cls, dc, examples: dict[str, list[dict]], workdir: str) -> 'Data':
    """`examples` encoded as the model trained in `workdir` reads them."""
    return cls(dc, examples, workdir, vocabularies=tuple(
        training.load_vocab(workdir, f'{side}_vocab.json', NAME)
        for side in ('source', 'target')))


# ----------------------------------------------------------------------------
# The task given to the training loop.


def make_model(config, data: Data) -> models.Seq2Seq:
  m = config.model
  return models.Seq2Seq(
      source_vocab_size=len(data.source_vocab),
      target_vocab_size=len(data.target_vocab), embed_size=m.embed_size,
      encoder_cell=m.encoder_cell, encoder_hidden_size=m.encoder_hidden_size,
      encoder_layers=m.encoder_layers, bidirectional=m.bidirectional,
      decoder_cell=m.decoder_cell, hidden_size=m.hidden_size,
      decoder_layers=m.decoder_layers, attention=m.attention,
      attention_size=m.attention_size, readout_size=m.readout_size,
      dropout=m.dropout, unroll=m.unroll)


class Seq2SeqTask:
  """Teacher-forced training as a `training.Task`, plus decoding."""
  reset_carry_every_batch = True

  def __init__(self, config, data: Data):
    dc = config.data
    self.config, self.data = config, data
    self.model = make_model(config, data)
    vocab = data.target_vocab
    self.pad, self.bos, self.eos = (vocab.stoi[vocab_lib.PAD],
                                    vocab.stoi[vocab_lib.BOS],
                                    vocab.stoi[vocab_lib.EOS])

    def batches(split, batch_size):
      return pipelines.PairedBatches(
          data.source[split].ids, data.target[split].ids, batch_size,
          pad_id=self.pad, bos_id=self.bos, eos_id=self.eos, seed=config.seed,
          bucket_width=dc.bucket_width, max_length=dc.max_source_length)
    # Any splits (predict mode has none: it translates raw sentences).
    self.batches = {
        split: batches(split, dc.batch_size if split == 'train'
                       else dc.eval_batch_size) for split in data.source}
    self.steps_per_epoch = (self.batches['train'].steps_per_epoch
                            if 'train' in self.batches else 0)
    # A training run writes the limit it derives into config.json, where
    # evaluation and prediction find it.
    self.max_length = config.decode.max_length
    if not self.max_length:
      if 'train' not in data.target:
        raise InputError('config field decode.max_length: give the longest '
                         'output to decode (this workdir does not record it)')
      self.max_length = 2 * max(len(t) for t in data.target['train'].ids) + 10

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

  def init_params(self, rng):
    batch = self.batches['train'].batch(0, 0)
    return self.model.init(rng, batch['tokens'], batch['lengths'],
                           batch['target_inputs'][:, :2])['params']

  def initial_carry(self, split):
    del split
    return ()

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

  def train_batch(self, epoch, index):
    return self.batches['train'].batch(epoch, index)

  def eval_batches(self, split):
    return self.batches[split].eval_batches()

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
    common = dict(bos=self.bos, eos=self.eos, max_length=self.max_length)
    if dec.method == 'beam':
      out, _ = decoding.beam_search(self.step_fn, params, context, state,
                                    beam_size=dec.beam_size, alpha=dec.alpha,
                                    **common)
    else:
      out = decoding.decode(
          self.step_fn, params, context, state, rng,
          temperature=0.0 if dec.method == 'greedy' else dec.temperature,
          top_k=dec.top_k, top_p=dec.top_p, **common)
    return np.asarray(out)

  def strip(self, ids) -> list[str]:
    """Ids up to (not including) the first <eos>, as target tokens."""
    ids = list(ids)
    if self.eos in ids:
      ids = ids[:ids.index(self.eos)]
    return self.data.target_vocab.decode(ids)

  def decode_split(self, params, split: str, max_batches: int = 0,
                   seed: int = 0) -> list[list[str] | None]:
    """Every example's hypothesis tokens, in the split's order (None past
    the first `max_batches` batches when > 0)."""
    out: list = [None] * len(self.data.source[split].ids)
    rng = jax.random.PRNGKey(seed)
    for i, batch in enumerate(self.batches[split].eval_batches()):
      if max_batches and i >= max_batches:
        break
      ids = self.decode_ids(params, batch['tokens'], batch['lengths'],
                            jax.random.fold_in(rng, i))
      for row, index in enumerate(batch['index']):
        if index >= 0:
          out[index] = self.strip(ids[row])
    return out

  def translate(self, params, sentences: list[str]) -> list[str]:
    """Decodes raw source sentences with the configured method, in batches
    of data.eval_batch_size."""
    dc = self.config.data
    ids = []
    for number, sentence in enumerate(sentences, 1):
      ids.append(self.data.source_vocab.encode(
          self.data.source_tokenizer.encode(source_text(sentence, dc))))
      if not len(ids[-1]):
        raise InputError(f'input line {number}: no tokens in {sentence!r}')
    out = []
    for start in range(0, len(ids), dc.eval_batch_size):
      chunk = ids[start:start + dc.eval_batch_size]
      batch = pipelines.pad_batch(chunk, [0] * len(chunk), len(chunk),
                                  max(len(i) for i in chunk), self.pad)
      out.extend(self.decode_ids(params, batch['tokens'], batch['lengths']))
    return [self.data.target_tokenizer.decode(self.strip(row)) for row in out]


# ----------------------------------------------------------------------------
# Scoring, files, heat maps.


def score_split(task: Seq2SeqTask, split: str, hypotheses, workdir: str,
                bleu: bool) -> dict:
  """Exact match (per bAbI task too) and BLEU of the decoded examples;
  writes <split>_hypotheses.txt and <split>_references.txt."""
  data = task.data
  done = [i for i, h in enumerate(hypotheses) if h is not None]
  gold = data.target[split].tokens
  hyp_text = [data.target_tokenizer.decode(hypotheses[i]) for i in done]
  refs = [data.references[split][i] for i in done]
  for name, lines in (('hypotheses', hyp_text), ('references', refs)):
    with open(os.path.join(workdir, f'{split}_{name}.txt'), 'w',
              encoding='utf-8') as f:
      f.writelines(line + '\n' for line in lines)
  correct = np.array([hypotheses[i] == gold[i] for i in done], np.float64)
  result = {f'{split}/exact_match': float(correct.mean()) if done else 0.0}
  tasks = [data.examples[split][i].get('task', 0) for i in done]
  if any(tasks):
    tasks = np.array(tasks)
    per_task = {int(k): float(correct[tasks == k].mean())
                for k in np.unique(tasks)}
    result.update({f'{split}/exact_match_task{k}': v
                   for k, v in per_task.items()})
    result[f'{split}/tasks_passed'] = sum(v >= 0.95 for v in per_task.values())
  if bleu and done:
    score, signature = metrics.corpus_bleu(hyp_text, refs)
    result[f'{split}/bleu'] = score
    result[f'{split}/bleu_signature'] = signature
  return result


def plot_attention(task: Seq2SeqTask, params, split: str, hypotheses,
                   count: int, directory: str):
  """plots/attention_<i>.png: the decoder's attention over the source while
  it writes its own hypothesis, for the first `count` examples."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  data = task.data
  os.makedirs(directory, exist_ok=True)
  for i in range(min(count, len(hypotheses))):
    if hypotheses[i] is None:
      continue
    src = data.source[split].ids[i]
    hyp = data.target_vocab.encode(hypotheses[i])
    batch = pipelines.PairedBatches(
        [src], [hyp], 1, pad_id=task.pad, bos_id=task.bos,
        eos_id=task.eos).batch(0, 0)
    weights = np.asarray(task.attention(params, batch))[0]
    weights = weights[:len(hyp) + 1, :len(src)]
    src_words = data.source_vocab.decode(src)
    out_words = list(hypotheses[i]) + [vocab_lib.EOS]
    fig, ax = plt.subplots(figsize=(2 + 0.35 * len(src_words),
                                    1.5 + 0.3 * len(out_words)))
    ax.imshow(weights, cmap='Blues', aspect='auto', vmin=0, vmax=1)
    ax.set_xticks(range(len(src_words)), src_words, rotation=90)
    ax.set_yticks(range(len(out_words)), out_words)
    ax.set_xlabel('source')
    ax.set_ylabel('output')
    fig.tight_layout()
    fig.savefig(os.path.join(directory, f'attention_{i}.png'), dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------
# Entry point.


def run(config, workdir: str) -> dict:
  """Trains (or resumes), decodes valid and test, writes summary.json."""
  validate(config)
  dc = config.data
  data = Data(dc, load_splits(dc), workdir)
  task = Seq2SeqTask(config, data)
  print(f'{dc.name}: vocab {len(data.source_vocab)} source, '
        f'{len(data.target_vocab)} target; examples '
        + ', '.join(f'{s} {len(data.source[s].ids):,}' for s in SPLITS),
        flush=True)
  config.decode.max_length = task.max_length
  training.write_config(workdir, config)
  data.source_vocab.save(os.path.join(workdir, 'source_vocab.json'))
  data.target_vocab.save(os.path.join(workdir, 'target_vocab.json'))

  result = training.train_and_evaluate(task, config, workdir)
  return _finish(task, result['state'].params, workdir,
                 {'experiment': NAME, 'preset': config.preset,
                  **result['summary']})


def _finish(task: Seq2SeqTask, params, directory: str, summary: dict) -> dict:
  """Decodes valid and test, scores them, writes the hypotheses, attention
  maps and summary.json into `directory` (the workdir, or an
  evaluation's); translates decode.examples."""
  config = task.config
  dec = config.decode
  for split in ('valid', 'test'):
    hypotheses = task.decode_split(params, split, config.train.eval_steps,
                                   config.seed)
    scores = score_split(task, split, hypotheses, directory, dec.bleu)
    summary.update(scores)
    print(f'{split} ({dec.method}) | ' + ' '.join(
        f'{k.split("/", 1)[1]} {v:.4g}' for k, v in scores.items()
        if isinstance(v, float) and 'task' not in k), flush=True)
    if f'{split}/bleu_signature' in scores:
      print(f'  sacrebleu {scores[f"{split}/bleu_signature"]}', flush=True)
    if split == 'test' and config.model.attention != 'none':
      plot_attention(task, params, split, hypotheses, dec.num_heatmaps,
                     os.path.join(directory, 'plots'))
  if dec.examples:
    sentences = [s.strip() for s in dec.examples.split('|') if s.strip()]
    translations = task.translate(params, sentences)
    summary['examples'] = dict(zip(sentences, translations))
    for s, t in zip(sentences, translations):
      print(f'  {s} => {t}', flush=True)
  return training.write_summary(directory, summary)


def evaluate(config, workdir: str, step: int | None = None) -> dict:
  """Recomputes a checkpoint's valid and test metrics and hypotheses."""
  params, step = training.load_params(workdir, step)
  task = Seq2SeqTask(config, Data.load(config.data, load_splits(config.data),
                                       workdir))
  return _finish(task, params, training.evaluation_dir(workdir, step),
                 training.evaluate_checkpoint(task, config, params, step, NAME))


def predict(config, workdir: str, sentences: list[str],
            step: int | None = None) -> list[str]:
  """The translation (or answer) of each source sentence, decoded as
  config.decode says; needs only the workdir."""
  task = Seq2SeqTask(config, Data.load(config.data, {}, workdir))
  params, _ = training.load_params(workdir, step)
  return task.translate(params, sentences)
