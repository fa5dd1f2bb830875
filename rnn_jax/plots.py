"""Figures the experiments write: confusion matrices, attention maps,
line plots."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save(fig, path: str):
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=100)
  _pyplot().close(fig)


def confusion(path: str, matrix: np.ndarray, names: list[str], title: str):
  """Gold classes down, predicted across; counts written in small ones."""
  plt = _pyplot()
  n = len(names)
  size = min(4 + 0.35 * n, 20)
  fig, ax = plt.subplots(figsize=(size, size))
  ax.imshow(matrix, cmap='Blues')
  ax.set_xticks(range(n), names, rotation=90 if n > 6 else 0)
  ax.set_yticks(range(n), names)
  ax.set_xlabel('predicted')
  ax.set_ylabel('gold')
  ax.set_title(title)
  if n <= 12:
    for i in range(n):
      for j in range(n):
        ax.text(j, i, str(matrix[i, j]), ha='center', va='center',
                color='white' if matrix[i, j] > matrix.max() / 2 else 'black')
  _save(fig, path)


def attention(path: str, weights: np.ndarray, source: list[str],
              output: list[str]):
  """weights [len(output), len(source)]: where each output token looked."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(2 + 0.35 * len(source),
                                  1.5 + 0.3 * len(output)))
  ax.imshow(weights, cmap='Blues', aspect='auto', vmin=0, vmax=1)
  ax.set_xticks(range(len(source)), source, rotation=90)
  ax.set_yticks(range(len(output)), output)
  ax.set_xlabel('source')
  ax.set_ylabel('output')
  _save(fig, path)


def lines(path: str, series: dict[str, list[tuple[float, float]]], *,
          xlabel: str, ylabel: str, title: str, logx: bool = True,
          logy: bool = True):
  """One line per name through its (x, y) points, each axis logarithmic
  unless its `logx` / `logy` is False; the x ticks are the points' x
  values, less any within 20% of the tick before it (on a log axis; their
  labels would overlap)."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  xs = set()
  for name, points in series.items():
    points = sorted(points)
    xs.update(x for x, _ in points)
    ax.plot(*zip(*points), marker='o', label=name)
  ax.set(xscale='log' if logx else 'linear', yscale='log' if logy
         else 'linear')
  ticks = []
  for x in sorted(xs):
    if not (logx and ticks and x < 1.2 * ticks[-1]):
      ticks.append(x)
  ax.set_xticks(ticks, [f'{x:g}' for x in ticks])
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.legend(fontsize=8)
  _save(fig, path)


def curves(path: str, series: dict[str, list[tuple[float, float]]], *,
           xlabel: str, ylabel: str, title: str, logy: bool = True,
           side: list[tuple[float, float]] | None = None,
           side_label: str = ''):
  """One unmarked line per name through its (x, y) points (y logarithmic
  with `logy`), coloured from early to late in the order given; with
  `side`, a second panel plots those points against `side_label`."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2 if side else 1,
                           figsize=(11 if side else 6.5, 4), squeeze=False)
  ax = axes[0, 0]
  colors = plt.get_cmap('viridis')(np.linspace(0, 0.9, max(len(series), 1)))
  for color, (name, points) in zip(colors, series.items()):
    points = [(x, y) for x, y in points if not logy or y > 0]
    if points:
      ax.plot(*zip(*points), color=color, label=name)
  if logy:
    ax.set_yscale('log')
  ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
  ax.grid(alpha=0.3)
  if len(series) <= 12:
    ax.legend(fontsize=8)
  if side:
    axes[0, 1].plot(*zip(*side), marker='o')
    axes[0, 1].set(xlabel='step', ylabel=side_label, title=side_label)
    axes[0, 1].grid(alpha=0.3)
  _save(fig, path)


def panels(path: str, panels: dict[str, dict[str, list[tuple[float, float]]]],
           *, xlabel: str, ylabel: str, title: str):
  """One panel per name, side by side, each with one line per series name
  (y logarithmic; a name keeps its colour across panels)."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6),
                           squeeze=False, sharey=True)
  names = list(dict.fromkeys(n for series in panels.values() for n in series))
  colors = dict(zip(names, plt.get_cmap('tab10')(np.arange(len(names)) % 10)))
  for ax, (panel, series) in zip(axes[0], panels.items()):
    for name, points in series.items():
      points = [(x, y) for x, y in points if y > 0]
      if points:
        ax.plot(*zip(*points), color=colors[name], label=name)
    ax.set(yscale='log', xlabel=xlabel, title=f'{title}, {panel}')
    ax.grid(alpha=0.3)
  axes[0, 0].set_ylabel(ylabel)
  axes[0, -1].legend(fontsize=7)
  _save(fig, path)
