"""The audit log: one chained entry per command; edits, deletions and reorders are found."""

from __future__ import annotations

import json

import pandas as pd
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


def test_error_messages_are_redacted_when_pseudonymising(tmp_path, monkeypatch, capsys):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(log))
    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", "ab" * 32)
    (tmp_path / "c.csv").write_text("customer_id,segment,open_date\n10000123,a,2024-01-01\n"
                                    "10000123,b,2024-01-02\n")
    assert run(["validate", "--customers", str(tmp_path / "c.csv")]) == 2
    entry = json.loads(lines(log)[-1])
    assert "duplicate" in entry["message"] and "10000123" not in log.read_text()
    err = capsys.readouterr().err
    assert "duplicate" in err and "rows 1, 2" in err and "10000123" not in err


def test_a_half_written_last_line_stops_every_command_cleanly(log, tmp_path, capsys):
    with open(log, "a", encoding="utf-8") as handle:
        handle.write('{"time": "2026-01-01T00:00:00", "seq": 6, "prev')      # killed mid-write
    out = tmp_path / "k9.key"
    assert run(["keys", "new", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "uplift audit verify" in err and "damaged" in err and "Traceback" not in err
    assert not out.exists()                                                # nothing was run
    assert run(["audit", "verify", "--log", str(log)]) == 2
    assert "line 6" in capsys.readouterr().err


def test_an_unwritable_log_runs_nothing(tmp_path, monkeypatch, capsys):
    import os

    if os.geteuid() == 0:
        # root ignores file permissions: make the log's folder a file instead
        blocker = tmp_path / "not_a_folder"
        blocker.write_text("")
        monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(blocker / "audit.jsonl"))
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(folder / "audit.jsonl"))
    out = tmp_path / "k.key"
    assert run(["keys", "new", "--out", str(out)]) == 2
    assert not out.exists() and "nothing was run" in capsys.readouterr().err


def test_keyed_chain_detects_truncation_with_a_rewritten_head(tmp_path, monkeypatch, capsys):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(path))
    monkeypatch.setenv("UPLIFT_MASTER_KEY", "cd" * 32)
    for k in range(4):
        run(["keys", "new", "--out", str(tmp_path / f"k{k}.key")])
    assert audit.verify(path).ok
    kept = lines(path)[:2]
    path.write_text("\n".join(kept) + "\n")
    last = json.loads(kept[-1])
    head = json.loads(audit.head_path(path).read_text())
    # the forger copies the log's own values into the head (and any MAC they can find)
    audit.head_path(path).write_text(json.dumps({"seq": last["seq"], "hash": last["hash"],
                                                 "mac": last["mac"]}))
    verdict = audit.verify(path)
    assert not verdict.ok and "MAC does not verify" in verdict.problem
    audit.head_path(path).write_text(json.dumps(head))
    assert not audit.verify(path).ok                       # the true head says entry 4
    monkeypatch.delenv("UPLIFT_MASTER_KEY")
    audit.head_path(path).write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}))
    assert audit.verify(path).ok        # without a key the same forgery passes: why keys matter


def test_export_is_logged_before_release_and_leaves_nothing_if_it_cannot_be(
        tmp_path, monkeypatch, capsys):
    import os

    from uplift.security.pseudonym import protect_ids

    key = b"e" * 32
    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", key.hex())
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("UPLIFT_AUDIT_LOG", str(log))
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,segment,open_date\n007,a,2024-01-01\n8,b,2024-01-02\n"
                         "9,b,2024-01-02\n")
    plan = protect_ids(pd.DataFrame({"customer_id": ["007", "8", "9"], "offer": "coupon",
                                     "expected_gain": [5.0, 4.0, 3.0], "holdout": [0, 0, 1]}),
                       key=key)
    plan.to_csv(tmp_path / "plan.csv", index=False)
    out = tmp_path / "list.csv"
    assert run(["export", "--plan", str(tmp_path / "plan.csv"), "--customers", str(customers),
                "--out", str(out)]) == 0
    released = pd.read_csv(out, dtype={"customer_id": str})
    assert released["customer_id"].tolist() == ["007", "8"]          # zeros kept, no holdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    commands = [json.loads(line)["command"] for line in lines(log)]
    assert commands[-2:] == ["export (release)", "export"]
    out.unlink()
    real_append = audit.append

    def failing_append(command, *args, **kwargs):
        if command == "export (release)":
            raise OSError("disk full")
        return real_append(command, *args, **kwargs)

    monkeypatch.setattr(audit, "append", failing_append)
    assert run(["export", "--plan", str(tmp_path / "plan.csv"), "--customers", str(customers),
                "--out", str(out)]) == 2
    assert not out.exists() and "nothing was released" in capsys.readouterr().err
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".list.csv")]
    plan.drop(columns=["expected_gain"]).to_csv(tmp_path / "bare.csv", index=False)
    assert run(["export", "--plan", str(tmp_path / "bare.csv"), "--customers", str(customers),
                "--out", str(tmp_path / "bare_list.csv")]) == 2
    assert "expected_gain" in capsys.readouterr().err
