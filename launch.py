"""Runs an experiment: python launch.py --experiment=lm|FILE.py|MODULE
[--preset=NAME] [--workdir=DIR] [--config.FIELD=VALUE ...]
uses a trained workdir: --workdir=DIR --mode=eval [--checkpoint=STEP] |
--mode=predict [--input=TEXT | --input_file=PATH | < PATH] | --mode=export
or a sweep of runs: [--sweep=NAME_OR_FILE | --ablation=NAME]
[--sweep_parallel=N] [--sweep_dry_run | --sweep_collect]
[--sweep_launcher=local|submitit_local|slurm [--slurm_partition=P ...]]
or the speed benchmark: --benchmark=standard|long|matrix [--workdir=DIR]
--help [--experiment=NAME] | --helpfull: the presets and each config field's
default, meaning and allowed values"""

import os
import sys

from absl import flags

import benchmarks
from rnn_jax import configlib
from rnn_jax import distributed
from rnn_jax import driver
from rnn_jax import experiments
from rnn_jax import host
from rnn_jax import launchers
from rnn_jax import sweeps
from rnn_jax import training
from rnn_jax.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string('experiment', None, 'Experiment: '
                    + ', '.join(experiments.EXPERIMENTS) + ', or the path of '
                    'a .py file (or a dotted module) defining one; eval, '
                    'predict and export read it from the workdir.')
flags.DEFINE_string('preset', None, 'Named config in experiments/configs/.')
flags.DEFINE_string('workdir', None, 'Output folder (default workdirs/<preset>); '
                    'a run resumes from the newest checkpoint found there.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict', 'export'],
                  'train (and resume); eval: recompute the valid and test '
                  'metrics of a checkpoint into <workdir>/eval_<step>/; '
                  'predict: one result per input line, from the workdir '
                  'alone (no training data needed); export: the trained '
                  'functions as jax.export StableHLO in <workdir>/export/.')
flags.DEFINE_integer('checkpoint', None, 'The step whose checkpoint eval, '
                     'predict and export use (default: the one the run '
                     'reported: selected, else the newest).')
flags.DEFINE_string('input', None, 'predict: the input (one per line).')
flags.DEFINE_string('input_file', None, 'predict: a UTF-8 file of inputs, one '
                    'per line (default: standard input).')
flags.DEFINE_string('sweep', None, 'A sweep in experiments/sweeps/ or a .py '
                    'file declaring one: every point is a run in '
                    '<workdir>/<run name>/.')
flags.DEFINE_string('ablation', None, 'A named ablation in '
                    'experiments/ablations/ (a sweep with fixed plots).')
flags.DEFINE_integer('sweep_parallel', 1, 'Runs (or trials) of a sweep at '
                     'once.')
flags.DEFINE_enum('sweep_launcher', 'local', list(launchers.LAUNCHERS),
                  'Where a sweep\'s runs go: local subprocesses, '
                  'submitit_local (submitit\'s LocalExecutor) or slurm (one '
                  'SLURM job array through submitit, requeued on '
                  'preemption); the last two need pip install -e ".[sweeps]".')
flags.DEFINE_bool('sweep_collect', False, 'Run nothing: write the sweep\'s '
                  'tables and plots from what has finished.')
flags.DEFINE_string('slurm_partition', None, 'slurm: the partition.')
flags.DEFINE_integer('slurm_time', 60, 'slurm: minutes per task (a task '
                     'that runs out is requeued and resumes).')
flags.DEFINE_integer('slurm_gpus', 0, 'slurm: GPUs per task.')
flags.DEFINE_integer('slurm_cpus', 1, 'slurm: CPUs per task.')
flags.DEFINE_float('slurm_mem', None, 'slurm: memory per task, in GB.')
flags.DEFINE_enum('benchmark', None, list(benchmarks.GROUPS), 'Training '
                  'speed against flax and PyTorch (benchmarks/speed.py): '
                  'writes <workdir>/benchmark.json (default workdir '
                  'workdirs/benchmark_<group>).')
