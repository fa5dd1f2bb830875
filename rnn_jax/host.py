"""The host process: memory that one training step frees, the next reuses.

XLA on CPU allocates the temporaries of a compiled step as one block (142 MB
for the char RNN with H=512 and batch 256). glibc's malloc serves a block
that large with a fresh mmap and unmaps it when it is freed, so every step
faults the block's pages in again and the kernel zeroes them: a quarter of
that step's time went to page faults. `keep_freed_memory` makes malloc keep
what is freed for reuse instead. The price is that the process's resident
memory stays at its peak, which a training run reaches in its first steps
anyway.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def keep_freed_memory() -> bool:
  """Has glibc's malloc keep and reuse freed memory; True if it took.

  Three settings: no mmap for large blocks (they come from the heap), no
  trimming of the heap's free top, and one arena for every thread (a worker
  thread's arena maps any block over 64 MB afresh whatever the other two
  say). Call it before JAX runs its first computation: threads that already
  have their own arena keep it. A no-op (False) where malloc is not glibc's.
  """
  if not sys.platform.startswith('linux'):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):  # not glibc (musl has no mallopt)
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  return all(mallopt(param, value) == 1 for param, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)))
