"""Append-only, hash-chained audit log: one JSON line per command.

Each entry holds the time (UTC), operator (``UPLIFT_OPERATOR`` or the login name), command and
arguments, SHA-256 and row counts of the files read and written, outcome and exit code, its
sequence number, the previous entry's hash and its own hash (SHA-256 over the canonical JSON
of every other field). Editing an entry breaks its hash; deleting or reordering entries breaks
the sequence and the chain; removing entries from the end is caught by the head file
(``<log>.head``: the last sequence number and hash, rewritten atomically after each append).
Without a key, someone able to rewrite the whole log *and* the head can forge it. With a master
or pseudonym key configured, each entry and the head also carry an HMAC-SHA256 under a key
derived from it (:func:`audit_key`): truncating the log and rewriting the head from the log's
own values is then detected, since the head's MAC cannot be made without the key. After a key
is first configured, the next command's entry keys the head.

A damaged log (a half-written last line, a head that is not JSON) or a log that cannot be written
stops every command *before* it runs (:func:`check_ready`): exit 2, "run ``uplift audit
verify``". Commands that release raw data (``uplift export``) write and fsync their entry
before the release (:func:`append` called ahead of the write) and release nothing if they
cannot.

The log lives at ``UPLIFT_AUDIT_LOG`` (default: ``audit.jsonl`` in the user's uplift data
folder). Entries are appended under an exclusive file lock, so concurrent commands keep the
chain intact. No customer data is logged: file paths, hashes and counts only; with a
pseudonym key configured, error messages are logged with quoted values and long numbers
redacted (they may hold customer ids).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


class AuditError(Exception):
    """The audit log cannot take entries (damaged or not writable)."""


def audit_key() -> bytes | None:
    """Key of the entry and head MACs: derived from the master key, else from the pseudonym
    key; None when neither is configured (the chain is then unkeyed)."""
    from uplift.errors import InputError
    from uplift.security.keys import encryption_key, pseudonym_key

    try:
        base = encryption_key() or pseudonym_key()
    except InputError:
        return None                   # a malformed key: the command itself reports it
    return hashlib.sha256(b"uplift audit log\x00" + base).digest() if base else None


def _mac(key: bytes, *parts: object) -> str:
    import hmac

    text = "\x00".join(str(p) for p in parts)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def check_ready(path: Path | None = None) -> None:
    """Refuse to start a command when its entry could not be appended: the log's last line
    is damaged, or the log (or its folder) is not writable. Raises :class:`AuditError`."""
    path = path or log_path()
    hint = "run `uplift audit verify` and repair or move the log"
    if path.exists():
        if not path.is_file() or not os.access(path, os.W_OK):
            raise AuditError(f"{path}: audit log is not writable; every command must be "
                             "logged, so nothing was run")
        with open(path, "rb") as handle:
            last = _last_line(handle)
        if last is not None:
            try:
                entry = json.loads(last)
            except json.JSONDecodeError:
                entry = None
            if not isinstance(entry, dict) or not {"seq", "hash"} <= entry.keys():
                raise AuditError(f"{path}: the last line of the audit log is damaged (a "
                                 f"half-written entry?); {hint}")
    else:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise AuditError(f"{path}: the audit log cannot be created ({folder} is not a "
                             "writable folder); every command must be logged, so nothing was "
                             "run")


def log_path() -> Path:
    """The audit log file (``UPLIFT_AUDIT_LOG`` or the user's data folder)."""
    if value := os.environ.get("UPLIFT_AUDIT_LOG"):
        return Path(value)
    from platformdirs import user_data_dir

    return Path(user_data_dir("uplift")) / "audit.jsonl"


def operator() -> str:
    if value := os.environ.get("UPLIFT_OPERATOR"):
        return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``entry`` without its ``hash`` and ``mac`` fields."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Recorder:
    """Files one command read and wrote (filled by :mod:`uplift.io`)."""

    inputs: dict[str, int | None] = field(default_factory=dict)
    outputs: dict[str, int | None] = field(default_factory=dict)


_current: list[Recorder] = []


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """Collect the files touched inside the block."""
    recorder = Recorder()
    _current.append(recorder)
    try:
        yield recorder
    finally:
        _current.remove(recorder)


def note_input(path: str | Path, rows: int | None = None) -> None:
    if _current:
        key = str(Path(path).resolve())
        previous = _current[-1].inputs.get(key)
        _current[-1].inputs[key] = rows if rows is not None else previous


def note_output(path: str | Path, rows: int | None = None) -> None:
    if _current:
        _current[-1].outputs[str(Path(path).resolve())] = rows


def move_outputs(stage: Path, target: Path) -> None:
    """Outputs written in a staging folder are recorded under their final folder."""
    if not _current:
        return
    outputs = _current[-1].outputs
    stage_text = str(stage.resolve())
    for key in list(outputs):
        if key.startswith(stage_text + os.sep):
            outputs[str(target.resolve()) + key[len(stage_text):]] = outputs.pop(key)


def _describe(files: dict[str, int | None]) -> list[dict[str, Any]]:
    from uplift.files import file_sha256

    described = []
    for path, rows in sorted(files.items()):
        item: dict[str, Any] = {"path": path}
        if Path(path).exists():
            item["sha256"] = file_sha256(path)
        else:
            item["missing"] = True
        if rows is not None:
            item["rows"] = rows
        described.append(item)
    return described


def _last_line(handle) -> str | None:
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    step = 1 << 16
    start = max(0, end - step)
    while True:
        handle.seek(start)
        tail = handle.read(end - start)
        lines = tail.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or start == 0:
            last = lines[-1].decode("utf-8", errors="replace")
            return last or None
        start = max(0, start - step)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_LONG_NUMBER = re.compile(r"(?<![\w.])\d{5,}(?![\w.])")


def redact(message: str | None) -> str | None:
    """With pseudonymisation on, an error message is logged without quoted values and long
    numbers (they may be customer ids): ``'10000123'`` becomes ``'…'``."""
    from uplift.security.keys import pseudonym_key

    if message is None or pseudonym_key() is None:
        return message
    return _LONG_NUMBER.sub("…", _QUOTED.sub("'…'", message))


def append(command: str, argv: list[str], recorder: Recorder, *, exit_code: int,
           message: str | None, seconds: float, path: Path | None = None,
           who: str | None = None) -> dict[str, Any]:
    """Append one entry for a finished command (or service request: ``who`` names the
    caller instead of the process's operator); returns it."""
    entry = new_entry(command, argv, recorder, exit_code=exit_code, message=message,
                      seconds=seconds, who=who)
    return append_entries([entry], path)[0]


def new_entry(command: str, argv: list[str], recorder: Recorder, *, exit_code: int,
              message: str | None, seconds: float, who: str | None = None) -> dict[str, Any]:
    """An entry not yet chained (no sequence number or hashes): see :func:`append_entries`."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "operator": who or operator(), "host": socket.gethostname(), "command": command,
        "arguments": argv, "inputs": _describe(recorder.inputs),
        "outputs": _describe(recorder.outputs),
        "outcome": "ok" if exit_code == 0 else "failed", "exit_code": exit_code,
        "message": redact(message), "seconds": round(seconds, 3),
    }


def append_entries(entries: list[dict[str, Any]], path: Path | None = None
                   ) -> list[dict[str, Any]]:
    """Chain ``entries`` (from :func:`new_entry`) onto the log in order, under one lock, with
    one write, one fsync and one head update (a service appends its requests in groups);
    returns them with their sequence numbers and hashes."""
    path = path or log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not entries:
        return []
    key = audit_key()
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            last = _last_line(handle)
            try:
                previous = json.loads(last) if last else None
                seq = previous["seq"] + 1 if previous else 1
                prev = previous["hash"] if previous else GENESIS
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise AuditError(f"{path}: the last line of the audit log is damaged; run "
                                 "`uplift audit verify`") from exc
            lines = []
            for entry in entries:
                entry["seq"], entry["prev"] = seq, prev
                if key is not None:
                    entry["keyed"] = True
                entry["hash"] = entry_hash(entry)
                if key is not None:
                    entry["mac"] = _mac(key, "entry", entry["hash"])
                lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
                seq, prev = seq + 1, entry["hash"]
            handle.seek(0, os.SEEK_END)
            handle.write("".join(lines).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            _write_head(path, entries[-1], key)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return entries


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _write_head(path: Path, entry: dict[str, Any], key: bytes | None) -> None:
    """Replace the head file (sequence and hash of the last entry, MAC'd with ``key``) by a
    rename; called under the log's lock, so one fixed temporary name serves every writer."""
    head: dict[str, Any] = {"seq": entry["seq"], "hash": entry["hash"]}
    if key is not None:
        head["mac"] = _mac(key, "head", entry["seq"], entry["hash"])
    target = head_path(path)
    partial = target.with_name(target.name + ".part")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(head, indent=2) + "\n")
    os.replace(partial, target)


@dataclass
class Verdict:
    ok: bool
    entries: int
    head: str
    problem: str | None = None
    line: int | None = None


def verify(path: Path | None = None) -> Verdict:
    """Check the whole chain; report the first edited, removed or reordered entry."""
    import hmac

    path = path or log_path()
    if not path.exists():
        return Verdict(False, 0, GENESIS, f"{path}: audit log not found", None)
    key = audit_key()
    expected_seq, expected_prev, count = 1, GENESIS, 0
    entries: list[tuple[int, dict[str, Any] | None]] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    parsed = json.loads(line)
                except json.JSONDecodeError:
                    parsed = None
                entries.append((line_no, parsed if isinstance(parsed, dict) else None))
    present = {e.get("seq") for _, e in entries if e is not None}
    for line_no, entry in entries:
        if entry is None or not {"seq", "prev", "hash"} <= entry.keys():
            return Verdict(False, count, expected_prev,
                           f"line {line_no}: not a valid audit entry (edited)", line_no)
        seq, prev, stored = entry["seq"], entry["prev"], entry["hash"]
        if entry_hash(entry) != stored:
            return Verdict(False, count, expected_prev,
                           f"line {line_no} (entry {seq}): contents do not match its hash "
                           "(entry was edited)", line_no)
        if seq != expected_seq or prev != expected_prev:
            if expected_seq in present or not isinstance(seq, int) or seq < expected_seq:
                problem = (f"line {line_no}: holds entry {seq} where entry {expected_seq} "
                           "belongs (entries were reordered)")
            else:
                gap = (f"entry {expected_seq}" if seq == expected_seq + 1 else
                       f"entries {expected_seq}-{seq - 1}")
                problem = f"line {line_no}: {gap} removed before entry {seq}"
            return Verdict(False, count, expected_prev, problem, line_no)
        if key is not None and entry.get("keyed") and not hmac.compare_digest(
                str(entry.get("mac", "")), _mac(key, "entry", stored)):
            return Verdict(False, count, expected_prev,
                           f"line {line_no} (entry {seq}): its MAC does not verify under the "
                           "configured key (entry forged or rewritten)", line_no)
        count += 1
        expected_seq, expected_prev = seq + 1, stored
    head = head_path(path)
    if head.exists():
        try:
            recorded = json.loads(head.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            recorded = {"seq": None}
        if not isinstance(recorded, dict):
            recorded = {"seq": None}
        if key is not None and count and not hmac.compare_digest(
                str(recorded.get("mac", "")), _mac(key, "head", recorded.get("seq"),
                                                   recorded.get("hash"))):
            return Verdict(False, count, expected_prev,
                           f"{head}: the head's MAC does not verify under the configured key "
                           "(head rewritten, e.g. after entries were removed from the end)",
                           None)
        if recorded.get("seq") != expected_seq - 1 or recorded.get("hash") != expected_prev:
            return Verdict(False, count, expected_prev,
                           f"the log ends at entry {expected_seq - 1} but its head file records "
                           f"entry {recorded.get('seq')}: entries were removed from the end",
                           None)
    elif count:
        return Verdict(False, count, expected_prev, f"{head}: head file missing", None)
    return Verdict(True, count, expected_prev)
