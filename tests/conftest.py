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



@pytest.fixture(autouse=True, scope="session")
def _record_cli_calls() -> None:
    """Record the options of every in-process ``uplift`` call with the test functions and
    fixtures that made it (read by tests/test_cli_options.py, which runs last)."""
    import sys

    import uplift.cli
    from tests.cli_calls import CALLS, callers, current_test

    dispatch = uplift.cli._dispatch

    def recording(argv: list[str]):
        test = current_test()
        # the functions of test files on the stack, and the running test (its setup included:
        # a module fixture's calls count for the first test that uses it)
        CALLS.add(callers(sys._getframe(1)) + ([test.split("[", 1)[0]] if test else []), argv)
        if test is not None:
            CALLS.by_test.setdefault(test, []).append(list(argv))
        return dispatch(argv)

    uplift.cli._dispatch = recording
    yield
    uplift.cli._dispatch = dispatch
    dump = os.environ.get("UPLIFT_TEST_CALLS")           # for writing the options table
    if dump:
        import json

        Path(dump).write_text(json.dumps({
            "by_test": CALLS.by_test,
            "by_caller": {k: {c: sorted(o) for c, o in v.items()}
                          for k, v in CALLS.by_caller.items()}}, indent=0))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        from tests.cli_calls import CALLS

        CALLS.passed_tests.add(report.nodeid.split("[", 1)[0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The check of the options table runs after every other test."""
    last = [i for i in items if i.nodeid.startswith("tests/test_cli_options.py")]
    items[:] = [i for i in items if i not in last] + last


@pytest.fixture(scope="session")
def trained_models(small_bank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`uplift train` on the small bank, once per session, into the cache folder a default
    `uplift plan --data <small bank>` looks in: plan tests that set ``UPLIFT_CACHE`` to
    ``cache`` reuse these models instead of training again.

    The run passes every train option: the planning date the plan would pick by itself, a copy
    of the default settings file, seed 0, and as ``--out`` the folder named by the run's
    fingerprint (computed here by the library, as the plan computes it)."""
    import shutil

    from uplift.cli import run
    from uplift.pipeline import planning_date
    from uplift.planner import prepare_run

    work = tmp_path_factory.mktemp("trained")
    config = work / "settings.yaml"
    shutil.copy(Path(__file__).resolve().parents[1] / "configs" / "default.yaml", config)
    patch = pytest.MonkeyPatch()
    patch.setenv("UPLIFT_CACHE", str(work / "cache"))
    try:
        probe = prepare_run(small_bank_dir, None, None, 0, cache=work / "cache")
        day = planning_date(small_bank_dir, probe.inputs, None)
        target = work / "cache" / "models" / probe.key
        assert run(["--quiet", "train", "--data", str(small_bank_dir), "--as-of", day,
                    "--config", str(config), "--seed", "0", "--out", str(target)]) == 0
    finally:
        patch.undo()
    return {"cache": work / "cache", "models": target, "as_of": day, "config": config,
            "key": probe.key}
