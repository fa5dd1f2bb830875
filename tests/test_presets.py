"""Every preset on its real data: the data built, the train step compiled
and run for two steps in this process. (End to end on real data: the main
job in test_launch.py, a classifier in test_classify.py's TREC test, a
seq2seq model in test_seq2seq.py's fra_eng test; the tagger's outputs in
test_tag.py and test_workdir.py.)"""

import importlib.util
import os

import jax
import numpy as np
import pytest

from rnn_jax import experiments
from rnn_jax.experiments import memory
from rnn_jax import distributed
from rnn_jax import driver
from rnn_jax import optim
from rnn_jax import steps
from rnn_jax.data import vectors

# A raw file each dataset needs, to skip a preset whose data is absent.
RAW = {'timemachine': 'timemachine/timemachine.txt', 'ptb': 'ptb/ptb.train.txt',
       'tinyshakespeare': 'tinyshakespeare/input.txt',
       'sst2': 'sst2/glue/train.tsv',
       'sst2/kim2014': 'sst2/kim2014/stsa.binary.train',
       'trec': 'trec/train_5500.label', 'trec/fine': 'trec/TREC_10.label',
       'mr': 'mr/rt-polarity.pos',
       'multi30k': 'multi30k/task1/raw/train.de.gz',
       'fra_eng': 'fra-eng/fra.txt.gz',
       'scan': 'scan/simple_split/tasks_train_simple.txt.gz',
       'scan/length': 'scan/length_split/tasks_train_length.txt.gz',
       'babi': 'babi/tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt',
       'conll2000': 'conll2000/train.txt', 'conll2003': 'conll2003/eng.train',
       'ud_english_lines': 'ud_english_lines/en_lines-ud-train.conllu',
       # Generated from the seed: nothing to read.
       **dict.fromkeys(memory.TASKS)}


def _preset(name):
  module = experiments.get_preset(name)
  config = module.get_config()
  config.preset = name
  named = vectors.NAMED.get(config.model.get('pretrained_embeddings'))
  if named and importlib.util.find_spec(named.module) is None:
    pytest.skip(f'{named.package} is not installed ({vectors.INSTALL})')
  relpath = RAW[config.data.name]
  if relpath and not os.path.isfile(os.path.join(os.environ['RNN_JAX_RAW_DATA'], relpath)):
    pytest.skip(f'raw data {relpath} absent from RNN_JAX_RAW_DATA')
  return experiments.get_experiment(module.EXPERIMENT), config


_DATA = {}


def _load_data(experiment, config):
  """The experiment's data, read once per data config in this process:
  presets with the same data fields share it (make_task only reads it)."""
  key = (experiment.NAME, config.data.to_json(sort_keys=True))
  if key not in _DATA:
    _DATA[key] = experiment.load_data(config)
  return _DATA[key]


@pytest.mark.parametrize('preset', experiments.preset_names())
def test_every_preset_builds_its_data_and_trains_two_steps(preset, tmp_path):
  experiment, config = _preset(preset)
  if config.data.get('cv_folds'):
    config.data.fold = 0   # one fold of the cross-validation
  driver.validate(experiment, config)
  task = experiment.make_task(config, _load_data(experiment, config),
                              str(tmp_path))
  assert task.steps_per_epoch >= 1 and task.describe()
  tx, schedule = optim.from_config(config.train, task.steps_per_epoch)
  state = steps.initial_state(task, tx, config.seed)
  train_step = steps.make_train_step(task, tx, schedule)
  # The first batch twice: one compilation (bucketed batches differ in
  # shape); the parameters after it show the updates were applied (the
  # first is zero under a warm-up from 0).
  batch = distributed.shard(task.train_batch(0, 0))
  before = jax.tree.map(np.array, state.params)
  losses = []
  for _ in range(2):
    state, metrics = train_step(state, batch)
    losses.append(float(metrics['loss']))
  assert int(state.step) == 2 and int(state.nonfinite) == 0
  assert all(np.isfinite(losses)) and losses[0] > 0, losses
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(before), jax.tree.leaves(state.params)))
  assert all(np.isfinite(np.asarray(x)).all()
             for x in jax.tree.leaves(state.params))
