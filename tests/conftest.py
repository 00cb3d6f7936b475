"""Shared fixtures: a small simulated bank, written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _audit_log_in_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Commands run by tests append to a temporary audit log, never the user's."""
    os.environ["UPLIFT_AUDIT_LOG"] = str(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    # the per-user model-signing key is created in a temporary configuration folder
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    for variable in ("UPLIFT_PSEUDONYM_KEY", "UPLIFT_PSEUDONYM_KEY_FILE", "UPLIFT_MASTER_KEY",
                     "UPLIFT_MASTER_KEY_FILE", "UPLIFT_MODEL_KEY", "UPLIFT_MODEL_KEY_FILE"):
        os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def small_bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-customer simulated bank (seed 11) in a session temp folder."""
    from uplift.cli import run

    out = tmp_path_factory.mktemp("bank") / "bank"
    assert run(["--quiet", "simulate", "--customers", "3000", "--seed", "11", "--out",
                str(out)]) == 0
    return out

