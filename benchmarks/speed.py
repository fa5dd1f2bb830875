"""Speed: rnn_jax's training step against flax.linen.RNN and PyTorch eager.

`python launch.py --benchmark=standard` trains a language model of each
shape below with each implementation and reports steady-state training
tokens/s, compile time and peak memory, side by side, plus the fraction of
this machine's matmul peak that rnn_jax reaches and how compile time grows
with the sequence length. Writes <workdir>/benchmark.json.

Every row runs in a fresh Python process, one after another, so that rows
share nothing (thread pools, caches, allocator state) and the peak memory of
one is not the leftover of another. All three implementations train the same
model on the same random batches: embedding (or one-hot) -> RNN/LSTM stack ->
dense -> softmax cross-entropy (mean over tokens), gradients clipped to a
global norm of 1, plain SGD, the final state carried to the next batch
(truncated BPTT), no dropout, float32. `--config.benchmark.dtype=bfloat16`
runs every implementation in its own bfloat16 mixed precision instead:
rnn_jax's `model.dtype=bfloat16` (bfloat16 matmul operands, float32
accumulation, parameters and states), flax cells and Dense with
`dtype=bfloat16`, torch under `torch.autocast('cpu', torch.bfloat16)`; the
matmul peak is then bfloat16's.

* rnn_jax: the library's own training step (`steps.make_train_step` over
  `rnn_jax.experiments.lm.LMTask`), exactly what `--experiment=lm` runs.
* flax: `flax.linen.RNN` over `nn.SimpleCell` / `nn.OptimizedLSTMCell`,
  `nn.Embed` and `nn.Dense`, one jitted step with optax and donation.
* torch: `torch.nn.RNN` / `torch.nn.LSTM` (batch_first) in eager mode with
  `clip_grad_norm_` and `torch.optim.SGD`; skipped when torch is absent.

`--benchmark=long` runs the long-sequence group instead: a
one-layer character model (V=65, H=256, B=16) at T = 256, 1024 and 4096
(shapes long_t256, long_t1024, long_t4096), with the rows
mingru_parallel and mingru_sequential (rnn_jax's minGRU with each scan),
rnn_jax_gru, rnn_jax_lstm, flax_gru (`nn.GRUCell`) and torch_gru
(`torch.nn.GRU`), and a plot of tokens/s against T, <workdir>/long.png.
The cost of a step should grow linearly with T and its compile time not
at all.

Measures: tokens/s = batch x steps / seconds per step, in the fastest of
several timed windows after warm-up steps (the machine's other tenants only
ever slow a window down); compile_seconds = trace + lower + compile of the jitted step (JAX
only); peak_memory_mb = growth of the process's peak resident memory from
just before the model is built (after the implementation's imports) to the
end of the row (compilation included);
step_temp_mb = the temporary buffers XLA allocates for one step, by its own
memory analysis (JAX rows); fraction_of_peak = model FLOP/s over the
measured matmul peak, with 6 FLOPs
per multiply-add of every weight matrix per token (forward 2, backward 4;
embedding lookups and one-hot inputs count as lookups).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

import ml_collections
import numpy as np

from rnn_jax import configlib
from rnn_jax import host
from rnn_jax.configlib import Field
from rnn_jax.errors import InputError


# cell, vocabulary V, hidden H, layers, batch B, steps T, embedding (0: the
# one-hot input of the lecture's character model).
SHAPES = {
    'char_rnn_h256': ('rnn', 28, 256, 1, 32, 35, 0),
    'char_rnn_h64': ('rnn', 28, 64, 1, 32, 35, 0),
    'char_rnn_h512_b256': ('rnn', 28, 512, 1, 256, 35, 0),
    'ptb_rnn': ('rnn', 10_000, 200, 1, 20, 20, 200),
    'ptb_small_lstm': ('lstm', 10_000, 200, 2, 20, 20, 200),
    'ptb_medium_lstm': ('lstm', 10_000, 650, 2, 20, 35, 650),
}
IMPLS = ('rnn_jax', 'flax', 'torch')
LONG_STEPS = (256, 1024, 4096)
LONG_SHAPES = {f'long_t{t}': ('gru', 65, 256, 1, 16, t, 0) for t in LONG_STEPS}
# row name -> (implementation, cell, rnn_jax's model.scan)
LONG_IMPLS = {
    'mingru_parallel': ('rnn_jax', 'mingru', 'parallel'),
    'mingru_sequential': ('rnn_jax', 'mingru', 'sequential'),
    'rnn_jax_gru': ('rnn_jax', 'gru', 'auto'),
    'rnn_jax_lstm': ('rnn_jax', 'lstm', 'auto'),
    'flax_gru': ('flax', 'gru', 'auto'),
    'torch_gru': ('torch', 'gru', 'auto'),
}
SHAPES.update(LONG_SHAPES)
# The matrix-memory cells in each form, with 4 heads of 64 channels and the
# default chunks of 64 steps; the parallel form stops at T=1024, where its
# T x T scores already take most of the memory. The LSTM and the minGRU
# for reference.
MATRIX_SHAPES = {f'matrix_t{t}': ('gla', 65, 256, 1, 16, t, 0)
                 for t in LONG_STEPS}
MATRIX_CELLS = ('mlstm', 'gla', 'deltanet', 'gated_deltanet', 'mamba2')
MATRIX_IMPLS = {
    **{f'{cell}_{form}': ('rnn_jax', cell, form) for cell in MATRIX_CELLS
       for form in ('sequential', 'parallel', 'chunkwise')},
    'rnn_jax_lstm': ('rnn_jax', 'lstm', 'auto'),
    'mingru_sequential': ('rnn_jax', 'mingru', 'sequential'),
}
# And the chunkwise form with the whole layer recomputed in blocks of 256
# steps in the backward pass (model.remat_chunk), from T=1024 on.
REMAT_CHUNK = 256
REMAT = {f'{cell}_chunkwise_remat{REMAT_CHUNK}': ('rnn_jax', cell, 'chunkwise')
         for cell in MATRIX_CELLS}
MATRIX_IMPLS.update(REMAT)
MATRIX_SKIP = ({('matrix_t4096', f'{cell}_parallel') for cell in MATRIX_CELLS}
               | {('matrix_t256', name) for name in REMAT})
SHAPES.update(MATRIX_SHAPES)
# Each group's shapes and the rows (row name -> implementation, cell, scan)
# it runs on each of them.
GROUP_IMPLS = {'long': (LONG_SHAPES, LONG_IMPLS),
               'matrix': (MATRIX_SHAPES, MATRIX_IMPLS)}
GROUPS = {group: tuple(shapes) for group, (shapes, _) in GROUP_IMPLS.items()}
DTYPES = ('float32', 'bfloat16')
COMPILE_SHAPE = 'char_rnn_h256'  # compile_t<T> rows: this shape at T steps


def _group(shape: str):
  """The group whose shapes include `shape`, or None."""
  return next((group for group, (shapes, _) in GROUP_IMPLS.items()
               if shape in shapes), None)


FIELDS = {
    'seed': Field(0, 'the models\' initialisation and the batches'),
    'benchmark.shapes': Field(
        ','.join(s for s in SHAPES if _group(s) is None),
        "comma-separated rows of SHAPES, or 'long' (the long-sequence "
        "group) or 'matrix' (the matrix-memory cells)"),
    'benchmark.impls': Field(','.join(IMPLS), 'comma-separated '
                             'implementations: ' + ', '.join(IMPLS)),
    'benchmark.seconds': Field(5.0, 'timed steady state per row (at least '
                               'min_steps steps)', at_least=0),
    'benchmark.min_steps': Field(5, 'timed steps per row, at least',
                                 at_least=1),
    'benchmark.warmup_steps': Field(3, 'untimed steps after compilation',
                                    at_least=0),
    'benchmark.compile_steps': Field('35,350,3500', 'T of the compile-time '
                                     "rows, comma-separated ('': none)"),
    'benchmark.unroll': Field(0, "rnn_jax's scan unroll (0: the model "
                              'default)', at_least=0),
    'benchmark.dtype': Field('float32', "bfloat16: every implementation's "
                             'mixed precision (rnn_jax model.dtype, flax '
                             "cells' dtype, torch.autocast)", choices=DTYPES),
}


def get_config() -> ml_collections.ConfigDict:
  return configlib.build(FIELDS)


def _names(value: str, known, field: str) -> list[str]:
  names = [n.strip() for n in value.split(',') if n.strip()]
  names = [m for n in names for m in GROUPS.get(n, (n,))]
  for n in names:
    if n not in known:
      raise InputError(f'config field {field}: unknown {n!r}; choose from '
                       f'{", ".join([*known, *GROUPS])}')
  return names


def _compile_steps(config) -> list[int]:
  value = config.benchmark.compile_steps.strip()
  try:
    steps = [int(t) for t in value.split(',')] if value else []
  except ValueError:
    raise InputError('config field benchmark.compile_steps: comma-separated '
                     f'integers, got {value!r}') from None
  if any(t < 1 for t in steps):
    raise InputError('config field benchmark.compile_steps: every T must be '
                     f'>= 1, got {value!r}')
  return steps


def validate(config):
  b = config.benchmark
  _names(b.shapes, SHAPES, 'benchmark.shapes')
  _names(b.impls, IMPLS, 'benchmark.impls')
  configlib.check(config, FIELDS)
  _compile_steps(config)


def train_flops_per_token(shape: str) -> float:
  """6 x the multiply-adds of every weight matrix a token meets."""
  cell, vocab, hidden, layers, _, _, embed = SHAPES[shape]
  gates = {'rnn': 1, 'gru': 3, 'lstm': 4}[cell]
  macs = hidden * vocab  # the output layer
  for layer in range(layers):
    inputs = embed if layer == 0 else hidden
    macs += (inputs + hidden) * gates * hidden if inputs else (
        hidden * gates * hidden)  # one-hot input: a lookup
  return 6.0 * macs


# ----------------------------------------------------------------------------
# One row, in its own process.


def _batches(shape: str, num_steps: int, seed: int, count: int = 4):
  _, vocab, _, _, batch, _, _ = SHAPES[shape]
  rng = np.random.default_rng(seed)
  return [rng.integers(0, vocab, (batch, num_steps + 1)).astype(np.int32)
          for _ in range(count)]


def _jax_loop(step, state, data):
  """(compile_step, run) of a jitted `(state, batch) -> (state, aux)` that
  donates its state, cycling through `data`."""
  import jax  # pylint: disable=g-import-not-at-top

  def compile_step():
    return step.lower(state, data[0]).compile()

  def run(compiled, n):
    nonlocal state
    aux = None
    for i in range(n):
      state, aux = compiled(state, data[i % len(data)])
    jax.block_until_ready((state, aux))
  return compile_step, run


def _rnn_jax(shape, num_steps, seed, unroll, dtype='float32', cell=None,
             scan='auto', remat_chunk=0):
  """The library's own step over `lm.LMTask`."""
  from rnn_jax.experiments import lm  # pylint: disable=g-import-not-at-top
  from rnn_jax import optim  # pylint: disable=g-import-not-at-top
  from rnn_jax import steps  # pylint: disable=g-import-not-at-top
  from rnn_jax.data import vocab as vocab_lib  # pylint: disable=g-import-not-at-top
  default_cell, vocab, hidden, layers, batch, _, embed = SHAPES[shape]
  config = lm.LanguageModelling().get_config()
  config.model.update(cell=cell or default_cell, hidden_size=hidden,
                      num_layers=layers, embed_size=embed, dtype=dtype,
                      scan=scan, remat_chunk=remat_chunk)
  if unroll:
    config.model.unroll = unroll
  config.data.update(batch_size=batch, num_steps=num_steps)
  # The stream needs a few batches of text; the timed batches are _batches'.
  tokens = {split: [str(i % vocab) for i in range(4 * batch * (num_steps + 1))]
            for split in ('train', 'valid', 'test')}
  task = lm.LMTask(config, tokens, vocabs={
      'vocab': vocab_lib.Vocab([str(i) for i in range(vocab)])})
  schedule = optim.make_schedule('constant', 1.0, 1, 1)
  tx = optim.make_optimizer('sgd', schedule, clip_norm=1.0)
  state = steps.initial_state(task, tx, seed)
  step = steps.make_train_step(task, tx, schedule)
  data = [{'inputs': b[:, :-1], 'targets': b[:, 1:]}
          for b in _batches(shape, num_steps, seed)]
  return _jax_loop(step, state, data)


