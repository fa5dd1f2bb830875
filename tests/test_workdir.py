"""A trained workdir, for every experiment: preemption (SIGKILL, SIGTERM)
resumes to the uninterrupted run's results, --mode=eval recomputes its test
metrics exactly, and --mode=predict works from a copy without the data."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import rnn_jax
from conftest import REPO, call_exported, read_summary, run_launcher
from conftest import tiny_args, tiny_data
from rnn_jax import gradflow
from rnn_jax import models
from rnn_jax.data import pipelines

# Long enough (300 steps) that signals sent at checkpoints 50 and 100 land
# mid-run; dropout on, so that a resumed run must also restore the key.
_LONG = dict(train__max_steps=300, train__num_epochs=10_000,
             train__checkpoint_every_steps=50, train__log_every_steps=50,
             train__eval_every_epochs=1, model__dropout=0.1)

# What each experiment predicts from, and how each output line looks.
_PREDICT = {
    'lm': (['the quick', 'pack my'],
           lambda i, o: o.startswith(i) and len(o) > len(i)),
    'classify': (['word1 other2', 'word3 unseen'],
                 lambda i, o: o.split('\t')[0] in ('a', 'b')
                 and 0.5 <= float(o.split('\t')[1]) <= 1),
    'tag': (['w1 v2', 'w3 v1 w0 zzz'],
            lambda i, o: [t.rsplit('/', 1)[0] for t in o.split()] == i.split()
            and all(t.rsplit('/', 1)[1] in ('B-X', 'I-X', 'O')
                    for t in o.split())),
    'seq2seq': (['a1 b2', 'a3 b0'],
                lambda i, o: bool(o.split('\t')[0].split())
                and all(w[0] in ('a', 'b') for w in o.split('\t')[0].split())
                and float(o.split('\t')[1]) <= 0),
}


# Killed (SIGKILL) before they are terminated: the stream with its carry,
# and bucketed sentence batches.
_KILLED = ('lm', 'classify')


# The killed runs also average their weights and select a checkpoint on a
# valid metric (the history they decide by must survive the kill): an EMA
# for the language model (its batches larger, so that it evaluates every
# 89 steps), NT-ASGD for the classifier (evaluating every 12 steps, it
# starts averaging mid-run and selects an early step).
_AVERAGED = {
    'lm': dict(train__average='ema', train__ema_decay=0.9,
               train__select_by='valid/perplexity', data__batch_size=16),
    'classify': dict(train__average='ntasgd', train__ntasgd_nonmono=2,
                     train__select_by='valid/accuracy'),
}


def _args(experiment, tmp_path):
  # The language model also records its gradient flow every 25 steps (one
  # at each checkpoint: the kill must not lose it).
  extra = dict(train__grad_flow_every_steps=25) if experiment == 'lm' else {}
  extra.update(_AVERAGED.get(experiment, {}))
  return [f'--experiment={experiment}',
          *tiny_args(experiment, tmp_path / 'data', **_LONG, **extra)]


def _records(workdir):
  with open(workdir / 'metrics.jsonl') as f:
    return [{k: v for k, v in r.items() if 'tokens_per_sec' not in k}
            for r in map(json.loads, f)]


def _interrupted(args, workdir, signum, after_step):
  """Starts (or resumes) the run and signals it as soon as the checkpoint of
  `after_step` exists; returns the exit status and stderr."""
  proc = subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'launch.py'), *args,
       f'--workdir={workdir}'], cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while not os.path.isdir(workdir / 'checkpoints' / str(after_step)):
    assert proc.poll() is None, proc.communicate()[1]
    assert time.time() < deadline
    time.sleep(0.01)
  proc.send_signal(signum)
  _, stderr = proc.communicate(timeout=120)
  assert not os.path.exists(workdir / 'summary.json'), 'finished too soon'
  return proc.returncode, stderr


def _files(workdir):
  return {p: os.path.getmtime(os.path.join(d, p))
          for d, _, names in os.walk(workdir) for p in names}


@pytest.mark.parametrize('experiment', sorted(_PREDICT))
def test_preempt_resume_eval_and_predict(experiment, tmp_path):
  tiny_data(tmp_path / 'data')
  args = _args(experiment, tmp_path)
  straight = tmp_path / 'straight'
  result = run_launcher(*args, f'--workdir={straight}')
  assert result.returncode == 0, result.stderr
  expected = read_summary(straight)
  assert expected['steps'] == 300
  if experiment == 'classify':
    assert 0 < expected['average_since'] < 300
    assert expected['selected_step'] < 300

  # Preemption: killed after its first checkpoint, the run loses the steps
  # since; resumed and terminated after a later one, it writes a checkpoint
  # where it stops and says so; resumed again, it ends exactly where the
  # uninterrupted run ended, record for record.
  # (The kill is the driver's to survive, the same for every experiment:
  # sent to two of them, each with its own kind of batches.)
  workdir = tmp_path / 'preempted'
  if experiment in _KILLED:
    code, _ = _interrupted(args, workdir, signal.SIGKILL, 50)
    assert code == -signal.SIGKILL
  code, stderr = _interrupted(args, workdir, signal.SIGTERM, 100)
  assert code == 128 + signal.SIGTERM, stderr
  line, = stderr.strip().splitlines()
  assert line.startswith('interrupted: SIGTERM at step '), line
  step = int(line.split('at step ')[1].split(':')[0])
  assert step >= 100 and os.path.isdir(workdir / 'checkpoints' / str(step))
  rerun = run_launcher(*args, f'--workdir={workdir}')
  assert rerun.returncode == 0, rerun.stderr
  assert f'resumed from step {step}' in rerun.stdout
  got = read_summary(workdir)
  for key, value in expected.items():
    if (key.startswith(('train/', 'valid/', 'test/', 'selected_', 'average'))
        and 'per_sec' not in key):
      assert got[key] == value, key
  assert _records(workdir) == _records(straight)
  if experiment == 'lm':
    flow = [gradflow.read(w) for w in (workdir, straight)]
    assert [r['step'] for r in flow[1]] == list(range(0, 301, 25))
    assert flow[0] == flow[1]
  with open(workdir / 'run_info.json', encoding='utf-8') as f:
    starts = json.load(f)
  # The start and each resumption, recorded.
  assert len(starts) == (3 if experiment in _KILLED else 2)
  assert all(s['config']['seed'] == 0 and s['versions']['jax'] for s in starts)

  # Eval: the reported checkpoint's metrics (the selected one's, else the
  # newest's), recomputed exactly, written apart.
  result = run_launcher(f'--experiment={experiment}', '--mode=eval',
                        f'--workdir={straight}')
  assert result.returncode == 0, result.stderr
  selected = expected['selected_step']
  evaluated = read_summary(straight / f'eval_{selected}')
  assert evaluated['checkpoint'] == selected
  tested = [k for k in expected if k.startswith('test/')]
  assert tested and all(evaluated[k] == expected[k] for k in tested)
  assert read_summary(straight) == expected

  # Predict: from a copy of the workdir alone, inputs on standard input.
  moved = tmp_path / 'elsewhere'
  shutil.copytree(straight, moved)
  shutil.rmtree(tmp_path / 'data')
  before = _files(moved)
  inputs, looks_right = _PREDICT[experiment]
  result = run_launcher(f'--experiment={experiment}', '--mode=predict',
                        f'--workdir={moved}', stdin='\n'.join(inputs) + '\n',
                        env={'RNN_JAX_RAW_DATA': str(tmp_path / 'nothing'),
                             'RNN_JAX_DATA_DIR': str(tmp_path / 'nothing2')})
  assert result.returncode == 0, result.stderr
  outputs = result.stdout.splitlines()
  assert len(outputs) == len(inputs), result.stdout
  for i, o in zip(inputs, outputs):
    assert looks_right(i, o), (i, o)
  assert _files(moved) == before
  if experiment in _EXPORT_INPUTS:
    _exported_equals_predict(experiment, moved, tmp_path)


# The experiments whose export is checked here (the language model's and the
# classifier's in test_api.py), with 20 inputs each.
_EXPORT_INPUTS = {
    'tag': [' '.join(f'{"wv"[(i + j) % 2]}{(i * j) % 5}'
                     for j in range(1 + i % 6)) for i in range(20)],
    'seq2seq': [' '.join(f'{"ab"[j % 2]}{(i + j) % 4}'
                         for j in range(1 + i % 4)) for i in range(20)]}


def _exported_equals_predict(experiment, workdir, tmp_path):
  """The tagger's predict (characters and CRF inside) or the seq2seq model's
  greedy translate, exported and run without rnn_jax on 20 inputs, gives
  what `load(...).predict` gives; signature.json records the tokenisation
  and the reserved tokens."""
  lines = _EXPORT_INPUTS[experiment]
  model = rnn_jax.load(str(workdir))   # the tiny seq2seq decodes greedily
  model.export()
  with open(workdir / 'export' / 'signature.json', encoding='utf-8') as f:
    signature = json.load(f)
  assert signature['data']['name'] == 'files'
  vocab = 'vocab' if experiment == 'tag' else 'source'
  assert signature['reserved_tokens'][vocab]['<pad>'] == model.task.pad
  records, task = model.predict(lines), model.task
  assert len({str(r) for r in records}) > 1   # not all the same
  if experiment == 'tag':
    described = signature['functions']['predict']['inputs']
    assert [x['name'] for x in described] == [
        'tokens', 'lengths', 'chars', 'char_lengths']
    batch = next(task.batches['input'].eval_batches())
    got = call_exported(tmp_path, workdir, {
        f'predict/{i}': batch[x['name']] for i, x in enumerate(described)})
    for row, index in enumerate(batch['index'][batch['index'] >= 0]):
      tags = got['predict/tags'][row, :batch['lengths'][row]]
      assert [task.tags.itos[t] for t in tags] == records[index]['tags']
  else:
    ids = task.data.encode_sources(lines, task.config.data)
    batch = pipelines.pad_batch(ids, [0] * len(ids), len(ids),
                                max(map(len, ids)), task.pad)
    got = call_exported(tmp_path, workdir, {
        'translate/0': batch['tokens'], 'translate/1': batch['lengths']})
    assert [task.data.target_tokenizer.decode(task.strip(row))
            for row in got['translate/output']] == [
                r['output'] for r in records]
    # Each record's log_prob: the decoder's steps, one at a time, over its
    # output (<eos> included).
    variables = {'params': model.params}
    for row in range(3):
      context, state = task.model.apply(
          variables, batch['tokens'][row:row + 1],
          batch['lengths'][row:row + 1], method=models.Seq2Seq.encode)
      previous, total = task.bos, 0.0
      for token in got['translate/output'][row]:
        logits, state, _ = task.model.apply(
            variables, np.asarray([previous]), state, context,
            method=models.Seq2Seq.step)
        total += float(jax.nn.log_softmax(logits[0])[token])
        previous = token
        if token == task.eos:
          break
      assert records[row]['log_prob'] == pytest.approx(total, abs=1e-4)


def test_a_second_run_and_a_changed_shape_are_refused(tmp_path):
  """While a run holds its workdir another is refused; resuming it with a
  different model shape is refused; neither touches config.json."""
  tiny_data(tmp_path / 'data')
  args = _args('lm', tmp_path)
  workdir = tmp_path / 'run'
  proc = subprocess.Popen(
      [sys.executable, os.path.join(REPO, 'launch.py'), *args,
       f'--workdir={workdir}'], cwd=REPO, stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL)
  try:
    while not os.path.isdir(workdir / 'checkpoints'):
      assert proc.poll() is None
      time.sleep(0.01)
    before = (workdir / 'config.json').read_bytes()
    second = run_launcher(*args, f'--workdir={workdir}')
    assert second.returncode == 2 and 'in use by another run' in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
  finally:
    proc.wait(timeout=300)
  assert (workdir / 'config.json').read_bytes() == before
  other = run_launcher(*args, f'--workdir={workdir}', '--config.model.hidden_size=16')
  assert other.returncode == 2 and 'model.hidden_size=8' in other.stderr
  assert len(other.stderr.strip().splitlines()) == 1
  assert (workdir / 'config.json').read_bytes() == before
