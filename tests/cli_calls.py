"""Which command-line options the suite passes, and the table of them in tests/README.md.

Every in-process ``uplift.cli.run`` call made by a test is recorded with the test that made it
(see ``record_calls`` in conftest.py). ``tests/test_cli_options.py`` checks the README table
against the Typer app and against these records.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"
GLOBAL = "uplift"                       # the row name of the options taken before a command


TESTS = Path(__file__).resolve().parent


@dataclass
class Calls:
    """Options passed per command, per test function or fixture that made the call
    (``tests/x/test_y.py::test_z``: every function of the test files on the call stack, and
    the test being run, whose setup runs its fixtures)."""

    by_caller: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    passed_tests: set[str] = field(default_factory=set)     # file::function that passed
    by_test: dict[str, list[list[str]]] = field(default_factory=dict)   # nodeid -> argvs

    def add(self, callers: list[str], argv: list[str]) -> None:
        from uplift.cli import _command_name, global_options_first

        argv = global_options_first(list(argv))
        command = _command_name(argv)
        if not command:
            return
        rest, given = list(argv), {}
        for word in command.split():                # options before the command are global
            i = rest.index(word)
            given.setdefault(GLOBAL, set()).update(_options(rest[:i]))
            rest = rest[i + 1:]
        given.setdefault(command, set()).update(_options(rest))
        if any(not a.startswith("-") for a in rest):
            given[command].add("<argument>")
        for caller in callers:
            used = self.by_caller.setdefault(caller, {})
            for name, options in given.items():
                used.setdefault(name, set()).update(options)

    def passed(self, caller: str, command: str, options: tuple[str, ...]) -> bool:
        given = self.by_caller.get(caller, {}).get(command, set())
        return any(o in given for o in options)


def callers(frame) -> list[str]:
    """``tests/...py::function`` of every frame of a test file on the stack above ``frame``."""
    root = TESTS.parent
    found = []
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(TESTS) and path.name != "cli_calls.py":
            found.append(f"{path.relative_to(root).as_posix()}::{frame.f_code.co_name}")
        frame = frame.f_back
    return found


def _options(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("-") and a != "--"}


CALLS = Calls()


def current_test() -> str | None:
    """The node id of the test pytest is running now (set during setup, call and teardown)."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    return current.rsplit(" (", 1)[0] if current else None


def app_options() -> dict[tuple[str, str], tuple[str, ...]]:
    """(command, option) -> every spelling of it, read from the Typer app itself.

    The option column uses the longest spelling (``--quiet`` for ``-q``); a command's
    arguments are one row named ``<argument>``."""
    import typer.main

    from uplift.cli import app

    rows: dict[tuple[str, str], tuple[str, ...]] = {}

    def walk(command, name: str) -> None:
        for param in command.params:
            if type(param).__name__.endswith("Option"):
                spellings = tuple(param.opts) + tuple(param.secondary_opts)
                rows[(name or GLOBAL, max(param.opts, key=len))] = spellings
            else:
                rows[(name, "<argument>")] = ("<argument>",)
        for sub_name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, f"{name} {sub_name}".strip())

    walk(typer.main.get_command(app), "")
    return rows


ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|")


def readme_table(path: Path = README) -> dict[tuple[str, str], str]:
    """(command, option) -> ``tests/file.py::test_name`` from the README's options table."""
    table: dict[tuple[str, str], str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            command, option, test = match.groups()
            if (command, option) in table:
                raise AssertionError(f"{path.name}: row {command} {option} appears twice")
            table[(command, option)] = test
    return table
