"""Two glibc malloc arenas per process of the stack, instead of up to eight per core.

glibc gives a thread that finds the arenas busy one of its own, and what a thread frees stays in its
arena. The stack's processes run many threads (moto's request threads, Jetty's in DynamoDB Local, the
pollers, the emulators' loop), so freed memory ends up spread thin over many arenas and the processes
grow. Measured under the bench's load: 6 MB less for the stack process and for the JVM, within noise in
speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

ARENAS = 2
VARIABLES = {"MALLOC_ARENA_MAX": str(ARENAS)}  # for processes started from here: glibc reads it at start
_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit() -> None:
    """Cap this process's arenas from now on (glibc only; elsewhere nothing to do)."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_ARENA_MAX, ARENAS)
    except (OSError, AttributeError):  # musl and others have no mallopt: their allocator does not do this
        return