def _flax(shape, num_steps, seed, unroll, dtype='float32', cell=None,
          scan='auto', remat_chunk=0):
  """flax.linen.RNN with the matching flax cell, a plain jitted step."""
  del unroll, cell, scan, remat_chunk
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  cell, vocab, hidden, layers, batch, _, embed = SHAPES[shape]
  compute_dtype = jnp.bfloat16 if dtype == 'bfloat16' else None
  cell_class = functools.partial(
      {'rnn': nn.SimpleCell, 'gru': nn.GRUCell,
       'lstm': nn.OptimizedLSTMCell}[cell],
      dtype=compute_dtype)

  class Model(nn.Module):
    @nn.compact
    def __call__(self, tokens, carries):
      x = (nn.Embed(vocab, embed)(tokens) if embed
           else jax.nn.one_hot(tokens, vocab))
      new = []
      for layer in range(layers):
        carry, x = nn.RNN(cell_class(hidden), return_carry=True)(
            x, initial_carry=carries[layer])
        new.append(carry)
      return nn.Dense(vocab, dtype=compute_dtype)(x), tuple(new)

  model = Model()
  probe = cell_class(hidden)
  carries = tuple(probe.initialize_carry(jax.random.PRNGKey(0),
                                         (batch, embed or vocab))
                  for _ in range(layers))
  if compute_dtype is not None:  # flax cells carry their compute dtype
    carries = jax.tree.map(lambda c: c.astype(compute_dtype), carries)
  data = _batches(shape, num_steps, seed)
  # Initialised on one token, as rnn_jax's LMTask is: the parameters'
  # shapes do not depend on the batch.
  params = model.init(jax.random.PRNGKey(seed), data[0][:1, :1],
                      jax.tree.map(lambda c: c[:1], carries))['params']
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1.0))
  state = (params, tx.init(params), carries)

  def train_step(state, tokens):
    params, opt_state, carries = state

    def loss_fn(p):
      logits, new = model.apply({'params': p}, tokens[:, :-1], carries)
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits.astype(jnp.float32), tokens[:, 1:]).mean()
      return loss, new
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state, jax.lax.stop_gradient(new)), loss

  return _jax_loop(jax.jit(train_step, donate_argnums=0), state, data)


