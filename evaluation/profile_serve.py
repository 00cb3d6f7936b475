"""Where one online re-score spends its time, in process (no HTTP): reading the customer's
events, the features (the registry's SQL evaluated with NumPy, as the service runs it, and the
batch DuckDB query on the same slice for comparison), the churn score with reasons, and the
whole re-score with the store transaction; medians over ``--repeat`` customers; then whole
re-scores of ``--batches`` customers at once (what the scoring worker does under load); then
the day change (the population's rank inputs recomputed for a new data day, once).

    python evaluation/profile_serve.py --data BANK --model MODELS [--customers 250]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--batches", default="1,10,50",
                        help="customers re-scored together (the worker's batches), comma-separated")
    args = parser.parse_args()

    from uplift.campaign import load_campaign_spec
    from uplift.config import load_settings
    from uplift.features.build import duckdb_connection
    from uplift.pipeline import load_models
    from uplift.planner import default_campaign
    from uplift.service.online import feature_columns
    from uplift.service.scoring import OnlineService
    from uplift.service.seeding import read_bank, seed
    from uplift.service.store import Store

    customers, _, _ = read_bank(args.data)
    chosen = set(customers["customer_id"].astype(str).sort_values().iloc[:args.customers])
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "store.db"))
        seed(store, args.data, customers=chosen)
        service = OnlineService(store, load_models(args.model),
                                load_campaign_spec(default_campaign()), load_settings(None))
        service.start()
        day = service.current_day()
        plain = duckdb_connection(threads=1)
        plain.execute("PRAGMA disable_optimizer")
        rng = np.random.default_rng(0)
        times: dict[str, list[float]] = {k: [] for k in (
            "events read", "features (NumPy)", "features (DuckDB query)", "churn score",
            "whole re-score")}
        frame = service.customers()
        for cid in rng.choice(sorted(chosen), args.repeat, replace=False):
            row = frame[frame["customer_id"] == cid]
            t = time.perf_counter()
            events = service._events_of([cid])
            times["events read"].append(time.perf_counter() - t)
            campaign = service.store.campaign_frame(cid) if service.engine.with_campaign \
                else None
            t = time.perf_counter()
            features = service.engine.compute(row, events, campaign, day)
            times["features (NumPy)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            service.engine.compute(row, events, campaign, day, con=plain)
            times["features (DuckDB query)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            names = feature_columns()
            service._scores_of(features, features[names].to_numpy(float), names)
            times["churn score"].append(time.perf_counter() - t)
            t = time.perf_counter()
            service._score_now([cid])
            times["whole re-score"].append(time.perf_counter() - t)
        ordered = sorted(chosen)
        for size in (int(b) for b in args.batches.split(",")):
            key = f"batch of {size}"
            times[key] = []
            for k in range(max(3, args.repeat // 3)):
                batch = [ordered[(k * size + j) % len(ordered)] for j in range(size)]
                t = time.perf_counter()
                service._score_now(batch)
                times[key].append(time.perf_counter() - t)
        # the first event of a new data day: the population's rank inputs are recomputed
        # (the whole store's events read and the batch query run) before it is scored
        t = time.perf_counter()
        service.refresh_reference(str(np.datetime64(day) + np.timedelta64(1, "D")))
        times["day change"] = [time.perf_counter() - t]
        service.stop()
        store.close()
    print(f"{args.repeat} customers, load average {os.getloadavg()[0]:.1f}")
    for name, values in times.items():
        print(f"  {name:<20} median {statistics.median(values) * 1000:7.1f} ms, "
              f"max {max(values) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
