"""Coverage of the plan backtest's interval over independent simulated banks.

For each seed: simulate a bank, train the plan's models (`uplift.pipeline.train`), replay the
plan's rule on its campaign log (`uplift.evaluate.backtest`) and compare the estimated realised
net gain with the true net gain of the same replayed choices (full-information truth, which is
what the realised outcomes average to). Prints per seed and the share of 95% intervals that
cover the truth.

Usage: python evaluation/backtest_replications.py [--banks 10] [--customers 20000]
       [--budget 100000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from plan_backtest import true_net_gain

from uplift import io
from uplift.campaign import load_campaign_spec
from uplift.cli import run
from uplift.config import Settings
from uplift.evaluate.backtest import measure, replayed_plan
from uplift.features import FeatureInputs
from uplift.pipeline import campaign_table, planning_date, train
from uplift.simulate import read_truth

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--banks", type=int, default=10)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=100_000)
    args = parser.parse_args()
    spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    settings = Settings()
    covered, errors = 0, []
    for seed in range(1, args.banks + 1):
        with tempfile.TemporaryDirectory() as tmp_name:
            data = Path(tmp_name) / "bank"
            assert run(["--quiet", "simulate", "--customers", str(args.customers), "--seed",
                        str(seed), "--out", str(data)]) == 0
            inputs = FeatureInputs.from_folder(data)
            day = planning_date(data, inputs, None)
            train(inputs, day, Path(tmp_name) / "models", settings, seed=0)
            table = io.read_table(Path(tmp_name) / "models" / "backtest.parquet")
            logged = campaign_table(inputs)
            truth = read_truth(data / "truth.parquet").set_index("customer_id").loc[
                logged["customer_id"]].reset_index()
            planned = len(table)       # plan for the logged customers themselves
            budget = args.budget * args.customers / 50_000
            choice, gains = replayed_plan(table, spec, budget, planned,
                                          settings.customer_value)
            result = measure(table, choice, gains, spec.offer_names)
            true = true_net_gain(choice, table, truth, spec, settings.customer_value)
            inside = result.realised_low <= true <= result.realised_high
            covered += inside
            errors.append((result.realised - true) / abs(true))
            print(f"seed {seed:>2}: predicted {result.predicted:>11,.0f}  realised "
                  f"{result.realised:>11,.0f} [{result.realised_low:>11,.0f}, "
                  f"{result.realised_high:>11,.0f}]  true {true:>11,.0f}  covered {inside}",
                  flush=True)
    print(f"{args.banks} banks: interval covers the truth in {covered / args.banks:.0%}; "
          f"mean error of the realised estimate {np.mean(errors):+.1%} of the truth "
          f"(mean absolute {np.mean(np.abs(errors)):.1%})")


if __name__ == "__main__":
    main()
