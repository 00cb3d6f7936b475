"""Benchmark the default effects estimator: fit on ~100,000 campaign rows, predict 1,000,000.

Simulates a bank large enough for about 100,000 campaign rows (5 arms), builds the 192
features as of the assignment date, fits `UpliftEstimator()` (defaults: T and X learners,
3-fold cross-fitting, selection, refit) on the churn outcome, then predicts effects and their
standard errors for 1,000,000 rows (the campaign's feature rows tiled).

Usage: python evaluation/bench_effects.py [--customers 140000] [--predict 1000000]
Targets (issue): fit < 5 minutes; prediction for 1,000,000 customers < 60 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from uplift.effects import UpliftEstimator
from uplift.features import FeatureInputs
from uplift.pipeline import campaign_table
from uplift.tasks.data import simulate_to_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=140_000)
    parser.add_argument("--predict", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        data = Path(tmp_name) / "bank"
        simulate_to_folder(data, args.customers)
        table = campaign_table(FeatureInputs.from_folder(data), threads=2)
    log_columns = {"customer_id", "campaign_id", "arm", "assigned_at", "propensity", "churned",
                   "value_after"}
    cols = [c for c in table.columns if c not in log_columns]
    X = table[cols].to_numpy(float)
    started = time.perf_counter()
    estimator = UpliftEstimator(random_state=0).fit(
        X, table["churned"].to_numpy(float), treatment=table["arm"].to_numpy(),
        propensity=table["propensity"].to_numpy(float))
    fit_seconds = time.perf_counter() - started
    big = np.tile(X, (int(np.ceil(args.predict / len(X))), 1))[: args.predict]
    started = time.perf_counter()
    effects = estimator.predict(big)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    estimator.predict_se(big)
    se_seconds = time.perf_counter() - started
    print(f"fit: {len(table):,} campaign rows x {X.shape[1]} features x "
          f"{len(estimator.arms_) + 1} arms in {fit_seconds:.0f} s (chosen learner "
          f"{estimator.learner_})")
    print(f"predict effects for {len(effects):,} customers: {predict_seconds:.1f} s; "
          f"standard errors: {se_seconds:.1f} s more")


if __name__ == "__main__":
    main()
