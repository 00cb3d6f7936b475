"""release_memory: freed heap pages go back to the operating system (Linux, glibc)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from uplift.memory import release_memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, trims glibc")
def test_freed_small_allocations_leave_the_resident_memory():
    before = resident_bytes()
    held = [np.ones(500) for _ in range(100_000)]          # ~400 MB in small heap blocks
    assert resident_bytes() - before > 300e6
    del held
    assert release_memory() is True
    assert resident_bytes() - before < 100e6
