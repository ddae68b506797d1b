"""How the stack's processes use glibc's malloc: two arenas, and freed memory given back at once.

- Two arenas per process, instead of up to eight per core. glibc gives a thread that finds the arenas busy
  one of its own, and what a thread frees stays in its arena. The stack's processes run many threads
  (moto's request threads, Jetty's in DynamoDB Local, the pollers, the emulators' loop), so freed memory
  ended up spread thin over many arenas: 6 MB more for the stack process and for the JVM under the
  bench's load.
- Fixed trim and mmap thresholds (128 KiB, glibc's own starting values). By default glibc raises both
  each time a large block is freed, up to 32 MiB, after which the top of the heap is never returned: the
  gateway process crept from 107 to 111 MB over the bench's 100,000 deliveries; with these it stays at
  104-105 MB, as fast.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

ARENAS = 2
THRESHOLD_BYTES = 128 * 1024
# For processes started from here: glibc reads these at start (the trailing underscores are its spelling).
VARIABLES = {
    "MALLOC_ARENA_MAX": str(ARENAS),
    "MALLOC_TRIM_THRESHOLD_": str(THRESHOLD_BYTES),
    "MALLOC_MMAP_THRESHOLD_": str(THRESHOLD_BYTES),
}
# mallopt's parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def apply() -> None:
    """The same settings for this process, from now on (glibc only; elsewhere nothing to do)."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_ARENA_MAX, ARENAS)
        libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES)
        libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES)
    except (OSError, AttributeError):  # musl and others have no mallopt: their allocator does not do this
        return
