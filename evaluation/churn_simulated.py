"""Churn model on the simulated bank against the oracle (true churn probability).

Trains with the product's own commands on monthly snapshots (out-of-time validation inside),
then scores a later snapshot the model never saw and compares with the oracle score from
truth.parquet on the same customers: ROC-AUC gap (with a paired bootstrap interval: how much
of it is the test snapshot's sampling noise), calibration error (ECE), and whether the top
reason matches the latent churn reason for high-risk customers.

It then breaks the AUC gap down, to show what part of the oracle's knowledge leaves traces in
the events: the oracle without each customer's personal hazard scales (base and peak hazard
replaced by their segment averages), and both scores on customers whose disengagement began
at least 7 / 14 / 21 days before the snapshot (or has not begun), with the mean predicted and
true risk by time since the onset.

``--no-triggers`` simulates the bank of the same seed without trigger events (the earlier
simulator), for old vs new figures on the same seeds.

Usage: python evaluation/churn_simulated.py [--customers 50000] [--seed 0] [--data DIR]
       [--no-triggers]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from uplift.churn.metrics import expected_calibration_error
from uplift.churn.reasons import load_reason_rules, reason_family
from uplift.cli import run
from uplift.simulate import read_truth, true_churn_probability

TRAIN_SNAPSHOTS = ["2025-06-01", "2025-07-01", "2025-08-01", "2025-09-01", "2025-10-01",
                   "2025-11-01"]
TEST_SNAPSHOT = "2025-12-01"
GENERIC = {"exit_intent", "profile", "external", ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--no-triggers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.data or tmp / "bank"
        steps = []

        def step(name: str, argv: list[str]) -> None:
            started = time.perf_counter()
            code = run(["--quiet", *argv])
            if code != 0:
                raise SystemExit(f"{name} failed with exit code {code}")
            steps.append((name, time.perf_counter() - started))

        if args.data is None:
            step("simulate", ["simulate", "--customers", str(args.customers), "--seed",
                              str(args.seed), "--out", str(data),
                              *(["--no-triggers"] if args.no_triggers else [])])
        snapshots = [a for day in TRAIN_SNAPSHOTS for a in ("--as-of", day)]
        step("dataset (6 snapshots)", ["churn", "dataset", "--data", str(data), *snapshots,
                                       "--out", str(tmp / "train.parquet"), "--threads",
                                       str(args.threads)])
        step("fit", ["churn", "fit", "--table", str(tmp / "train.parquet"), "--label",
                     "churned", "--id", "customer_id", "--time-col", "as_of", "--out",
                     str(tmp / "model"), "--threads", str(args.threads)])
        step("test dataset", ["churn", "dataset", "--data", str(data), "--as-of",
                              TEST_SNAPSHOT, "--out", str(tmp / "test.parquet")])
        test = pd.read_parquet(tmp / "test.parquet")
        test.drop(columns=["churned"]).to_parquet(tmp / "test_x.parquet")
        step("score", ["churn", "score", "--model", str(tmp / "model"), "--table",
                       str(tmp / "test_x.parquet"), "--out", str(tmp / "scores.parquet")])
        scores = pd.read_parquet(tmp / "scores.parquet").merge(
            test[["customer_id", "churned"]], on="customer_id")
        truth = read_truth(data / "truth.parquet")
        oracle = pd.Series(true_churn_probability(truth, TEST_SNAPSHOT),
                           index=truth["customer_id"])
        scores["oracle"] = oracle.loc[scores["customer_id"]].to_numpy()
        scores["latent"] = truth.set_index("customer_id").loc[
            scores["customer_id"], "latent_reason"].astype(str).to_numpy()
        y = scores["churned"].to_numpy()
        auc_model = roc_auc_score(y, scores["churn_risk"])
        auc_oracle = roc_auc_score(y, scores["oracle"])
        ece = expected_calibration_error(y, scores["churn_risk"].to_numpy())
        validation = json.loads((tmp / "model" / "validation.json").read_text())

        family = reason_family(load_reason_rules())
        high = scores[(scores["tier"] == "red") & (scores["latent"] != "none")]
        top_family = high["reason_1"].map(family).fillna("")
        first_specific = high[["reason_1", "reason_2", "reason_3"]].apply(
            lambda r: next((family.get(x, "") for x in r if family.get(x, "") not in GENERIC),
                           ""), axis=1)
        print(f"test snapshot {TEST_SNAPSHOT}: {len(scores):,} customers, churn rate "
              f"{y.mean():.3f}")
        gap_low, gap_high = gap_interval(y, scores["churn_risk"].to_numpy(),
                                 scores["oracle"].to_numpy())
        print(f"ROC-AUC model {auc_model:.4f}  oracle {auc_oracle:.4f}  gap "
              f"{auc_oracle - auc_model:.4f} (95% paired bootstrap interval {gap_low:.4f} .. "
              f"{gap_high:.4f})")
        print(f"ECE model {ece:.4f}  (validation inside fit: AUC "
              f"{validation['evaluation']['roc_auc']:.4f}, ECE "
              f"{validation['evaluation']['ece']:.4f}, {validation['calibration_method']})")
        print(f"high-risk (red) customers with a latent reason: {len(high):,}")
        print(f"  top reason matches the latent reason family: "
              f"{(top_family == high['latent']).mean():.3f}")
        print(f"  first reason-specific reason matches:        "
              f"{(first_specific == high['latent']).mean():.3f}")
        print("  top reasons:", high["reason_1"].value_counts().head(5).to_dict())
        gap_breakdown(scores, truth)
        for name, seconds in steps:
            print(f"time {name:<24} {seconds:6.1f} s")


def gap_interval(y: np.ndarray, model: np.ndarray, oracle: np.ndarray, *,
                 replicates: int = 200, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the ROC-AUC gap (oracle - model), customers resampled with
    replacement (the same draw for both scores: a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(replicates):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        gaps.append(roc_auc_score(y[rows], oracle[rows]) - roc_auc_score(y[rows], model[rows]))
    return float(np.quantile(gaps, 0.025)), float(np.quantile(gaps, 0.975))


def gap_breakdown(scores: pd.DataFrame, truth: pd.DataFrame) -> None:
    """Where the model falls short of the oracle (rows of ``scores`` carry churned/oracle)."""
    rows = truth.set_index("customer_id").loc[scores["customer_id"]].reset_index()
    rows.attrs = truth.attrs
    y = scores["churned"].to_numpy()
    segment_mean = rows.groupby("segment", observed=True)["base_hazard"].transform("mean")
    flat_base = rows.assign(base_hazard=segment_mean)
    flat_peak = rows.assign(peak_hazard=np.where(rows["peak_hazard"] > 0,
                                                 rows.loc[rows["peak_hazard"] > 0,
                                                          "peak_hazard"].mean(), 0.0))
    flat_both = flat_base.assign(peak_hazard=flat_peak["peak_hazard"])
    print("oracle AUC without personal hazard scales (segment averages instead):")
    for name, frame in (("base hazard", flat_base), ("peak hazard", flat_peak),
                        ("both", flat_both)):
        frame.attrs = truth.attrs
        auc = roc_auc_score(y, true_churn_probability(frame, TEST_SNAPSHOT))
        print(f"  {name:<12} {auc:.4f}")
    start = pd.Timestamp(truth.attrs["start_date"])
    since = (pd.Timestamp(TEST_SNAPSHOT) - start).days - rows["onset_day"].to_numpy(float)
    print("by days since the onset of disengagement (none = not begun):")
    print(f"  {'days':>8} {'customers':>9} {'churn':>6} {'oracle':>6} {'model':>6}")
    bands = [(0, 7), (7, 14), (14, 21), (21, 35), (35, 60), (60, np.inf)]
    for lo, hi in bands:
        band = (since >= lo) & (since < hi)
        print(f"  {lo:>3}-{hi:<4} {band.sum():>9,} {y[band].mean():>6.3f} "
              f"{scores['oracle'][band].mean():>6.3f} {scores['churn_risk'][band].mean():>6.3f}")
    band = ~(since >= 0)
    print(f"  {'none':>8} {band.sum():>9,} {y[band].mean():>6.3f} "
          f"{scores['oracle'][band].mean():>6.3f} {scores['churn_risk'][band].mean():>6.3f}")
    young = (since >= 0) & (since < 14)
    keep = young | ~(since >= 0)
    model = roc_auc_score(y[keep], scores["churn_risk"][keep])
    oracle = roc_auc_score(y[keep], scores["oracle"][keep])
    print(f"  onsets younger than 14 days vs customers without a begun onset ({keep.sum():,}): "
          f"model {model:.4f} oracle {oracle:.4f} gap {oracle - model:.4f}")
    for days in (7, 14, 21):
        keep = ~((since >= 0) & (since < days))
        model = roc_auc_score(y[keep], scores["churn_risk"][keep])
        oracle = roc_auc_score(y[keep], scores["oracle"][keep])
        print(f"  without onsets of the last {days:>2} days: model {model:.4f} oracle "
              f"{oracle:.4f} gap {oracle - model:.4f}")


if __name__ == "__main__":
    main()