flags.DEFINE_bool('sweep_dry_run', False, 'Print one command line per run '
                  '(and the collecting line) instead of running.')
flags.DEFINE_string('coordinator_address', None, 'Multi-process run: '
                    'HOST:PORT of process 0, which coordinates; give '
                    '--num_processes and --process_id too.')
flags.DEFINE_integer('num_processes', None, 'Multi-process run: how many.')
flags.DEFINE_integer('process_id', None, 'Multi-process run: this one, '
                     '0..num_processes-1.')
flags.DEFINE_bool('distributed', False, 'Multi-process run on a cluster '
                  'JAX detects (SLURM, Open MPI, Cloud TPU): join it with no '
                  'further flags.')


_SLURM_FLAGS = ('slurm_partition', 'slurm_time', 'slurm_gpus', 'slurm_cpus',
                'slurm_mem')
_SWEEP_FLAGS = ('sweep_parallel', 'sweep_dry_run', 'sweep_launcher',
                'sweep_collect', *_SLURM_FLAGS)


def _first_paragraph(doc: str | None) -> str:
  """A docstring's first paragraph as one line."""
  return ' '.join((doc or '').strip().split('\n\n')[0].split())


def _help(experiment: str | None, full: bool) -> str:
  """--help: the usage, the experiments and the flags. With --experiment,
  that experiment's presets and config fields; --helpfull: every
  experiment's, the sweeps and the ablations."""
  lines = [__doc__, '', 'experiments (--experiment=NAME):']
  for name in experiments.EXPERIMENTS:
    doc = type(experiments.get_experiment(name)).__doc__
    lines.append(f'  {name:12s} {_first_paragraph(doc)}')
  lines += ['', 'flags:']
  for flag in ('experiment', 'preset', 'workdir', 'mode', 'checkpoint',
               'input', 'input_file', 'sweep', 'ablation', 'sweep_parallel',
               'sweep_dry_run', 'sweep_launcher', 'sweep_collect',
               *_SLURM_FLAGS, 'benchmark', 'coordinator_address',
               'num_processes', 'process_id', 'distributed'):
    lines.append(f'  --{flag}: {FLAGS[flag].help}')
  lines += ['', 'train.max_steps > 0 stops a run early; the learning-rate '
            'schedule always spans train.num_epochs.']
  if not (experiment or full):
    return '\n'.join(lines + [
        '', f'{len(experiments.preset_names())} presets, every config field '
        'and the sweeps: --help --experiment=NAME (one experiment) or '
        '--helpfull (all).'])
  shown = [experiment] if experiment else experiments.EXPERIMENTS
  lines += ['', 'presets (--preset=NAME):']
  for name in experiments.preset_names():
    preset = experiments.get_preset(name)
    if experiments.spec_of(preset.EXPERIMENT) in map(experiments.spec_of,
                                                     shown):
      lines.append(f'  {name:26s} [{preset.EXPERIMENT}] '
                   f'{_first_paragraph(preset.__doc__)}')
  for name in shown:
    lines += ['', f'config fields of --experiment={name} (default, meaning, '
              'allowed values; a preset changes the defaults):']
    lines += configlib.describe(experiments.get_experiment(name).FIELDS)
  if full:
    for kind in experiments.SWEEP_KINDS:
      lines += ['', f'{kind} (--{kind[:-1]}=NAME):']
      for name in experiments.sweep_names(kind):
        doc = experiments.get_sweep(name, kind).__doc__
        lines.append(f'  {name:26s} {_first_paragraph(doc)}')
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
  host.keep_freed_memory()  # before JAX starts its threads
  FLAGS.unparse_flags()  # a second call in one process starts afresh
  if any(a in ('-h', '--help', '--helpfull') for a in argv[1:]):
    named = [a.split('=', 1)[1] for a in argv[1:]
             if a.startswith('--experiment=')]
    if named:
      experiments.get_experiment(named[-1])  # an unknown name: one line
    print(_help(named[-1] if named else None, '--helpfull' in argv))
    return 0
  overrides, rest = _split_argv(argv)
  for field in ('preset', 'experiment'):
    if field in overrides:
      raise InputError(f'--config.{field}: pick it with --{field}=...')
  try:
    extra = FLAGS(rest)
  except flags.Error as e:
    raise InputError(str(e).splitlines()[0]) from None
  if len(extra) > 1:
    raise InputError(f'unexpected argument {extra[1]!r}')

  _join_processes()
  if FLAGS.benchmark:
    return _benchmark(overrides)
  if FLAGS.sweep or FLAGS.ablation:
    return _sweep(overrides)
  for flag in _SWEEP_FLAGS:
    if FLAGS[flag].present:
      raise InputError(f'--{flag} is for a sweep (--sweep or --ablation)')
  if FLAGS.mode != 'train':
    workdir = FLAGS.workdir or (FLAGS.preset and os.path.join('workdirs',
                                                              FLAGS.preset))
    if not workdir:
      raise InputError(f'--mode={FLAGS.mode}: give the trained --workdir')
    module, config = driver.saved_config(workdir, overrides, FLAGS.experiment)
    if FLAGS.mode == 'eval':
      driver.evaluate(module, config, workdir, FLAGS.checkpoint)
    elif FLAGS.mode == 'export':
      driver.export(module, config, workdir, FLAGS.checkpoint)
    else:
      lines = _read_inputs()
      records = driver.predict(module, config, workdir, lines,
                               FLAGS.checkpoint)
      print('\n'.join(map(module.format_prediction, records)), flush=True)
    return 0
  for flag in ('checkpoint', 'input', 'input_file'):
    if FLAGS[flag].present:
      raise InputError(f'--{flag} is for --mode=eval, predict or export')
  module, config = experiments.resolve(FLAGS.experiment, FLAGS.preset)
  config = configlib.apply_overrides(config, overrides)
  workdir = FLAGS.workdir or os.path.join('workdirs',
                                          config.preset or module.NAME)
  if module.DISPATCH_ON_CALLING_THREAD:
    host.dispatch_on_calling_thread()
  driver.train(module, config, workdir)
  return 0


