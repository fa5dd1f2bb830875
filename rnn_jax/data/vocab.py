"""Vocab: tokens <-> ids with reserved tokens, min_freq, save and load."""

from __future__ import annotations

import collections
import json
from typing import Iterable, Mapping, Sequence

import numpy as np

UNK = '<unk>'
EOS = '<eos>'
PAD = '<pad>'
BOS = '<bos>'


class Vocab:
  """Reserved tokens first, then by descending frequency (ties by token).

  Tokens seen fewer than `min_freq` times map to `<unk>` (id 0 when
  reserved, which it is by default).
  """

  def __init__(self, tokens: Sequence[str]):
    self.itos = list(tokens)
    self.stoi = {t: i for i, t in enumerate(self.itos)}
    if len(self.stoi) != len(self.itos):
      raise ValueError('duplicate tokens in vocabulary')

  @classmethod
  def build(cls, tokens: Iterable[str], *, min_freq: int = 1,
            reserved: Sequence[str] = (UNK,)) -> 'Vocab':
    counts = collections.Counter(tokens)
    kept = sorted((t for t, c in counts.items()
                   if c >= min_freq and t not in reserved),
                  key=lambda t: (-counts[t], t))
    return cls(list(reserved) + kept)

  def __len__(self) -> int:
    return len(self.itos)

  @property
  def unk_id(self) -> int | None:
    return self.stoi.get(UNK)

  def encode(self, tokens: Iterable[str],
             extra: Mapping[str, int] | None = None) -> np.ndarray:
    """Each token's id; a token outside the vocabulary gets its id in
    `extra` if there, else <unk>'s."""
    unk = self.unk_id
    if unk is None:
      return np.array([self.stoi[t] for t in tokens], np.int32)
    if extra:
      return np.array([self.stoi.get(t, extra.get(t, unk)) for t in tokens],
                      np.int32)
    return np.array([self.stoi.get(t, unk) for t in tokens], np.int32)

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.itos[int(i)] for i in ids]

  def save(self, path: str):
    with open(path, 'w', encoding='utf-8') as f:
      json.dump({'tokens': self.itos}, f, ensure_ascii=False, indent=0)

  @classmethod
  def load(cls, path: str) -> 'Vocab':
    with open(path, encoding='utf-8') as f:
      return cls(json.load(f)['tokens'])
