"""Sequence-to-sequence data: (source, target) examples, tokenisers, ids."""

from __future__ import annotations

import os

import numpy as np

from rnn_jax.data import builders
from rnn_jax.data import pipelines
from rnn_jax.data import readers
from rnn_jax.data import vocab as vocab_lib
from rnn_jax.errors import InputError

TOKENIZERS = pipelines.TOKENIZERS + ('sentencepiece',)
RESERVED = [vocab_lib.PAD, vocab_lib.UNK, vocab_lib.BOS, vocab_lib.EOS]
# Ends each statement of a source read as statements (`Data(statements=)`).
SEP = '<sep>'


def load_splits(dc) -> dict[str, list[dict]]:
  """train/valid/test examples ({'source', 'target'}[, 'task']); a missing
  valid or test split is carved off train with a fixed seed."""
  if dc.name == 'files':
    splits = {'train': dc.train}
    splits.update({s: dc[s] for s in ('valid', 'test') if dc[s]})
    data = {split: [{'source': s, 'target': t} for _, (s, t) in
                    readers.read_fields(path, ('source', 'target'),
                                        what=f'data.{split} file',
                                        normalize=dc.normalize)]
            for split, path in splits.items()}
  else:
    # max_examples takes the first pairs of train, after a task's filter.
    data = builders.load(dc.name, {'train': dc.max_examples}
                         if dc.max_examples and not dc.task else None)
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


def source_lines(text: str, dc) -> list[str]:
  """A multi-line source (story + question) cut to the last
  `max_source_lines` lines before the final one."""
  lines = text.split('\n')
  if dc.max_source_lines and len(lines) > dc.max_source_lines + 1:
    lines = lines[-dc.max_source_lines - 1:]
  return lines


def source_text(text: str, dc) -> str:
  """`source_lines` on one line."""
  return ' '.join(source_lines(text, dc))


def reference_text(text: str) -> str:
  """The target as BLEU's reference: spacing normalised, case kept (BLEU
  lower-cases both sides itself when the model's text is lower case)."""
  return ' '.join(pipelines.normalize_spaces(text).split())


class Tokenizer:
  """Text <-> tokens for one side: words ('punct', 'whitespace', 'kim') or
  sentencepiece pieces (a unigram model trained on that side's train
  texts, kept in `directory`)."""

  def __init__(self, dc, texts: list[str] | None, directory: str, side: str):
    """`texts`: the side's train texts (None: the model in `directory`)."""
    self.dc = dc
    self.spm = None
    if dc.tokenizer == 'sentencepiece':
      import sentencepiece  # pylint: disable=g-import-not-at-top
      prefix = os.path.join(directory, f'spm_{side}')
      if not os.path.exists(prefix + '.model'):
        if texts is None:
          raise InputError(f'no {prefix}.model: not a trained sentencepiece '
                           'seq2seq workdir')
        os.makedirs(directory, exist_ok=True)
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


def _build_vocab(tokens: list[list[str]], dc,
                 reserved=tuple(RESERVED)) -> vocab_lib.Vocab:
  min_freq = 1 if dc.tokenizer == 'sentencepiece' else dc.min_freq
  return vocab_lib.Vocab.build((w for t in tokens for w in t),
                               min_freq=min_freq, reserved=reserved)


class Data:
  """Tokenisers, vocabularies and the given splits' two sides."""

  def source_tokens(self, text: str, dc) -> list[str]:
    """A source's tokens: of its text on one line, or, read as
    statements, of each line followed by `SEP`."""
    if not self.statements:
      return self.source_tokenizer.encode(source_text(text, dc))
    return [w for line in source_lines(text, dc)
            for w in self.source_tokenizer.encode(line) + [SEP]]

  def encode_sources(self, sentences: list[str], dc) -> list:
    """Raw source sentences (predict's input lines; read as statements,
    a tab separates two) as ids."""
    ids = []
    for number, sentence in enumerate(sentences, 1):
      if self.statements:
        sentence = sentence.replace('\t', '\n')
      ids.append(self.source_vocab.encode(self.source_tokens(sentence, dc)))
      if not len(ids[-1]):
        raise InputError(f'input line {number}: no tokens in {sentence!r}')
    self.check_statements(ids, 'input line')
    return ids

  def check_statements(self, sources, what: str):
    """Refuses a source of more than `max_statements` statements (a model
    reads the last ones) rather than drop its first ones."""
    if not self.statements:
      return
    sep = self.source_vocab.stoi[SEP]
    for number, ids in enumerate(sources, 1):
      if (count := int((np.asarray(ids) == sep).sum())) > self.max_statements:
        raise InputError(
            f'{what} {number}: {count} statements (the question '
            'included), more than config field model.max_statements='
            f'{self.max_statements} (raise it, or cut the stories with '
            'data.max_source_lines)')

  def __init__(self, dc, examples: dict[str, list[dict]], directory: str,
               vocabs=None, max_statements: int = 0):
    """`vocabs`: {'source', 'target'} of a trained model, whose tokenisers
    are in `directory` too; None builds both on train (into `directory`).
    `max_statements` > 0: each line of a source is a statement ended by
    `SEP`, and a source has at most this many (the question included)."""
    self.examples = examples
    self.statements = statements = max_statements > 0
    self.max_statements = max_statements
    sources = {s: [source_text(e['source'], dc) for e in ex]
               for s, ex in examples.items()}
    targets = {s: [e['target'] for e in ex] for s, ex in examples.items()}
    train = vocabs is None
    self.source_tokenizer = Tokenizer(
        dc, sources['train'] if train else None, directory, 'source')
    self.target_tokenizer = Tokenizer(
        dc, targets['train'] if train else None, directory, 'target')
    source_tokens = {s: [self.source_tokens(e['source'], dc) for e in ex]
                     for s, ex in examples.items()}
    target_tokens = {s: [self.target_tokenizer.encode(t) for t in texts]
                     for s, texts in targets.items()}
    if train:
      vocabs = {'source': _build_vocab(
                    source_tokens['train'], dc,
                    RESERVED + [SEP] if statements else RESERVED),
                'target': _build_vocab(target_tokens['train'], dc)}
    self.vocabs = vocabs
    self.source_vocab, self.target_vocab = vocabs['source'], vocabs['target']
    self.source = {s: Side(sources[s], source_tokens[s], self.source_vocab)
                   for s in examples}
    self.target = {s: Side(targets[s], target_tokens[s], self.target_vocab)
                   for s in examples}
    self.references = {s: [reference_text(t) for t in targets[s]]
                       for s in examples}
    for split in examples:
      empty = [i for i, (a, b) in enumerate(zip(self.source[split].ids,
                                                self.target[split].ids))
               if not len(a) or not len(b)]
      if empty:
        raise InputError(f'{dc.name} {split}: example {empty[0] + 1} has an '
                         'empty source or target after tokenisation')
      self.check_statements(self.source[split].ids, f'{split} example')