def _torch(shape, num_steps, seed, unroll, dtype='float32', cell=None,
           scan='auto', remat_chunk=0):
  """torch.nn.RNN / GRU / LSTM in eager mode (bfloat16: under
  torch.autocast)."""
  del unroll, cell, scan, remat_chunk
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  cell, vocab, hidden, layers, _, _, embed = SHAPES[shape]
  torch.manual_seed(seed)

  class Model(nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab, embed) if embed else None
      rnn = {'rnn': nn.RNN, 'gru': nn.GRU, 'lstm': nn.LSTM}[cell]
      self.rnn = rnn(embed or vocab, hidden, num_layers=layers,
                     batch_first=True)
      self.out = nn.Linear(hidden, vocab)

    def forward(self, tokens, state):
      x = (self.embed(tokens) if self.embed is not None
           else nn.functional.one_hot(tokens, vocab).float())
      y, state = self.rnn(x, state)
      return self.out(y), state

  model = Model()
  opt = torch.optim.SGD(model.parameters(), lr=1.0)
  data = [torch.from_numpy(b).long()
          for b in _batches(shape, num_steps, seed)]
  state = None

  def run(_, n):
    nonlocal state
    for i in range(n):
      tokens = data[i % len(data)]
      if state is not None:  # truncated BPTT
        state = (tuple(s.detach() for s in state) if isinstance(state, tuple)
                 else state.detach())
      opt.zero_grad()
      with torch.autocast('cpu', dtype=torch.bfloat16,
                          enabled=dtype == 'bfloat16'):
        logits, state = model(tokens[:, :-1], state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab).float(),
                                           tokens[:, 1:].reshape(-1))
      loss.backward()
      nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      opt.step()
  return None, run


