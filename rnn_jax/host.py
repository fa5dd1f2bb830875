"""The host process: memory that one training step frees, the next reuses.

XLA on CPU allocates the temporaries of a compiled step in large blocks.
glibc's malloc serves large blocks with a fresh mmap and unmaps them when
they are freed, so every step faults their pages in again and the kernel
zeroes them (the PTB RNN's step: 10,000 page faults, a quarter of its
time). `keep_freed_memory` makes malloc keep what is freed for
reuse instead. The price is that the process's resident memory stays at its
peak, which a training run reaches in its first steps anyway.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
  """Has glibc's malloc keep and reuse freed memory; True if it took.

  Two settings: no mmap for large blocks (they come from the heap) and no
  trimming of a heap's free top. One limit stays: a worker thread's arena
  still maps a block over 64 MB afresh (the char RNN with H=512 and batch
  256 has a 142 MB one); one arena for all threads would cure that, but
  their contention for it slowed ordinary runs down (a tagging preset's
  one-step run: 55-71 s -> 77 s). Call it
  before JAX runs its first computation. A no-op (False) where malloc is
  not glibc's.
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
