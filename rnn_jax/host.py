"""The host process: memory that one training step frees, the next reuses.

XLA on CPU allocates the temporaries of a compiled step in large blocks.
glibc's malloc serves large blocks with a fresh mmap and unmaps them when
they are freed, so every step faults their pages in again and the kernel
zeroes them (the PTB RNN's step: 10,000 page faults, a quarter of its
time). `keep_freed_memory` makes malloc keep what is freed for
reuse instead, and has JAX run each computation on the thread that calls it,
whose heap can keep blocks of any size. The price is that the process's
resident memory stays at its peak, which a training run reaches in its first
steps anyway.
"""

from __future__ import annotations

import ctypes
import sys

import jax

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
  """Has glibc's malloc keep and reuse freed memory; True if it took.

  Two malloc settings: no mmap for large blocks (they come from the heap)
  and no trimming of a heap's free top. They do not reach the arena of a
  worker thread, which maps every block over 64 MB afresh (the char RNN with
  H=512 and batch 256 has a 142 MB one: 36,000 faults a step), so JAX on
  CPU also stops dispatching computations to a worker thread
  (`jax_cpu_enable_async_dispatch=False`; computations over several devices
  stay asynchronous): the main thread's heap serves them. Measured: that
  step 180 -> 130-150 ms, PTB-medium's 540 -> 497 ms, the main job equal,
  the smallest benchmark shape (H=64, a 1.2 ms step) 13% slower, since
  Python no longer prepares the next step while one runs. One arena for all
  threads would also cure it, but their contention for it slowed ordinary
  runs down (a tagging preset's one-step run: 55-71 s -> 77 s).

  Call it before JAX runs its first computation. A no-op (False) where
  malloc is not glibc's.
  """
  if not sys.platform.startswith('linux'):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):  # not glibc (musl has no mallopt)
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  if not all(mallopt(param, value) == 1 for param, value in (
      (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))):
    return False
  jax.config.update('jax_cpu_enable_async_dispatch', False)
  return True
