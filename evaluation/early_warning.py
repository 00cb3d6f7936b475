"""Early-warning lead time on the simulated bank: replay 90 days, score every customer daily.

A churn model is trained with the product's own commands on monthly snapshots whose labels end
before the replay starts. Then, for each day of the replay, the features of every customer
open that day are computed (``uplift.features.build_features``) and scored
(``ChurnModel.predict_proba``; the red tier is the model's own threshold, 30-day churn risk >=
0.30 by default). From the bank's true exit dates:

* lead time: for customers who exit in the last 60 days of the replay (so every one of them
  was watched for at least 30 days before the exit), the share who were red at least 30 / 14 /
  7 days before the exit, and the median lead time (days from the first red day within the
  90 days before the exit to the exit; 0 = never red);
* alert precision: a red alert is a customer turning red (red that day and not the day before;
  red on the first replay day counts); the share of alerts followed by the exit within 30 and
  60 days, against the base rate (the same share over every open customer-day).

Also the same figures at other red thresholds (the trade-off a bank chooses), and the same
replay on the bank of the same seed without trigger events (``--no-triggers``) for old vs new.

What the simulator allows: the same replay scored by the full-information oracle
(``uplift.simulate.true_churn_probability``: every latent state known, 30- and 90-day windows),
and for each scorer its *frontier*: the largest share of exits warned >= 30 days ahead at any
threshold whose red alerts still exit within 30 days at >= 3x the base rate (thresholds at the
70th..99th percentiles of the customer-day risks). Also how many watched exits had their
disengagement onset, or a trigger event, >= 30 days before the exit: no scorer can warn the
others that early except by chance.

Usage: python evaluation/early_warning.py [--customers 20000] [--seed 0] [--step 1]
       [--no-triggers] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.churn import ChurnModel
from uplift.cli import run
from uplift.features import FeatureInputs, build_features
from uplift.simulate import read_bank_table, read_truth, true_churn_probability

TRAIN_SNAPSHOTS = ["2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]  # labels end 07-01
REPLAY_START = "2025-08-01"
REPLAY_DAYS = 90
FOLLOW_UP = 60
LEADS = (30, 14, 7)
THRESHOLDS = (0.02, 0.03, 0.05, 0.10, 0.15, 0.20, 0.30)
MIN_LIFT = 3.0
ORACLE_HORIZONS = (30, 90)


def replay_scores(data: Path, model: ChurnModel, days: list[pd.Timestamp], threads: int
                  ) -> pd.DataFrame:
    """Risk of every customer open on each replay day (rows: customer_id, day, risk)."""
    inputs = FeatureInputs.from_folder(data)
    parts = []
    for i, day in enumerate(days):
        features = build_features(inputs, str(day.date()), threads=threads)
        open_now = features[features["open_at_as_of"] == 1].reset_index(drop=True)
        risk = model.predict_proba(open_now.drop(columns=["as_of", "open_at_as_of"]),
                                   source="features")
        parts.append(pd.DataFrame({"customer_id": open_now["customer_id"].to_numpy(),
                                   "day": day, "risk": risk}))
        if i % 10 == 0:
            print(f"  scored {day.date()}: {len(open_now):,} open customers", flush=True)
    return pd.concat(parts, ignore_index=True)


def lead_figures(scores: pd.DataFrame, exits: pd.Series, threshold: float,
                 days: list[pd.Timestamp]) -> dict[str, float]:
    """Lead-time and alert-precision figures at one red threshold (see the module text)."""
    frame = scores.assign(red=scores["risk"] >= threshold)
    frame["exit"] = frame["customer_id"].map(exits)
    until = (frame["exit"] - frame["day"]).dt.days          # NaN: no exit in the history
    first, last = days[0], days[-1]
    watched = exits[(exits >= first + pd.Timedelta(days=30))
                    & (exits <= last + pd.Timedelta(days=1))]
    red = frame[frame["red"] & frame["customer_id"].isin(watched.index)]
    red = red[until.loc[red.index] > 0]
    first_red = red.groupby("customer_id")["day"].min()
    lead = (watched - first_red.reindex(watched.index)).dt.days.fillna(0.0)
    out = {"exits watched": float(len(watched)),
           **{f"warned >= {d} days": float((lead >= d).mean()) for d in LEADS},
           "median lead (days, 0 = never red)": float(lead.median()),
           "median lead of warned exits": float(lead[lead > 0].median())
           if (lead > 0).any() else 0.0}
    previous = frame.groupby("customer_id")["red"].shift(1, fill_value=False)
    alert = frame["red"] & ~previous
    for horizon in (30, 60):
        hit = (until > 0) & (until <= horizon)
        precision = float(hit[alert].mean()) if alert.any() else float("nan")
        base = float(hit.mean())
        out[f"alert precision {horizon}d"] = precision
        out[f"base rate {horizon}d"] = base
        out[f"lift {horizon}d"] = precision / base if base > 0 else float("nan")
    out["alerts"] = float(alert.sum())
    out["alerts per 1,000 customers per day"] = float(alert.sum() / len(frame) * 1000)
    return out


def oracle_scores(data: Path, days: list[pd.Timestamp], horizon: int) -> pd.DataFrame:
    """The full-information oracle's risk of every customer open on each replay day."""
    customers = read_bank_table(data / "customers.parquet")
    truth = read_truth(data / "truth.parquet").set_index("customer_id").loc[
        customers["customer_id"]].reset_index()
    parts = []
    for day in days:
        open_now = ((customers["open_date"] <= day) & (customers["close_date"].isna()
                                                        | (customers["close_date"] > day)))
        risk = true_churn_probability(truth, day, horizon_days=horizon)
        parts.append(pd.DataFrame({"customer_id": customers["customer_id"][open_now].to_numpy(),
                                   "day": day, "risk": risk[open_now.to_numpy()]}))
    return pd.concat(parts, ignore_index=True)