_BUILDERS = {'rnn_jax': _rnn_jax, 'flax': _flax, 'torch': _torch}
_IMPORTS = {'rnn_jax': ('jax', 'rnn_jax.experiments.lm', 'rnn_jax.steps'),
            'flax': ('jax', 'flax.linen', 'optax'), 'torch': ('torch',)}


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(spec: dict) -> dict:
  """One row: builds, compiles, warms up and times one implementation."""
  # The imports of the implementation's libraries are not the row's memory.
  for module in _IMPORTS[spec['impl']]:
    importlib.import_module(module)
  base = _peak_rss_mb()
  compile_step, run = _BUILDERS[spec['impl']](
      spec['shape'], spec['num_steps'], spec['seed'], spec['unroll'],
      spec['dtype'], spec.get('cell'), spec.get('scan', 'auto'),
      spec.get('remat_chunk', 0))
  start = time.perf_counter()
  compiled = compile_step() if compile_step else None
  compile_seconds = time.perf_counter() - start if compile_step else None
  row = {'compile_seconds': compile_seconds}
  if spec['compile_only']:
    return row
  # XLA's own count of the step's temporary buffers (JAX rows only): what
  # the step itself holds at its peak, free of the allocator and of the
  # compiler's and the initialisation's memory that peak RSS also counts.
  row['step_temp_mb'] = (compiled.memory_analysis().temp_size_in_bytes / 2**20
                         if compiled is not None else None)
  run(compiled, spec['warmup_steps'])
  # Timed in windows of about a tenth of the budget each; the fastest window
  # counts, as other tenants of a shared machine only ever slow one down.
  start = time.perf_counter()
  run(compiled, 1)
  per_window = max(1, int(spec['seconds'] / 10
                          / max(time.perf_counter() - start, 1e-6)))
  steps, seconds, best = 0, 0.0, float('inf')
  while steps < spec['min_steps'] or seconds < spec['seconds']:
    start = time.perf_counter()
    run(compiled, per_window)
    elapsed = time.perf_counter() - start
    best = min(best, elapsed / per_window)
    seconds += elapsed
    steps += per_window
  _, _, _, _, batch, _, _ = SHAPES[spec['shape']]
  row.update(tokens_per_sec=batch * spec['num_steps'] / best,
             peak_memory_mb=_peak_rss_mb() - base)
  return row


