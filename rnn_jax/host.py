"""The host process: memory that one training step frees, the next reuses.

XLA on CPU allocates the temporaries of a compiled step in large blocks.
glibc's malloc serves large blocks with a fresh mmap and unmaps them when
they are freed, so every step faults their pages in again and the kernel
zeroes them (the README's Speed section has the measurements).
`keep_freed_memory` makes malloc keep what is freed for reuse instead (and
`dispatch_on_calling_thread` keeps the largest blocks in the heap that does
so). The price is that the process's resident memory stays at its peak,
which a training run reaches in its first steps anyway.
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

  Two settings: no mmap for large blocks (they come from the heap) and no
  trimming of a heap's free top. They do not reach the arena of a worker
  thread, which maps every block over 64 MB afresh (see
  `dispatch_on_calling_thread`); one arena for all threads would, but the
  threads' contention for it slowed ordinary runs down.

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
  return all(mallopt(param, value) == 1 for param, value in (
      (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)))


def dispatch_on_calling_thread():
  """JAX on CPU runs each computation on the thread that calls it
  (`jax_cpu_enable_async_dispatch=False`; computations over several devices
  stay asynchronous), so that its temporaries come from the main thread's
  heap, which `keep_freed_memory` makes keep blocks of any size; a worker
  thread's arena maps every block over 64 MB afresh.

  The price: Python no longer prepares (or compiles) the next computation
  while one runs, which costs an experiment whose batches come in many
  shapes more than it saves; the language model, whose batches have one
  shape, asks for it (`DISPATCH_ON_CALLING_THREAD`). Call it before JAX
  runs its first computation.
  """
  jax.config.update('jax_cpu_enable_async_dispatch', False)
