"""kill -9 of `uplift serve` under load, then a restart: every acknowledged event is in the
store, every escalation of a re-scored customer is an alert (none lost), and no escalation is
written twice."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pandas as pd

from uplift.service.auth import new_token
from uplift.service.store import Store

LOAD_SECONDS = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db, models, bank, state, port) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "uplift.cli", "serve", "--db", str(db), "--model", str(models),
         "--data", str(bank), "--state", str(state), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ready(port: int, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("server not ready")


def test_kill_9_under_load_loses_nothing_acknowledged(served_models, served_bank, tmp_path):
    db, port = tmp_path / "store.db", _free_port()
    server = _start(db, served_models, served_bank, tmp_path, port)
    try:
        _ready(port, server)
        store = Store(str(db))
        token_secret = new_token(store, name="loader", role="analyst")
        # everyone green: each event for an amber or red customer is an escalation
        with sqlite3.connect(db) as con:
            con.execute("UPDATE scores SET tier = 'green'")
        last = pd.Timestamp(store.last_event_ts())
        ids = sorted(pd.read_parquet(served_bank / "customers.parquet")["customer_id"]
                     .astype(str))[:120]
        acked: list[str] = []
        stop = threading.Event()

        def load(worker: int) -> None:
            client = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token_secret}"})
            n = 0
            while not stop.is_set():
                n += 1
                key = f"w{worker}-{n}"
                event = {"event_id": key, "customer_id": ids[(n * 2 + worker) % len(ids)],
                         "ts": (last + pd.Timedelta(seconds=n)).isoformat(),
                         "event_type": "login", "amount": 0, "channel": "app"}
                try:
                    if client.post(f"http://127.0.0.1:{port}/v1/events", json=event
                                   ).status_code == 200:
                        acked.append(key)
                except httpx.HTTPError:
                    return

        workers = [threading.Thread(target=load, args=(w,)) for w in range(3)]
        for w in workers:
            w.start()
        time.sleep(LOAD_SECONDS)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        stop.set()
        for w in workers:
            w.join()
        assert len(acked) >= 5
        store.close()

        server = _start(db, served_models, served_bank, tmp_path, port)
        _ready(port, server)
        with sqlite3.connect(db) as con:
            stored = {r[0] for r in con.execute("SELECT event_key FROM events")}
            stale = con.execute(
                "SELECT count(*) FROM (SELECT customer_id, max(seq) AS m FROM events GROUP BY "
                "customer_id) e JOIN scores s USING (customer_id) WHERE s.last_seq < e.m"
            ).fetchone()[0]
            # customers still open (one who has left raises no retention alert)
            raised = con.execute(
                "SELECT s.customer_id FROM scores s JOIN customers c USING (customer_id) "
                "WHERE s.tier <> 'green' AND (c.close_date IS NULL OR "
                "date(c.close_date) >= s.as_of) AND s.customer_id IN "
                "(SELECT customer_id FROM events WHERE event_key LIKE 'id:w%')").fetchall()
            alerted = {r[0] for r in con.execute("SELECT customer_id FROM alerts")}
            twice = con.execute("SELECT count(*) FROM (SELECT customer_id, from_tier, tier "
                                "FROM alerts GROUP BY 1, 2, 3 HAVING count(*) > 1)"
                                ).fetchone()[0]
        assert {f"id:{k}" for k in acked} <= stored            # every acknowledged event
        assert stale == 0                                       # every customer re-scored
        assert {r[0] for r in raised} <= alerted                # no escalation lost
        assert twice == 0                                       # none written twice
        assert raised
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
