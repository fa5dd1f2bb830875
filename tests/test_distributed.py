"""Data parallelism gives the losses of one device: over 4 forced host
devices in one process, and over two processes joined by jax.distributed
(gloo collectives on CPU)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, launch, read_summary, run_launcher, tiny_args
from conftest import tiny_data

# Batches of 4 split over 4 devices (or 2 processes); dropout on, so that the
# random key must be the same everywhere too.
_ARGS = dict(data__batch_size=4, data__eval_batch_size=4, train__max_steps=40,
             train__log_every_steps=5, train__num_epochs=1000,
             model__dropout=0.1)
_FOUR_DEVICES = {'XLA_FLAGS': os.environ['XLA_FLAGS']
                 + ' --xla_force_host_platform_device_count=4'}


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    records = [json.loads(line) for line in f]
  return np.array([r['train/loss'] for r in records if 'train/loss' in r])


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _two_processes(args, workdir):
  address = f'localhost:{_free_port()}'
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'launch.py'), *args,
       f'--workdir={workdir}', f'--coordinator_address={address}',
       '--num_processes=2', f'--process_id={i}'],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


# The lm carries its state across batches; classify pads and buckets its
# batches by length.
@pytest.mark.parametrize('experiment, processes', [('lm', True),
                                                   ('classify', False)])
def test_data_parallel_matches_one_device(experiment, processes, tmp_path):
  args = [f'--experiment={experiment}',
          *tiny_args(experiment, tiny_data(tmp_path / 'data'), **_ARGS)]
  one = tmp_path / 'one'   # in this process: one device
  result = run_launcher(*args, f'--workdir={one}')
  assert result.returncode == 0, result.stderr[-3000:]

  four = tmp_path / 'four'
  result = launch(*args, f'--workdir={four}', env=_FOUR_DEVICES)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'batches split over 4 devices in 1 process(es)' in result.stdout

  two = tmp_path / 'two'
  outputs = _two_processes(args, two) if processes else []

  expected = _losses(one)
  assert len(expected) >= 8
  for workdir in (four, two) if processes else (four,):
    np.testing.assert_allclose(_losses(workdir), expected, rtol=1e-4)
    got, want = read_summary(workdir), read_summary(one)
    for key in want:
      if key.startswith(('valid/', 'test/', 'train/loss')):
        assert got[key] == pytest.approx(want[key], rel=1e-4), key
  # Only process 0 writes the workdir's files; both trained.
  if not processes:
    return
  assert all('step 40/40' in out and 'split over 2 devices in 2 process'
             in out for out in outputs)
  assert len(list(two.glob('tensorboard/*'))) == 1
