"""The benchmark: its FLOP count matches the models' weights, and one short
run writes benchmark.json in the documented schema."""

import json

import jax
import numpy as np
import pytest

from conftest import launch
from benchmarks import speed as benchmark
from rnn_jax.experiments import lm


# (The matrix group's rows choose their cells; its shapes name none that
# counts.)
@pytest.mark.parametrize('shape', sorted(set(benchmark.SHAPES)
                                         - set(benchmark.MATRIX_SHAPES)))
def test_flops_per_token_count_every_weight_matrix(shape):
  cell, vocab, hidden, layers, batch, steps, embed = benchmark.SHAPES[shape]
  config = lm.LanguageModelling().get_config()
  config.model.update(cell=cell, hidden_size=hidden, num_layers=layers,
                      embed_size=embed)
  model = lm.make_model(config, vocab)
  params = model.init(jax.random.PRNGKey(0), np.zeros((2, 3), np.int32),
                      model.initial_carry(2))['params']
  # Every matrix a token is multiplied by, but the lookups (the embedding,
  # or W_xh of a one-hot input).
  macs = sum(x.size for path, x in jax.tree_util.tree_leaves_with_path(params)
             if x.ndim == 2 and 'embed' not in jax.tree_util.keystr(path)
             and not (embed == 0 and 'layer0' in jax.tree_util.keystr(path)
                      and 'W_xh' in jax.tree_util.keystr(path)))
  assert benchmark.train_flops_per_token(shape) == 6 * macs


def test_short_run_writes_the_schema(tmp_path):
  # The torch row is measured by the same code as the others; CI has no torch.
  impls = ['rnn_jax', 'flax']
  result = launch('--benchmark=standard', f'--workdir={tmp_path}',
                  '--config.benchmark.shapes=char_rnn_h64',
                  f'--config.benchmark.impls={",".join(impls)}',
                  '--config.benchmark.seconds=0',
                  '--config.benchmark.min_steps=2',
                  '--config.benchmark.warmup_steps=1',
                  '--config.benchmark.compile_steps=50')
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'benchmark.json') as f:
    out = json.load(f)
  assert out['matmul_peak_gflops'] > 0 and out['dtype'] == 'float32'
  rows = {(r['shape'], r['impl']): r for r in out['rows']}
  assert set(rows) == {('char_rnn_h64', i) for i in impls} | {
      ('compile_t50', 'rnn_jax')}
  for row in out['rows']:
    assert set(row) == {'shape', 'impl', 'tokens_per_sec', 'compile_seconds',
                        'peak_memory_mb', 'step_temp_mb', 'fraction_of_peak'}
  ours = rows[('char_rnn_h64', 'rnn_jax')]
  assert ours['tokens_per_sec'] > 0 and ours['compile_seconds'] > 0
  assert ours['peak_memory_mb'] > 0 and 0 < ours['fraction_of_peak'] < 1
  assert ours['step_temp_mb'] > 0
  assert rows[('char_rnn_h64', 'flax')]['fraction_of_peak'] is None
  assert rows[('compile_t50', 'rnn_jax')]['tokens_per_sec'] is None
  assert '| char_rnn_h64 | rnn_jax |' in result.stdout


def test_long_group_names_its_shapes_and_rows(tmp_path):
  assert benchmark._names('long', benchmark.SHAPES, 'benchmark.shapes') == [
      'long_t256', 'long_t1024', 'long_t4096']
  assert [benchmark.SHAPES[s][5] for s in ('long_t256', 'long_t4096')] == [
      256, 4096]
  assert set(benchmark.LONG_IMPLS) == {
      'mingru_parallel', 'mingru_sequential', 'rnn_jax_gru', 'rnn_jax_lstm',
      'flax_gru', 'torch_gru'}
  rows = [{'shape': s, 'impl': i, 'tokens_per_sec': 1000.0 / t}
          for t, s in enumerate(benchmark.LONG_SHAPES, 1)
          for i in benchmark.LONG_IMPLS]
  benchmark._plot_long(rows, str(tmp_path / 'long.png'))
  assert (tmp_path / 'long.png').stat().st_size > 0
