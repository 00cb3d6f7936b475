"""Benchmark churn scoring with reasons: 1,000,000 customers, and a single customer.

Uses the demo bank's trained churn model (training it on first use, as `uplift plan` does)
and tiles the demo's feature table up to the requested size.

Usage: python evaluation/bench_churn_score.py [--customers 1000000]
Targets (issue): 1,000,000 customers with reasons in < 60 s; one customer in < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.config import Settings
from uplift.features import FeatureInputs, build_features
from uplift.pipeline import demo_data, fingerprint, load_models, planning_date, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    cache = Path(os.environ.get("UPLIFT_CACHE") or __import__("platformdirs").user_cache_dir(
        "uplift"))
    data = demo_data(cache, print)
    inputs = FeatureInputs.from_folder(data)
    settings = Settings()
    day = planning_date(data, inputs, None)
    folder = cache / "models" / fingerprint(inputs, day, settings, 0)
    if not (folder / "churn").exists():
        train(inputs, day, folder, settings, seed=0, progress=print)
    model = load_models(folder).churn
    features = build_features(inputs, day).drop(columns=["as_of", "open_at_as_of"])
    reps = int(np.ceil(args.customers / len(features)))
    big = pd.concat([features] * reps, ignore_index=True).iloc[: args.customers]
    big["customer_id"] = np.arange(len(big))
    started = time.perf_counter()
    scores = model.score(big, id_col="customer_id")
    elapsed = time.perf_counter() - started
    riskiest = int(np.argmax(scores["churn_risk"].to_numpy()[: len(features)]))
    one = features.iloc[[riskiest]]          # a red-tier customer, so reasons are computed
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        model.score(one, id_col="customer_id")
        times.append(time.perf_counter() - t0)
    print(f"scored {len(scores):,} customers with reasons in {elapsed:.1f} s "
          f"({len(scores) / elapsed:,.0f} per second)")
    print(f"share of customers explained (at or above the lowest tier threshold): "
          f"{(scores['reason_1'] != '').mean():.1%}")
    print(f"single red-tier customer with reasons: median {np.median(times) * 1000:.1f} ms, "
          f"p95 {np.quantile(times, 0.95) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
