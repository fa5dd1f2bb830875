"""The experiment contract: what an experiment declares, and nothing else.

An experiment is a subclass of `Experiment`. The driver (`rnn_jax.driver`)
does the rest the same way for every one of them: validation, the workdir,
the training loop, evaluation, selection, predictions, export, sweeps. Every
hook an experiment can fill in is documented here and nowhere else; the
driver, the Python API, the sweeps and launch.py ask nothing else of an
experiment.

An experiment lives in this package (`rnn_jax/experiments/`, registered by
name), or in any Python file or importable module of a researcher's own:
`launch.py --experiment=/path/to/mine.py` and `rnn_jax.train(...,
experiment='/path/to/mine.py')` load it (docs/adding-an-experiment.md walks
through one).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from typing import Any, Callable

import ml_collections

from rnn_jax import configlib
from rnn_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """A metric computed from an evaluation split's predictions:
  `fn(task, split, predictions) -> float`, where `predictions` holds
  `predict_batch`'s result for each example of the split (None for those
  past `eval.max_examples`). `higher_is_better` goes into the one registry
  of directions (`rnn_jax.metrics`)."""
  fn: Callable[[Any, str, list], float]
  higher_is_better: bool


class Experiment:
  """The base of every experiment: class attributes and hooks.

  Class attributes:
    NAME: the experiment's name, in summaries and `--help`.
    DEFAULT_PRESET: the preset (experiments/configs/) a run without
      `--preset` starts from, or None: the declared defaults.
    FIELDS: every config field, declared once (`configlib.Field`: default,
      meaning, allowed values). `configlib.run_fields` gives the fields
      every experiment has (preset, experiment, seed, eval.*). The defaults
      are what `get_config` returns; the driver checks every value against
      its declaration before anything is written, and --help prints them.
    PREDICTION_FILES: the files `write_outputs` writes per split, as
      '{split}_name'; cross-validation concatenates the test ones over the
      folds.
    SWEEP_METRICS: the metric columns of a sweep's table when the sweep
      names none; the first is the one plotted.
    CROSS_VALIDATES: the experiment has `data.cv_folds` and `data.fold`
      (`driver.CV_FIELDS`): with cv_folds > 1 and fold = -1, the driver runs every fold as a run
      of its own in <workdir>/fold<k> and reports their means.
    DISPATCH_ON_CALLING_THREAD: launch.py, which owns its process, runs JAX
      dispatch on the calling thread (`rnn_jax.host`): faster where every
      batch has one shape and the step is short. The driver itself changes
      no process-wide setting (it also runs inside a user's own process).
  """
  NAME: str = ''
  DEFAULT_PRESET: str | None = None
  FIELDS: dict[str, configlib.Field] = {}
  PREDICTION_FILES: tuple[str, ...] = ()
  SWEEP_METRICS: tuple[str, ...] = ('valid/loss',)
  CROSS_VALIDATES: bool = False
  DISPATCH_ON_CALLING_THREAD: bool = False

  def get_config(self) -> ml_collections.ConfigDict:
    """The config of the declared defaults; a preset changes them."""
    return configlib.build(self.FIELDS)

  def validate(self, config):
    """Rejects (InputError, one line naming the field) what the field
    declarations cannot say on their own: fields that constrain each other.
    Runs before anything is written. The default accepts everything."""

  def load_data(self, config) -> Any:
    """Reads the splits the config names (raw files -> TFDS -> arrays or
    token lists), once per run; whatever it returns goes to `make_task`."""
    raise NotImplementedError(f'{type(self).__name__}.load_data')

  def make_task(self, config, data, workdir: str, vocabs=None):
    """The `training.Task` (model, loss, batches) of `data`, with `vocabs`
    (name -> `Vocab`, saved in <workdir>/vocabs/) and `describe()` (one line
    about the data). `vocabs` None: build them on the train split. `data`
    None (prediction and export): a model from the saved vocabularies alone.
    A task that predicts per example has `batches` (split -> batches with
    `eval_batches()` and `seqs`) for `predict_batch`."""
    raise NotImplementedError(f'{type(self).__name__}.make_task')

  # Per-example predictions: None, or a method
  # `predict_batch(task, params, batch, rng) -> list`, one result per row of
  # an evaluation batch (rows whose `index` is -1 are padding). The driver
  # runs it over valid and test after training and hands the results to
  # `write_outputs`, and over valid at every evaluation when the config
  # names one of `evaluators()`.
  predict_batch = None

  def evaluators(self) -> dict[str, Evaluator]:
    """Metrics computed from predictions, by name ('bleu'). The ones that
    `eval.metrics` or `train.select_by` names are computed on the valid
    split at every evaluation (on its first `eval.max_examples` examples
    when > 0), so that selection and early stopping can use them. Metrics
    from the loss's own sums (loss, perplexity, accuracy) need none."""
    return {}

  def write_outputs(self, task, params, predictions: dict[str, list],
                    directory: str) -> dict[str, Any]:
    """After training (and `--mode=eval`): writes what the experiment makes
    of the final params into `directory` (prediction files, samples,
    plots) and returns what goes into summary.json besides the metrics.
    `predictions` is split -> `predict_batch` results (empty without it)."""
    del task, params, predictions, directory
    return {}

  def predict(self, task, params, lines: list[str]) -> list[dict[str, Any]]:
    """`Trained.predict` and `--mode=predict`: one record (field -> value)
    per input line."""
    raise InputError(f'experiment {self.NAME} does not predict')

  def format_prediction(self, record: dict[str, Any]) -> str:
    """The line `--mode=predict` prints for a record. The default: its
    values, tab-separated, text escaped (readers.escape_field)."""
    from rnn_jax.data import readers  # pylint: disable=g-import-not-at-top
    return '\t'.join(readers.escape_field(str(v)) for v in record.values())

  def exports(self, task, params) -> dict[str, tuple]:
    """`--mode=export`: name -> (function, input ShapeDtypeStructs,
    description of inputs and outputs), each function `jax.export`ed with
    `params` inside and the recurrent state as explicit inputs/outputs."""
    raise InputError(f'experiment {self.NAME} does not export')

  def generate(self, task, params, prefix: str, seed: int = 0,
               num_tokens: int | None = None, **sampling) -> str:
    """`Trained.generate`: `prefix` continued by generated tokens, drawn as
    the config says or as `sampling` (temperature, top_k, top_p) overrides
    it."""
    raise InputError(f'experiment {self.NAME} does not generate')

  def read(self, task, params, text: str, carry=None):
    """`Trained.stream`: (next-token probabilities after `text`, the state
    after it), `text` read from `carry` (the initial state when None)."""
    raise InputError(f'experiment {self.NAME} does not read streams')

  def vocabulary(self, task) -> list[str]:
    """`Trained.vocab`: the tokens, in the order of `read`'s output."""
    raise InputError(f'experiment {self.NAME} has no output vocabulary')


# ----------------------------------------------------------------------------
# Finding an experiment: a registered name, a file, or a module.


def _defined_in(module) -> Experiment:
  """The one Experiment subclass `module` defines, instantiated."""
  found = [obj for obj in vars(module).values()
           if isinstance(obj, type) and issubclass(obj, Experiment)
           and obj is not Experiment and obj.__module__ == module.__name__]
  if len(found) != 1:
    raise InputError(f'{module.__name__}: define exactly one subclass of '
                     f'rnn_jax.experiment.Experiment (found {len(found)})')
  experiment = found[0]()
  if not experiment.NAME or not experiment.FIELDS:
    raise InputError(f'{module.__name__}: the experiment declares no NAME '
                     'or no FIELDS')
  return experiment


def load(spec: str, registered: dict[str, str]) -> Experiment:
  """The experiment `spec` names: a key of `registered` (name -> module),
  the path of a .py file, or a dotted module name."""
  if spec in registered:
    return _defined_in(importlib.import_module(registered[spec]))
  if spec.endswith('.py'):
    path = os.path.abspath(spec)
    if not os.path.isfile(path):
      raise InputError(f'--experiment={spec}: no such file')
    name = f'rnn_jax_user_{os.path.splitext(os.path.basename(path))[0]}'
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module   # dataclasses and pickling look it up
    try:
      module_spec.loader.exec_module(module)
    except Exception as e:  # pylint: disable=broad-except
      del sys.modules[name]
      raise InputError(f'{spec}: cannot load ({type(e).__name__}: '
                       f'{str(e).splitlines()[0] if str(e) else ""})'
                       ) from None
    return _defined_in(module)
  if '.' in spec:
    try:
      module = importlib.import_module(spec)
    except ImportError as e:
      raise InputError(f'--experiment={spec}: cannot import ({e})') from None
    return _defined_in(module)
  raise InputError(f'unknown experiment {spec!r}; choose one of '
                   f'{", ".join(registered)}, or give a .py file or a '
                   'dotted module')


def spec_of(spec: str, registered: dict[str, str]) -> str:
  """What config.json records to load the experiment again: the name, the
  file's absolute path, or the module."""
  if spec.endswith('.py') and spec not in registered:
    return os.path.abspath(spec)
  return spec
