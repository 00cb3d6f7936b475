"""Progress inside a long stage: a DuckDB query's share done reaches the display."""

from __future__ import annotations

import duckdb

from uplift import progress


def test_a_running_query_reports_its_progress(monkeypatch):
    monkeypatch.setattr(progress, "POLL_SECONDS", 0.02)
    seen: list[float] = []
    con = duckdb.connect()
    with progress.reporting(seen.append):
        rows = progress.duckdb_query(con, lambda: con.execute(
            "SELECT sum(hash(i)) FROM range(60000000) t(i)").fetchall())
    assert rows and seen and all(0 <= s <= 1 for s in seen)
    assert seen == sorted(seen)


def test_without_a_display_nothing_is_reported():
    con = duckdb.connect()
    assert progress.duckdb_query(con, lambda: con.execute("SELECT 42").fetchall()) == [(42,)]
    progress.report(0.5)                       # no reporter: a no-op


def test_plain_lines_at_every_quarter(capsys):
    from uplift.commands.shell import PlainStages

    with PlainStages() as stages:
        stages("computing features")
        for share in (0.1, 0.3, 0.35, 0.8, 1.0):
            progress.report(share)
    err = capsys.readouterr().err
    assert err.count("of this step") == 3 and "about" in err