def frontier(scores: pd.DataFrame, exits: pd.Series, days: list[pd.Timestamp]
             ) -> dict[str, float]:
    """Most exits warned >= 30 days at a threshold whose 30-day alert lift is >= MIN_LIFT."""
    best = {"threshold": float("nan"), "warned >= 30 days": 0.0, "lift 30d": float("nan")}
    for q in np.arange(0.70, 0.995, 0.01):
        threshold = float(scores["risk"].quantile(q))
        figures = lead_figures(scores, exits, threshold, days)
        if (figures["lift 30d"] >= MIN_LIFT
                and figures["warned >= 30 days"] > best["warned >= 30 days"]):
            best = {"threshold": threshold, "warned >= 30 days": figures["warned >= 30 days"],
                    "lift 30d": figures["lift 30d"],
                    "alerts per 1,000 customers per day":
                        figures["alerts per 1,000 customers per day"]}
    return best


def onset_lead(data: Path, exits: pd.Series, days: list[pd.Timestamp]) -> dict[str, float]:
    """Of the watched exits: share with an onset / a trigger >= 30 days before the exit."""
    truth = read_truth(data / "truth.parquet").set_index("customer_id")
    watched = exits[(exits >= days[0] + pd.Timedelta(days=30))
                    & (exits <= days[-1] + pd.Timedelta(days=1))]
    start = pd.Timestamp(truth.attrs.get("start_date", "2025-01-01"))
    rows = truth.loc[watched.index]

    def before_exit(column: str) -> pd.Series:
        when = start + pd.to_timedelta(rows[column].replace(np.inf, np.nan), unit="D")
        return (watched - when).dt.days

    onset, trigger = before_exit("onset_day"), before_exit("trigger_day")
    return {"exits watched": float(len(watched)),
            "no disengagement onset (base-rate exits)": float(onset.isna().mean()),
            "onset >= 30 days before the exit": float((onset >= 30).mean()),
            "trigger >= 30 days before the exit": float((trigger >= 30).mean()),
            "median days from onset to exit": float(onset.median())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=int, default=1, help="days between scorings")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-triggers", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "bank"

        def step(argv: list[str]) -> None:
            if run(["--quiet", *argv]) != 0:
                raise SystemExit(f"{argv[0]} failed")

        step(["simulate", "--customers", str(args.customers), "--seed", str(args.seed),
              "--out", str(data), *(["--no-triggers"] if args.no_triggers else [])])
        snapshots = [a for day in TRAIN_SNAPSHOTS for a in ("--as-of", day)]
        step(["churn", "dataset", "--data", str(data), *snapshots, "--out",
              str(tmp / "train.parquet"), "--threads", str(args.threads)])
        step(["churn", "fit", "--table", str(tmp / "train.parquet"), "--label", "churned",
              "--id", "customer_id", "--time-col", "as_of", "--out", str(tmp / "model"),
              "--threads", str(args.threads)])
        model = ChurnModel.load(tmp / "model")
        days = list(pd.date_range(REPLAY_START, periods=REPLAY_DAYS, freq=f"{args.step}D"))
        days = [d for d in days if d < pd.Timestamp(REPLAY_START) + pd.Timedelta(
            days=REPLAY_DAYS)]
        print(f"replaying {len(days)} days from {REPLAY_START} "
              f"({'without' if args.no_triggers else 'with'} triggers, "
              f"{args.customers:,} customers, seed {args.seed})")
        scores = replay_scores(data, model, days, args.threads)
        customers = read_bank_table(data / "customers.parquet")
        exits = customers.set_index("customer_id")["close_date"].dropna().dt.normalize()
        red = model.tiers_.get("red", 0.30)
        print(f"customer-days scored: {len(scores):,}; the model's red threshold {red:.2f}")
        rows = {f"{t:.2f}" + (" (red tier)" if t == red else ""): lead_figures(
            scores, exits, t, days) for t in sorted(set(THRESHOLDS) | {red})}
        table = pd.DataFrame(rows)
        with pd.option_context("display.float_format", "{:,.3f}".format,
                               "display.width", 200, "display.max_columns", 20):
            print(table)
            print("\nwhat the simulator allows (watched exits):")
            print(pd.Series(onset_lead(data, exits, days)).to_string())
            fronts = {"churn model": frontier(scores, exits, days)}
            for horizon in ORACLE_HORIZONS:
                fronts[f"oracle, {horizon}-day risk"] = frontier(
                    oracle_scores(data, days, horizon), exits, days)
            print(f"\nfrontier: most exits warned >= 30 days at a 30-day alert lift >= "
                  f"{MIN_LIFT:g}x")
            print(pd.DataFrame(fronts))
    print(f"time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
