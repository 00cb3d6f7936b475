"""What training on a sample of customers costs: a learning curve on one bank.

A large bank's models are trained on a stratified sample (``training.sample_customers``,
default 200,000 customers). This script measures what that costs in the two figures the
training reports, on customers none of the models saw:

1. the churn snapshots of the plan's training (``SNAPSHOTS`` monthly as-of dates before the
   planning date) and the campaign log with its features are built once for the whole bank;
2. ``--test-share`` of the customers (stratified by segment, seeded) are held out;
3. for each share of the remaining customers (``--shares``, 1 = all of them) a churn model and
   an effects model on churn (T and X learners, 3-fold cross-fitting, as ``uplift train``)
   are fitted on that share's rows, stratified by segment (churn) and by arm (campaign);
4. each is scored on the held-out rows: churn ROC-AUC over the held-out snapshot rows, and the
   Qini coefficient of every offer (its treated vs control rows among the held-out campaign
   rows, benefit = the predicted churn reduction).

Features here are computed over the whole bank and then cut (in ``uplift train`` a sample's
RFM quintiles rank its customers among themselves), so only the size of the training set
differs between the rows of the curve.

Usage: python evaluation/bench_sampling.py --bank DIR [--shares 0.125,0.25,0.5,1]
       [--test-share 0.3] [--seed 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def stratified(frame: pd.DataFrame, by: list[str], share: float, seed: int) -> pd.DataFrame:
    """``share`` of the rows of every stratum of ``by`` (all rows when share is 1)."""
    if share >= 1:
        return frame
    if not by:
        return frame.sample(frac=share, random_state=seed)
    keys = [frame[c].astype(str) for c in by]
    return frame.groupby(keys, group_keys=False, observed=True).sample(frac=share,
                                                                       random_state=seed)


def main() -> None:
    from uplift.churn import ChurnModel
    from uplift.churn.dataset import snapshot_table
    from uplift.churn.metrics import churn_report
    from uplift.config import Settings
    from uplift.effects import BoostSettings, UpliftEstimator
    from uplift.effects.metrics import arm_metrics
    from uplift.effects.model import EffectsModel
    from uplift.features import FeatureInputs
    from uplift.pipeline import SNAPSHOTS, campaign_table, planning_date

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bank", type=Path, required=True)
    parser.add_argument("--shares", default="0.125,0.25,0.5,1")
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    settings = Settings()
    inputs = FeatureInputs.from_folder(args.bank)
    as_of = planning_date(args.bank, inputs, None)
    horizon, gap = settings.churn.horizon_days, settings.churn.gap_days
    last = pd.Timestamp(as_of) - pd.Timedelta(days=horizon + gap)
    snapshots = [str((last.normalize() - pd.DateOffset(months=k)).date())
                 for k in range(SNAPSHOTS)]
    started = time.perf_counter()
    table = snapshot_table(inputs, snapshots, horizon_days=horizon, gap_days=gap,
                           threads=args.threads)
    campaign = campaign_table(inputs, args.threads)
    print(f"snapshots {', '.join(sorted(snapshots))}: {len(table):,} rows; campaign "
          f"{len(campaign):,} rows; built in {time.perf_counter() - started:.0f} s", flush=True)

    customers = inputs.read("customers")
    strata = ["segment"] if "segment" in customers.columns else []
    test_ids = set(stratified(customers, strata, args.test_share, args.seed)["customer_id"])
    held = table["customer_id"].isin(test_ids).to_numpy()
    pool = customers[~customers["customer_id"].isin(test_ids)]
    held_log = campaign["customer_id"].isin(test_ids).to_numpy()
    test_log = campaign[held_log]
    train_log = campaign[~held_log]
    for share in (float(s) for s in args.shares.split(",")):
        started = time.perf_counter()
        chosen = set(stratified(pool, strata, share, args.seed)["customer_id"])
        rows = table[table["customer_id"].isin(chosen)]
        churn = ChurnModel(tiers=settings.churn.tiers, threads=args.threads,
                           random_state=args.seed)
        churn.fit(rows, label="churned", id_col="customer_id", time_col="as_of",
                  source="snapshots")
        test = table[held]
        risk = churn.predict_proba(test[list(churn.spec_.features)], source="held out")
        auc = churn_report(test["churned"].to_numpy(), risk)["roc_auc"]
        fit_log = stratified(train_log, ["arm"], share, args.seed)
        estimator = UpliftEstimator(learners=("t", "x"), random_state=args.seed,
                                    boost=BoostSettings(threads=args.threads))
        effects = EffectsModel(treatment="arm", control="control", outcome="churned",
                               propensity="propensity", id_col="customer_id",
                               estimator=estimator, goal="decrease", outcome_type="binary")
        effects.fit(fit_log.drop(columns=["campaign_id", "assigned_at", "value_after"]),
                    source="campaign sample")
        predicted = effects.predict(test_log.drop(columns=["campaign_id", "assigned_at",
                                                           "value_after"]),
                                    source="held out", with_se=False)
        arm = test_log["arm"].astype(str).to_numpy()
        retained = 1 - test_log["churned"].to_numpy()
        qini = {}
        for offer in effects.arms:
            mask = np.isin(arm, [offer, "control"])
            benefit = -predicted[f"effect_{offer}"].to_numpy()[mask]
            qini[offer] = round(arm_metrics(retained[mask], benefit,
                                            (arm[mask] == offer).astype(int))["qini"], 4)
        print(json.dumps({
            "share": share, "churn_customers": len(chosen), "snapshot_rows": len(rows),
            "campaign_rows": len(fit_log), "learner": effects.estimator_.learner_,
            "held_out_roc_auc": round(auc, 4), "held_out_qini": qini,
            "mean_qini": round(float(np.mean(list(qini.values()))), 4),
            "seconds": round(time.perf_counter() - started, 1)}), flush=True)


if __name__ == "__main__":
    main()
