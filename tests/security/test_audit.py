"""The audit log: one chained entry per command; edits, deletions and reorders are found."""

from __future__ import annotations

import json

import pytest

from uplift.cli import run
from uplift.security import audit


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(path))
    monkeypatch.setenv("UPLIFT_OPERATOR", "planner.anna")
    for k in range(3):
        run(["keys", "new", "--out", str(tmp_path / f"k{k}.key")])
    run(["churn", "fit", "--table", str(tmp_path / "missing.csv"), "--label", "y", "--out",
         str(tmp_path / "m")])
    run(["keys", "new", "--out", str(tmp_path / "k4.key")])
    return path


def lines(path):
    return path.read_text().splitlines()


def test_every_command_is_logged_with_its_outcome(log, tmp_path, capsys):
    entries = [json.loads(line) for line in lines(log)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert {e["operator"] for e in entries} == {"planner.anna"}
    failed = entries[3]
    assert failed["command"] == "churn fit" and failed["exit_code"] == 2
    assert "file not found" in failed["message"]
    assert entries[0]["outputs"] == []  # key files are never hashed into the log
    assert run(["audit", "verify", "--log", str(log)]) == 0
    assert "5 entries, chain intact" in capsys.readouterr().out


@pytest.mark.parametrize("damage, found", [
    (lambda ls: ls[:2] + [ls[2].replace("planner.anna", "someone")] + ls[3:], "line 3"),
    (lambda ls: ls[:1] + ls[2:], "entry 2 removed"),
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "line 2: holds entry 3 where entry 2 belongs"),
    (lambda ls: ls[1:], "line 1: entry 1 removed"),
    (lambda ls: ls[:-1], "removed from the end"),
    (lambda ls: ls[:3] + ['{"seq": 4'] + ls[4:], "line 4"),
])
def test_verify_finds_the_first_broken_entry(log, capsys, damage, found):
    log.write_text("\n".join(damage(lines(log))) + "\n")
    verdict = audit.verify(log)
    assert not verdict.ok and found in verdict.problem
    assert run(["audit", "verify", "--log", str(log)]) == 2
    assert found in capsys.readouterr().err


def test_error_messages_are_redacted_when_pseudonymising(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(log))
    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", "ab" * 32)
    (tmp_path / "c.csv").write_text("customer_id,segment,open_date\n10000123,a,2024-01-01\n"
                                    "10000123,b,2024-01-02\n")
    assert run(["validate", "--customers", str(tmp_path / "c.csv")]) == 2
    entry = json.loads(lines(log)[-1])
    assert "duplicate" in entry["message"] and "10000123" not in log.read_text()
