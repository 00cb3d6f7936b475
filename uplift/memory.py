"""Give freed memory back to the operating system between the long stages of a run.

After training, the C heap keeps the pages of the freed training tables (pandas, LightGBM and
DuckDB allocate through ``malloc``); the process's resident memory then stays gigabytes above
what it holds and the next stage's peak stacks on top (a 1,000,000-customer plan: ~3 GB kept
after training). :func:`release_memory` collects Python's garbage, empties PyArrow's pool and
asks glibc to return the free pages (``malloc_trim``); elsewhere it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def release_memory() -> bool:
    """Collect garbage and return free heap pages to the OS (the C heap and PyArrow's memory
    pool); whether the C heap was trimmed."""
    gc.collect()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):       # not glibc (e.g. musl): nothing to trim
        return False
