"""Benchmarks: measurements of the library, not experiments.

`python launch.py --benchmark=standard` (or `long`, or `matrix`) runs
`speed`: rnn_jax's training step against flax.linen.RNN and PyTorch eager,
and (`matrix`) the matrix-memory cells' three forms (and the chunkwise one
with the layer recomputed in blocks, `model.remat_chunk`).
"""

from rnn_jax import configlib

# Each group's settings of speed.FIELDS, before the command line's.
GROUPS = {
    'standard': {},
    'long': {'benchmark.shapes': 'long', 'benchmark.compile_steps': ''},
    'matrix': {'benchmark.shapes': 'matrix', 'benchmark.compile_steps': ''},
}


def run(group: str, overrides: dict, workdir: str) -> dict:
  """The speed benchmark's `group`, with `--config.benchmark.*` overrides."""
  from benchmarks import speed  # pylint: disable=g-import-not-at-top
  config = configlib.apply_overrides(speed.get_config(),
                                     {**GROUPS[group], **overrides})
  return speed.run(config, workdir)