def matmul_peak_gflops(dtype: str = 'float32', size: int = 2048,
                       seconds: float = 2.0) -> float:
  """The best GFLOP/s of a jitted [size, size] matmul with `dtype` operands
  (accumulated in float32)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size)).astype(dtype)
  dot = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
  dot(a, a).block_until_ready()
  best, spent = float('inf'), 0.0
  while spent < seconds:
    start = time.perf_counter()
    dot(a, a).block_until_ready()
    elapsed = time.perf_counter() - start
    best, spent = min(best, elapsed), spent + elapsed
  return 2.0 * size ** 3 / best / 1e9


def _child():
  """Entry point of a row's process: spec as JSON in argv, row on stdout."""
  host.keep_freed_memory()  # as launch.py and the lm do, for every
  host.dispatch_on_calling_thread()  # implementation
  spec = json.loads(sys.argv[1])
  row = ({'matmul_peak_gflops': matmul_peak_gflops(spec['dtype'])}
         if spec.get('matmul_peak') else measure(spec))
  print('ROW ' + json.dumps(row), flush=True)


def _in_process(spec: dict) -> dict:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, '-c',
       'from benchmarks import speed; speed._child()',
       json.dumps(spec)], cwd=root, capture_output=True, text=True)
  rows = [line for line in result.stdout.splitlines() if line.startswith('ROW ')]
  if result.returncode != 0 or not rows:
    last = (result.stderr.strip().splitlines() or ['no output'])[-1]
    raise RuntimeError(f'{spec.get("impl")} on {spec.get("shape")} failed: '
                       f'{last}')
  return json.loads(rows[-1][4:])


# ----------------------------------------------------------------------------
# The run.


def _torch_available() -> bool:
  return importlib.util.find_spec('torch') is not None


def _format(value, pattern: str) -> str:
  return '-' if value is None else pattern.format(value)


def _table(rows: list[dict]) -> str:
  lines = ['| shape | impl | tokens/s | vs torch | vs flax | compile s | '
           'peak MB | step temp MB | of peak |', '|' + '---|' * 9]
  speed = {(r['shape'], r['impl']): r.get('tokens_per_sec') for r in rows}
  others = ('torch', 'flax', 'torch_gru', 'flax_gru')
  for r in rows:
    ratios = []
    for other in ('torch', 'flax'):
      if r['shape'] in LONG_SHAPES:
        other += '_gru'
      base = speed.get((r['shape'], other))
      ours = r.get('tokens_per_sec')
      ratios.append(f'{ours / base:.2f}x' if ours and base and
                    r['impl'] not in others else '')
    lines.append(
        f"| {r['shape']} | {r['impl']} | "
        f"{_format(r.get('tokens_per_sec'), '{:,.0f}')} | {ratios[0]} | "
        f"{ratios[1]} | {_format(r.get('compile_seconds'), '{:.2f}')} | "
        f"{_format(r.get('peak_memory_mb'), '{:.0f}')} | "
        f"{_format(r.get('step_temp_mb'), '{:.1f}')} | "
        f"{_format(r.get('fraction_of_peak'), '{:.1%}')} |")
  return '\n'.join(lines)