def _benchmark(overrides) -> int:
  for flag in ('experiment', 'preset', 'mode'):
    if FLAGS[flag].present:
      raise InputError(f'--{flag}={FLAGS[flag].value}: --benchmark measures '
                       'the library, not an experiment (no --experiment, '
                       '--preset or --mode)')
  benchmarks.run(FLAGS.benchmark, overrides, FLAGS.workdir or os.path.join(
      'workdirs', f'benchmark_{FLAGS.benchmark}'))
  return 0


def _join_processes():
  """Multi-process (multi-host) data parallelism, before JAX is used."""
  explicit = [FLAGS[f].present for f in ('coordinator_address',
                                         'num_processes', 'process_id')]
  if not any(explicit) and not FLAGS.distributed:
    return
  if any(explicit) and not all(explicit):
    raise InputError('a multi-process run needs all of --coordinator_address, '
                     '--num_processes and --process_id (or --distributed '
                     'alone, on a cluster JAX detects)')
  if FLAGS.sweep or FLAGS.ablation:
    raise InputError('a sweep starts its runs itself: run the multi-process '
                     'command once per sweep point instead')
  if all(explicit):
    if FLAGS.num_processes < 1:
      raise InputError(f'--num_processes={FLAGS.num_processes}: must be >= 1')
    if not 0 <= FLAGS.process_id < FLAGS.num_processes:
      raise InputError(f'--process_id={FLAGS.process_id}: must be in '
                       f'[0, {FLAGS.num_processes})')
  try:
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                           FLAGS.process_id)
  except (RuntimeError, ValueError) as e:
    raise InputError('cannot join the multi-process run: '
                     f'{str(e).splitlines()[0][:200]}') from None


