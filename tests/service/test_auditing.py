"""Request entries are chained in groups: all present, in order, chain intact; a log that
cannot be written fails every waiting request instead of dropping its entry."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from uplift.security import audit
from uplift.service.auditing import GroupAudit


def _entry(i: int) -> dict:
    return audit.new_entry("serve", ["POST", "/v1/events", f"request-{i}"], audit.Recorder(),
                           exit_code=0, message="HTTP 200", seconds=0.001, who="bench")


def test_concurrent_requests_are_all_chained(tmp_path):
    log = tmp_path / "audit.jsonl"
    writer = GroupAudit(log)
    audit.append("plan", ["--budget", "1"], audit.Recorder(), exit_code=0, message=None,
                 seconds=0.1, path=log)                 # a command's entry before the service's
    with ThreadPoolExecutor(16) as pool:
        written = list(pool.map(lambda i: writer.record(_entry(i)).result(timeout=30),
                                range(400)))
    writer.stop()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, 402))
    assert sorted(e["arguments"][2] for e in lines[1:]) == sorted(f"request-{i}"
                                                                  for i in range(400))
    assert {e["seq"] for e in written} == set(range(2, 402))
    assert audit.verify(log).ok


def test_a_log_that_cannot_be_written_fails_the_request(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log's folder should be")
    writer = GroupAudit(blocked / "audit.jsonl")
    with pytest.raises(OSError):
        writer.record(_entry(0)).result(timeout=30)
    writer.stop()
