"""Shared fixtures: a small simulated bank, written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-customer simulated bank (seed 11) in a session temp folder."""
    from uplift.cli import run

    out = tmp_path_factory.mktemp("bank") / "bank"
    assert run(["--quiet", "simulate", "--customers", "3000", "--seed", "11", "--out",
                str(out)]) == 0
    return out