def run(config, workdir: str) -> dict:
  validate(config)
  b = config.benchmark
  shapes = _names(b.shapes, SHAPES, 'benchmark.shapes')
  impls = _names(b.impls, IMPLS, 'benchmark.impls')
  if 'torch' in impls and not _torch_available():
    print('torch is not installed: its rows are skipped '
          '(pip install torch)', flush=True)
    impls.remove('torch')
  os.makedirs(workdir, exist_ok=True)
  common = dict(seed=config.seed, seconds=b.seconds, min_steps=b.min_steps,
                warmup_steps=b.warmup_steps, unroll=b.unroll, dtype=b.dtype)

  peak = _in_process({'matmul_peak': True, 'dtype': b.dtype}
                     )['matmul_peak_gflops']
  print(f'matmul peak: {peak:.1f} GFLOP/s ({b.dtype}, 2048 x 2048)',
        flush=True)
  # (shape, row name, implementation, cell, scan). The long group goes row
  # by row, a row's T one after another: its speed at T=4096 against T=256,
  # the group's question, is then measured within a minute, not across the
  # whole group (a shared host's speed drifts over minutes).
  jobs = [(shape, impl, impl, None, 'auto') for shape in shapes
          if _group(shape) is None for impl in impls]
  for group, (group_shapes, table) in GROUP_IMPLS.items():
    jobs += [(shape, name, impl, cell, scan)
             for name, (impl, cell, scan) in table.items() if impl in impls
             for shape in shapes if shape in group_shapes
             and (shape, name) not in MATRIX_SKIP]
  rows = []
  for shape, name, impl, cell, scan in jobs:
    spec = dict(common, shape=shape, impl=impl, compile_only=False,
                num_steps=SHAPES[shape][5], cell=cell, scan=scan,
                remat_chunk=REMAT_CHUNK if name in REMAT else 0)
    row = {'shape': shape, 'impl': name, **_in_process(spec)}
    row['fraction_of_peak'] = (
        row['tokens_per_sec'] * train_flops_per_token(shape) / 1e9 / peak
        if impl == 'rnn_jax' and _group(shape) is None else None)
    rows.append(row)
    print(f"{shape:20s} {name:17s} {row['tokens_per_sec']:12,.0f} tokens/s"
          f"  compile {_format(row['compile_seconds'], '{:.2f}')} s  peak "
          f"{row['peak_memory_mb']:.0f} MB", flush=True)
  for num_steps in _compile_steps(config):
    spec = dict(common, shape=COMPILE_SHAPE, impl='rnn_jax', compile_only=True,
                num_steps=num_steps)
    row = {'shape': f'compile_t{num_steps}', 'impl': 'rnn_jax',
           'tokens_per_sec': None, 'peak_memory_mb': None,
           'step_temp_mb': None,
           'fraction_of_peak': None, **_in_process(spec)}
    rows.append(row)
    print(f"{row['shape']:20s} rnn_jax  compile {row['compile_seconds']:.2f} s",
          flush=True)

  result = {'matmul_peak_gflops': peak, 'dtype': b.dtype, 'rows': rows}
  with open(os.path.join(workdir, 'benchmark.json'), 'w') as f:
    json.dump(result, f, indent=2)
  print(_table(rows), flush=True)
  for group in GROUP_IMPLS:
    group_rows = [r for r in rows if _group(r['shape']) == group]
    if group_rows:
      _plot_long(group_rows, os.path.join(workdir, f'{group}.png'))
  return result


def _plot_long(rows: list[dict], path: str):
  """tokens/s against T, one line per row name."""
  from rnn_jax import plots  # pylint: disable=g-import-not-at-top
  series = {}
  for r in rows:
    series.setdefault(r['impl'], []).append(
        (SHAPES[r['shape']][5], r['tokens_per_sec']))
  plots.lines(path, series, xlabel='sequence length T',
              ylabel='training tokens/s', title='char LM, H=256, B=16')
