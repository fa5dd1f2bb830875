"""Data parallelism: a 1-D `data` mesh over every device of every process.

The batch (and the recurrent carry that goes with it) is split along its
leading axis over the mesh; parameters and optimizer state are replicated.
XLA's SPMD partitioner inserts the all-reduce of the gradients, so the train
step itself is the same function on one device or on many.

Several processes (hosts) join with `initialize` before JAX touches a device.
Each process then feeds only its own rows of every batch: all processes build
the same global batch from the same seed, and `shard` keeps the rows that
belong to this process's devices. On CPU the collectives go through gloo, so
the whole thing is testable on one machine (two local processes, or
`XLA_FLAGS=--xla_force_host_platform_device_count=N` for N devices).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

AXIS = 'data'


def initialize(coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None):
  """Joins a multi-process run; with no arguments JAX detects the cluster
  (SLURM, Open MPI, Cloud TPU, ...) itself."""
  # CPU collectives across processes; GPU and TPU ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)


def is_primary() -> bool:
  """The process that writes the workdir's files (logs, summaries, plots);
  checkpoints are written by all processes together."""
  return jax.process_index() == 0


@functools.cache
def mesh() -> Mesh:
  return Mesh(np.array(jax.devices()), (AXIS,))


def _place(x, sharding: NamedSharding):
  x = np.asarray(x)
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  # Every process holds the global value; hand over only this process's part.
  index = sharding.addressable_devices_indices_map(x.shape)
  rows = [i[0] for i in index.values() if i]
  if rows:
    start = min(r.start or 0 for r in rows)
    stop = max(x.shape[0] if r.stop is None else r.stop for r in rows)
    x_local = x[start:stop]
  else:
    x_local = x
  return jax.make_array_from_process_local_data(sharding, x_local, x.shape)


def replicate(tree: Any) -> Any:
  """Every leaf copied onto every device (parameters, optimizer state)."""
  sharding = NamedSharding(mesh(), PartitionSpec())
  return jax.tree.map(lambda x: _place(x, sharding), tree)


def shard(tree: Any) -> Any:
  """Every leaf split along its leading (batch) axis over the mesh; a leaf
  whose leading axis the device count does not divide (a short last batch,
  a scalar) is replicated instead, which is correct, only not parallel."""
  devices = mesh().size
  split = NamedSharding(mesh(), PartitionSpec(AXIS))
  whole = NamedSharding(mesh(), PartitionSpec())

  def place(x):
    divisible = np.ndim(x) >= 1 and np.shape(x)[0] % devices == 0
    return _place(x, split if divisible else whole)
  return jax.tree.map(place, tree)


def host_local(tree: Any) -> Any:
  """Replicated arrays as plain numpy, for work every process does alone
  (generation, decoding, writing predictions)."""
  return jax.tree.map(np.asarray, tree)
