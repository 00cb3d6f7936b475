"""How far the running stage has got, for steps that take minutes inside one stage.

A command's progress display (:class:`uplift.commands.shell.Stages`, or plain lines in logs)
installs a reporter with :func:`reporting`; library code that knows its own progress (a DuckDB
query, scoring in chunks) calls :func:`report` with the share done. Without a reporter the
calls cost nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

_REPORTER: ContextVar[Callable[[float], None] | None] = ContextVar("uplift_progress",
                                                                   default=None)
T = TypeVar("T")
#: seconds between two looks at a running query's progress
POLL_SECONDS = 1.0


def report(done: float) -> None:
    """Tell the display that the share ``done`` (0..1) of the current stage is done."""
    reporter = _REPORTER.get()
    if reporter is not None:
        reporter(min(max(done, 0.0), 1.0))


@contextmanager
def reporting(reporter: Callable[[float], None]) -> Iterator[None]:
    """Send :func:`report` calls (in this context) to ``reporter``."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def duckdb_query(con, run: Callable[[], T]) -> T:
    """``run()`` (a DuckDB query on ``con``), reporting the query's progress while it runs."""
    reporter = _REPORTER.get()
    if reporter is None:
        return run()
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(POLL_SECONDS):
            share = con.query_progress()
            if share >= 0:
                reporter(min(share / 100.0, 1.0))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return run()
    finally:
        finished.set()
        watcher.join()
