"""Latency of `uplift serve`: one-event POST /v1/events to the response carrying the new
score, over loopback, at a sustained rate; and the highest rate whose p99 stays <= 50 ms.

The load generator is open-loop (requests leave on a fixed schedule, whether or not earlier
ones have come back), bounded in count (rate x seconds) and time (the run plus a 60 s drain),
and targets only 127.0.0.1. Latency is from the request's send to its response; requests that
leave late because every sender is busy are counted as ``late`` (their queueing is then on the
generator side and would hide the server's slowness: a run with many late sends is not a
sustained rate). Sending stops when the run's time is up; ``sent`` < ``scheduled`` then
says the server did not keep up with the rate.

    python evaluation/bench_serve.py --rate 200 --seconds 60                 # SQLite
    python evaluation/bench_serve.py --rate 200 --seconds 60 --db postgresql://...
    python evaluation/bench_serve.py --search 1,2,5,10,20 --seconds 15      # max rate at p99<=50ms

Data: a simulated bank (``--customers``, seed 11) and models trained on it, in ``--work``
(reused when present); the server is started as ``uplift serve`` in a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

HOST = "127.0.0.1"            # loopback only
SENDERS = 64
DRAIN_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(work: Path, customers: int) -> tuple[Path, Path]:
    """(bank folder, model folder), simulated and trained on first use."""
    from uplift.cli import run

    bank, models = work / f"bank-{customers}", work / f"models-{customers}"
    if not (bank / "manifest.json").exists():
        assert run(["--quiet", "simulate", "--customers", str(customers), "--seed", "11",
                    "--out", str(bank)]) == 0
    if not (models / "fingerprint.json").exists():
        assert run(["--quiet", "train", "--data", str(bank), "--out", str(models)]) == 0
    return bank, models


def start_server(db: str, bank: Path, models: Path, work: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "uplift.cli", "serve", "--db", db, "--model", str(models),
         "--data", str(bank), "--state", str(work), "--host", HOST, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(server.stderr.read().decode()[-3000:])
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("server did not become ready")


def load(port: int, token: str, ids: list[str], start_ts: pd.Timestamp, rate: float,
         seconds: float, seed: int, tag: str) -> dict:
    """Send ``rate * seconds`` one-event requests on schedule; latency figures (ms)."""
    import httpx

    total = int(rate * seconds)
    rng = np.random.default_rng(seed)
    customers = rng.choice(ids, total)
    latencies = np.full(total, np.nan)
    late = np.zeros(total, dtype=bool)
    status = np.zeros(total, dtype=int)
    next_index = [0]
    lock = threading.Lock()
    # every client is made (and its connection opened) before the clock starts: making 64
    # clients inside the run would count the generator's own start-up as server latency
    clients = [httpx.Client(timeout=DRAIN_SECONDS, headers={"Authorization": f"Bearer {token}"})
               for _ in range(SENDERS)]
    for client in clients:
        client.get(f"http://{HOST}:{port}/healthz")
    ready = threading.Barrier(SENDERS + 1)
    start = [0.0]

    def sender(client) -> None:
        ready.wait()
        t0 = start[0]
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total or time.perf_counter() > t0 + seconds + 1:
                return                       # the run's time is up: the rest is not sent
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.01:
                late[i] = True
            event = {"event_id": f"{tag}-{i}", "customer_id": str(customers[i]),
                     "ts": (start_ts + pd.Timedelta(milliseconds=i)).isoformat(),
                     "event_type": "login", "amount": 0, "channel": "app"}
            sent = time.perf_counter()
            try:
                response = client.post(f"http://{HOST}:{port}/v1/events", json=event)
                status[i] = response.status_code
            except httpx.HTTPError:
                status[i] = -1
            latencies[i] = (time.perf_counter() - sent) * 1000

    threads = [threading.Thread(target=sender, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    start[0] = t0 = time.perf_counter() + 0.5
    ready.wait()
    deadline = time.perf_counter() + seconds + DRAIN_SECONDS + 5
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    elapsed = min(time.perf_counter() - t0, seconds + 1)
    ok = latencies[(status == 200) & ~np.isnan(latencies)]
    sent = int((status != 0).sum())
    return {"rate": rate, "seconds": seconds, "scheduled": total, "sent": sent,
            "ok": int(ok.size), "errors": int(((status != 200) & (status != 0)).sum()),
            "late_sends": int(late.sum()),
            "achieved_rate": round(ok.size / elapsed, 1),
            "p50_ms": round(float(np.percentile(ok, 50)), 1) if ok.size else None,
            "p99_ms": round(float(np.percentile(ok, 99)), 1) if ok.size else None,
            "max_ms": round(float(ok.max()), 1) if ok.size else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--search", default=None, help="comma-separated rates to try in "
                        "order; stops after the first whose p99 exceeds 50 ms")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--db", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--work", type=Path, default=Path("bench-serve"))
    args = parser.parse_args()
    if args.rate * args.seconds > 20_000:
        raise SystemExit("bounded: at most 20,000 requests per run")
    args.work.mkdir(parents=True, exist_ok=True)
    bank, models = prepare(args.work, args.customers)
    run_dir = args.work / f"run-{int(time.time())}"
    run_dir.mkdir()
    db = args.db or str(run_dir / "store.db")
    if not args.db:                 # SQLite: seeded once (same code as the server), copied
        import shutil

        template = args.work / f"seeded-{args.customers}.db"
        if not template.exists():
            from uplift.service.seeding import seed
            from uplift.service.store import Store

            partial = template.with_suffix(".part")
            partial.unlink(missing_ok=True)
            store = Store(str(partial))
            seed(store, bank)
            with store.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            store.close()
            partial.rename(template)
        shutil.copyfile(template, db)
    if args.db:                               # a fresh schema: drop what a previous run left
        import sqlalchemy as sa

        from uplift.service.schema import metadata
        from uplift.service.store import normalise_url

        engine = sa.create_engine(normalise_url(args.db))
        metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    port = _free_port()
    started = time.perf_counter()
    server = start_server(db, bank, models, run_dir, port)
    print(f"server ready in {time.perf_counter() - started:.1f} s (store {db.split('@')[-1]})",
          flush=True)
    try:
        from uplift.service.auth import new_token
        from uplift.service.store import Store

        store = Store(db)
        token = new_token(store, name=f"bench-{run_dir.name}", role="analyst")
        start_ts = pd.Timestamp(store.last_event_ts()) + pd.Timedelta(seconds=1)
        ids = sorted(str(c) for c in store.customers_frame()["customer_id"])
        store.close()
        rates = [float(r) for r in args.search.split(",")] if args.search else [args.rate]
        for k, rate in enumerate(rates):
            # minutes apart: every rate's events fall on the same data day (a day change
            # recomputes the population's rank inputs; `profile_serve.py` times that)
            result = load(port, token, ids, start_ts + pd.Timedelta(minutes=k), rate,
                          args.seconds, seed=k, tag=f"{run_dir.name}-{k}")
            result["store"] = "postgresql" if args.db else "sqlite"
            result["load_average"] = os.getloadavg()[0]
            print(json.dumps(result), flush=True)
            if args.search and (result["p99_ms"] is None or result["p99_ms"] > 50):
                break
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
