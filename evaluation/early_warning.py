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

Usage: python evaluation/early_warning.py [--customers 20000] [--seed 0] [--step 1]
       [--no-triggers] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from uplift.churn import ChurnModel
from uplift.cli import run
from uplift.features import FeatureInputs, build_features
from uplift.simulate import read_bank_table

TRAIN_SNAPSHOTS = ["2025-03-01", "2025-04-01", "2025-05-01", "2025-06-01"]  # labels end 07-01
REPLAY_START = "2025-08-01"
REPLAY_DAYS = 90
FOLLOW_UP = 60
LEADS = (30, 14, 7)
THRESHOLDS = (0.05, 0.10, 0.15, 0.20, 0.30)


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
    print(f"time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
