"""Runs an experiment: python launch.py --experiment=lm [--preset=NAME]
[--workdir=DIR] [--mode=train|predict] [--config.FIELD=VALUE ...]
or a sweep of runs: [--sweep=NAME_OR_FILE | --ablation=NAME]
[--sweep_parallel=N] [--sweep_dry_run]"""

import json
import os
import sys

from absl import flags

import experiments
from rnn_jax import configlib
from rnn_jax import sweeps
from rnn_jax import training
from rnn_jax.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string('experiment', None, 'Experiment: ' + ', '.join(experiments.EXPERIMENTS))
flags.DEFINE_string('preset', None, 'Named config in experiments/configs/.')
flags.DEFINE_string('workdir', None, 'Output folder (default workdirs/<preset>); '
                    'a run resumes from the newest checkpoint found there.')
flags.DEFINE_enum('mode', 'train', ['train', 'predict'],
                  'train (and resume), or predict from a trained workdir.')
flags.DEFINE_string('sweep', None, 'A sweep in experiments/sweeps/ or a .py '
                    'file declaring one: every point is a run in '
                    '<workdir>/<run name>/.')
flags.DEFINE_string('ablation', None, 'A named ablation in '
                    'experiments/ablations/ (a sweep with fixed plots).')
flags.DEFINE_integer('sweep_parallel', 1, 'Runs of a sweep at once.')
flags.DEFINE_bool('sweep_dry_run', False, 'Print one command line per run '
                  '(and the collecting line) instead of running.')


def _help() -> str:
  lines = [__doc__, '', 'experiments:']
  for name in experiments.EXPERIMENTS:
    module = experiments.get_experiment(name)
    lines.append(f'  {name:12s} {module.__doc__.strip().splitlines()[0]}')
  lines += ['', 'presets (--preset=NAME):']
  for name in experiments.preset_names():
    preset = experiments.get_preset(name)
    lines.append(f'  {name:26s} [{preset.EXPERIMENT}] '
                 f'{preset.__doc__.strip().splitlines()[0]}')
  for name in experiments.EXPERIMENTS:
    lines += ['', f'config fields of --experiment={name} (defaults):']
    for field, value in configlib.flatten(
        experiments.get_experiment(name).get_config()).items():
      lines.append(f'  --config.{field}={value!r}')
  for kind in experiments.SWEEP_KINDS:
    lines += ['', f'{kind} (--{kind[:-1]}=NAME):']
    for name in experiments.sweep_names(kind):
      doc = experiments.get_sweep(name, kind).__doc__ or ''
      lines.append(f'  {name:26s} {doc.strip().splitlines()[0] if doc else ""}')
  lines += ['', 'flags:']
  for flag in ('experiment', 'preset', 'workdir', 'mode', 'sweep', 'ablation',
               'sweep_parallel', 'sweep_dry_run'):
    lines.append(f'  --{flag}: {FLAGS[flag].help}')
  return '\n'.join(lines)


def _split_argv(argv):
  """Separates --config.FIELD=VALUE overrides from the absl flags."""
  overrides, rest = {}, [argv[0]]
  for arg in argv[1:]:
    if arg.startswith('--config.'):
      field, eq, value = arg[len('--config.'):].partition('=')
      if not eq:
        raise InputError(f'{arg}: write --config.FIELD=VALUE')
      overrides[field] = value
    else:
      rest.append(arg)
  return overrides, rest


def main(argv):
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    print(_help())
    return 0
  overrides, rest = _split_argv(argv)
  if 'preset' in overrides:
    raise InputError('--config.preset: pick a preset with --preset=NAME')
  try:
    extra = FLAGS(rest)
  except flags.Error as e:
    raise InputError(str(e).splitlines()[0]) from None
  if len(extra) > 1:
    raise InputError(f'unexpected argument {extra[1]!r}')

  if FLAGS.sweep or FLAGS.ablation:
    return _sweep(overrides)
  experiment = FLAGS.experiment
  preset_name = FLAGS.preset
  if preset_name:
    preset = experiments.get_preset(preset_name)
    if experiment and experiment != preset.EXPERIMENT:
      raise InputError(f'preset {preset_name!r} is for --experiment='
                       f'{preset.EXPERIMENT}, not {experiment}')
    experiment = preset.EXPERIMENT
  if not experiment:
    raise InputError('give --experiment (one of '
                     f'{", ".join(experiments.EXPERIMENTS)}) or --preset')
  module = experiments.get_experiment(experiment)
  preset_name = preset_name or module.DEFAULT_PRESET
  workdir = FLAGS.workdir or os.path.join('workdirs', preset_name)

  if FLAGS.mode == 'predict':
    if not hasattr(module, 'predict'):
      raise InputError(f'--mode=predict is not available for '
                       f'--experiment={experiment} yet')
    saved = os.path.join(workdir, 'config.json')
    if not os.path.isfile(saved):
      raise InputError(f'no config.json in {workdir}: nothing trained there')
    base = module.get_config()
    with open(saved) as f:
      base.update_from_flattened_dict(configlib.flatten(
          base.__class__(json.load(f))))
    config = configlib.apply_overrides(base, overrides)
    module.predict(config, workdir)
    return 0

  config = experiments.get_preset(preset_name).get_config()
  config.preset = preset_name
  config = configlib.apply_overrides(config, overrides)
  module.run(config, workdir)
  return 0


def _sweep(overrides) -> int:
  if FLAGS.sweep and FLAGS.ablation:
    raise InputError('give --sweep or --ablation, not both')
  if FLAGS.mode != 'train':
    raise InputError('a sweep trains: --mode must be train')
  kind, name = (('sweeps', FLAGS.sweep) if FLAGS.sweep
                else ('ablations', FLAGS.ablation))
  if FLAGS.sweep_parallel < 1:
    raise InputError(f'--sweep_parallel={FLAGS.sweep_parallel}: must be >= 1')
  module = experiments.get_sweep(name, kind)
  title = f'{kind[:-1]} {os.path.basename(name)}'
  plan = sweeps.make_plan(
      module, title=title, experiment=FLAGS.experiment, preset=FLAGS.preset,
      cli=overrides, launcher=os.path.abspath(__file__), check=experiments.check_run)
  workdir = FLAGS.workdir or os.path.join(
      'workdirs', f'{kind[:-1]}_{os.path.splitext(os.path.basename(name))[0]}'
      f'_{plan.experiment}')
  if FLAGS.sweep_dry_run:
    flag = (f'--sweep={os.path.abspath(name) if name.endswith(".py") else name}'
            if FLAGS.sweep else f'--ablation={name}')
    print('\n'.join(sweeps.dry_run_lines(plan, workdir, flag)))
    return 0
  sweeps.run(plan, workdir, FLAGS.sweep_parallel)
  with open(os.path.join(workdir, 'results.md')) as f:
    print(f.read())
  return 0


if __name__ == '__main__':
  try:
    sys.exit(main(sys.argv))
  except InputError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except training.Interrupted as e:
    print(f'interrupted: {e}', file=sys.stderr)
    sys.exit(128 + e.signum)
