"""The options table in tests/README.md: every command and option of the CLI, each with a test
that passes it. A new command or option without a row, a row for an option that is gone, a row
naming a test that does not exist, or a test that ran without passing its option fails here.

This file runs after every other test (see conftest.py) so the recorded calls are complete.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.cli_calls import CALLS, app_options, readme_table

ROOT = Path(__file__).resolve().parents[1]


def _row(command: str, option: str, test: str = "tests/...::test_...") -> str:
    return f"| `{command}` | `{option}` | `{test}` |"


def test_every_command_and_option_has_a_row_and_no_row_is_stale():
    options, table = app_options(), readme_table()
    missing = sorted(set(options) - set(table))
    stale = sorted(set(table) - set(options))
    assert not missing, ("add to the table in tests/README.md (with the test that passes "
                         "it):\n" + "\n".join(_row(*key) for key in missing))
    assert not stale, "options no longer in the CLI:\n" + "\n".join(
        _row(*key, test) for key, test in ((k, table[k]) for k in stale))


def test_every_listed_test_exists():
    functions: dict[str, set[str]] = {}
    for key, test in readme_table().items():
        file, _, name = test.partition("::")
        if file not in functions:
            path = ROOT / file
            assert path.is_file(), (key, test)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            functions[file] = {n.name for n in ast.walk(tree)
                               if isinstance(n, ast.FunctionDef)}
        assert name in functions[file], (key, test)


def test_every_listed_test_passes_its_option():
    """Each row whose test passed in this run (or whose fixture ran): a call made from that
    test function or fixture gave the option to that command."""
    options, table = app_options(), readme_table()
    ran = {key: test for key, test in table.items()
           if test in CALLS.passed_tests or test in CALLS.by_caller}
    if not ran:
        pytest.skip("none of the listed tests ran in this session")
    not_passed = [_row(*key, test) for key, test in sorted(ran.items())
                  if key in options and not CALLS.passed(test, key[0], options[key])]
    assert not not_passed, "these tests ran but never passed their option:\n" + "\n".join(
        not_passed)
