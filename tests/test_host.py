"""host.keep_freed_memory: a training step reuses the memory of the last one
instead of faulting fresh pages in."""

import os
import subprocess
import sys

import pytest

from conftest import REPO

# Two of the benchmark's train steps. Without the malloc settings the
# PTB-small LSTM's step faults in about 13,000 pages of 4 KB afresh; without
# dispatch_on_calling_thread, the char RNN with H=512 and batch 256 faults in
# 36,000 (its 142 MB block, in a worker thread's arena).
_PROGRAM = """
import resource, sys
from rnn_jax import host
took = host.keep_freed_memory()
host.dispatch_on_calling_thread()
from benchmarks import speed as benchmark
for shape in ('ptb_small_lstm', 'char_rnn_h512_b256'):
  compile_step, run = benchmark._rnn_jax(shape, benchmark.SHAPES[shape][5], 0, 0)
  compiled = compile_step()
  run(compiled, 3)
  faults = []
  for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    run(compiled, 3)
    faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3)
  print('RESULT', shape, took, min(faults))
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='glibc malloc only; elsewhere a no-op')
def test_train_step_reuses_its_temporaries():
  result = subprocess.run([sys.executable, '-c', _PROGRAM], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'XLA_FLAGS': ''})
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [line.split() for line in result.stdout.splitlines()
           if line.startswith('RESULT')]
  assert len(lines) == 2
  for _, shape, took, faults in lines:
    assert took == 'True'
    assert float(faults) < 500, (shape, faults)
