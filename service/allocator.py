"""glibc malloc settings for a long-running feature-extraction process.

Each request allocates a few short-lived arrays of several hundred kilobytes (frames,
spectra). Above glibc's mmap threshold every one is a fresh ``mmap`` whose pages fault in on
first touch and go back to the kernel on free: on this project's VMs that tripled the cost of
the STFT (0.5 -> 1.5 ms for a 3 s clip, ``bench/speed.py``). Raising the mmap and trim
thresholds keeps such buffers in the heap for reuse. Limiting arenas bounds the resident set
that threadpool threads would otherwise spread over one heap each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

#: Largest block still served from the heap: well above one request's arrays (a 60 s clip's
#: frames are ~25 MB), and glibc's own ceiling for the dynamic threshold on 64-bit.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free heap kept before it is returned to the kernel.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
ARENA_MAX = 2


def tune_allocator(
    *,
    mmap_threshold: int = MMAP_THRESHOLD_BYTES,
    trim_threshold: int = TRIM_THRESHOLD_BYTES,
    arena_max: int = ARENA_MAX,
) -> bool:
    """Apply the settings through ``mallopt``; ``False`` where the C library is not glibc.

    Effective for allocations and threads created after the call, so call it at start-up.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("allocator tuning skipped: no glibc mallopt")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, mmap_threshold),
            (M_TRIM_THRESHOLD, trim_threshold),
            (M_ARENA_MAX, arena_max),
        )
    )
    if not applied:
        log.warning("mallopt refused a setting; allocator left partly at its defaults")
    return applied