def _read_inputs() -> list[str]:
  """The inputs of --mode=predict, one per line, none of them empty."""
  if FLAGS.input is not None and FLAGS.input_file:
    raise InputError('give --input or --input_file, not both')
  if FLAGS.input is not None:
    source, text = '--input', FLAGS.input
  elif FLAGS.input_file:
    source = FLAGS.input_file
    try:
      with open(source, encoding='utf-8') as f:
        text = f.read()
    except FileNotFoundError:
      raise InputError(f'--input_file={source}: no such file') from None
    except UnicodeDecodeError as e:
      line = e.object[:e.start].count(b'\n') + 1
      raise InputError(f'{source}:{line}: not UTF-8 text') from None
  else:
    source, text = '<stdin>', sys.stdin.read()
  lines = text.splitlines()
  driver.check_inputs(lines, source)
  return lines


def _sweep(overrides) -> int:
  if FLAGS.sweep and FLAGS.ablation:
    raise InputError('give --sweep or --ablation, not both')
  if FLAGS.mode != 'train':
    raise InputError('a sweep trains: --mode must be train')
  kind, name = (('sweeps', FLAGS.sweep) if FLAGS.sweep
                else ('ablations', FLAGS.ablation))
  if FLAGS.sweep_parallel < 1:
    raise InputError(f'--sweep_parallel={FLAGS.sweep_parallel}: must be >= 1')
  if FLAGS.sweep_launcher != 'slurm':
    for flag in _SLURM_FLAGS:
      if FLAGS[flag].present:
        raise InputError(f'--{flag} is for --sweep_launcher=slurm')
  for flag in ('slurm_time', 'slurm_cpus'):
    if FLAGS[flag].value < 1:
      raise InputError(f'--{flag}={FLAGS[flag].value}: must be >= 1')
  if FLAGS.slurm_gpus < 0 or (FLAGS.slurm_mem is not None
                              and FLAGS.slurm_mem <= 0):
    raise InputError('--slurm_gpus must be >= 0 and --slurm_mem > 0')
  module = experiments.get_sweep(name, kind)
  title = f'{kind[:-1]} {os.path.basename(name)}'
  plan = sweeps.make_plan(
      module, title=title, experiment=FLAGS.experiment, preset=FLAGS.preset,
      cli=overrides, launcher=os.path.abspath(__file__))
  workdir = FLAGS.workdir or os.path.join(
      'workdirs', f'{kind[:-1]}_{os.path.splitext(os.path.basename(name))[0]}'
      f'_{os.path.splitext(os.path.basename(plan.experiment))[0]}')
  if FLAGS.sweep_dry_run:
    flag = (f'--sweep={os.path.abspath(name) if name.endswith(".py") else name}'
            if FLAGS.sweep else f'--ablation={name}')
    print('\n'.join(sweeps.dry_run_lines(plan, workdir, [flag])))
    return 0
  if FLAGS.sweep_collect:
    if not os.path.isdir(workdir):
      raise InputError(f'--sweep_collect: no sweep in {workdir}')
    sweeps.collect(plan, workdir)
  elif sweeps.run(plan, workdir, FLAGS.sweep_parallel, FLAGS.sweep_launcher,
                  launchers.Slurm(FLAGS.slurm_partition, FLAGS.slurm_time,
                                  FLAGS.slurm_gpus, FLAGS.slurm_cpus,
                                  FLAGS.slurm_mem)) is None:
    return 0  # submitted to SLURM
  with open(os.path.join(workdir, 'results.md')) as f:
    print(f.read())
  return 0


def run(argv) -> int:
  """`main` with its errors as the command line reports them: bad input
  and an OSError (a workdir that cannot be written) are one line on stderr
  and status 2; an interruption, 128 + the signal."""
  try:
    return main(argv)
  except InputError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except OSError as e:  # an unwritable workdir, a full disk, ...
    where = f'{e.filename}: ' if e.filename else ''
    print(f'error: {where}{e.strerror or e}', file=sys.stderr)
    return 2
  except training.Interrupted as e:
    print(f'interrupted: {e}', file=sys.stderr)
    return 128 + e.signum


if __name__ == '__main__':
  sys.exit(run(sys.argv))
