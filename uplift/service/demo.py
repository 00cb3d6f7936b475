"""`uplift serve --demo`: the demo bank's models serving a slice of its customers, with the
bank's last day of events replayed through the API so alerts arrive while you watch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from uplift.service.settings import ServiceSettings

DEMO_CUSTOMERS = 1000
REPLAY_BATCH = 20          # events per request
REPLAY_PAUSE = 1.0         # seconds between requests


def demo_settings(state: Path, db: str | None, progress: Callable[[str], None]
                  ) -> ServiceSettings:
    """Train (first use, cached like `uplift plan`) and seed the demo store on first use:
    the first 1,000 customers of the demo bank with their events before its last day; the
    last day's events are written to ``state/demo-replay.parquet`` for the replay. A store
    already there (``state/demo.db`` or ``db``) is kept as it is, with every event posted to
    it: the replay's events are then retries (no new alerts); delete the file for a fresh
    replay."""
    from uplift.pipeline import default_cache, demo_run
    from uplift.service.seeding import read_bank, seed
    from uplift.service.store import Store

    run = demo_run(default_cache(), progress)
    state.mkdir(parents=True, exist_ok=True)
    if db is None:
        db = str(state / "demo.db")
    customers, events, _ = read_bank(run.data)
    chosen = set(customers["customer_id"].astype(str).sort_values().iloc[:DEMO_CUSTOMERS])
    cutoff = pd.Timestamp(events["ts"].max()).normalize()
    store = Store(db)
    try:
        if store.count("customers") == 0:
            progress(f"seeding the demo store {db} with {len(chosen):,} customers and their "
                     f"events before {cutoff.date()}")
            seed(store, run.data, customers=chosen, before=cutoff)
        else:
            progress(f"using the demo store {db} as it is ({store.count('events'):,} events; "
                     "the replay's events are already there after a first run: delete the "
                     "file for a fresh replay)")
    finally:
        store.close()
    replay = events[events["customer_id"].isin(chosen) & (events["ts"] >= cutoff)]
    replay = replay.sort_values("ts", kind="stable")
    replay_path = state / "demo-replay.parquet"
    replay.to_parquet(replay_path, index=False)
    return ServiceSettings(db=db, model=run.models.folder, data=run.data, state=state,
                           replay=replay_path)


DEMO_TOKEN_PREFIXES = ("demo-analyst-", "demo-replay-")


def revoke_demo_tokens(store) -> int:
    """Revoke the active tokens an earlier demo start made (their secrets were printed to
    that start's terminal; each start prints new ones); returns how many."""
    from uplift.service.auth import listing, revoke

    active = [row["name"] for row in listing(store) if not row["revoked"]
              and row["name"].startswith(DEMO_TOKEN_PREFIXES)]
    for name in active:
        revoke(store, name)
    return len(active)


def start_replay(app, *, port: int, progress: Callable[[str], None]) -> threading.Thread:
    """Print a token and a curl example, then POST the replay events in the background."""
    from uplift.service.auth import new_token, revoke

    store = app.state.store
    earlier = revoke_demo_tokens(store)
    if earlier:
        progress(f"demo: revoked {earlier} token{'s' if earlier != 1 else ''} of earlier "
                 "demo starts")
    stamp = int(time.time())
    viewer = new_token(store, name=f"demo-analyst-{stamp}", role="analyst")
    feeder = new_token(store, name=f"demo-replay-{stamp}", role="analyst")
    events = pd.read_parquet(app.state.settings.replay)
    progress(f"demo: replaying {len(events):,} events of the bank's last day, "
             f"{REPLAY_BATCH} per request")
    progress(f"demo: token (analyst) {viewer}")
    progress(f"  curl -s -H 'Authorization: Bearer {viewer}' "
             f"'http://127.0.0.1:{port}/v1/alerts?tier=red'")

    def run() -> None:
        import httpx

        url = f"http://127.0.0.1:{port}"
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {feeder}"}) as client:
            for _ in range(120):                                 # wait for the server
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            records = events.assign(ts=events["ts"].map(pd.Timestamp.isoformat))
            records = records.astype(object).where(records.notna(), None).to_dict("records")
            for start in range(0, len(records), REPLAY_BATCH):
                try:
                    client.post(f"{url}/v1/events", json=records[start:start + REPLAY_BATCH])
                except httpx.HTTPError:
                    return
                time.sleep(REPLAY_PAUSE)
        revoke(store, f"demo-replay-{stamp}")
        progress("demo: replay finished")

    thread = threading.Thread(target=run, name="demo-replay", daemon=True)
    thread.start()
    return thread
