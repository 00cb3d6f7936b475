"""Offer effects on the simulated bank against the truth.

Fits the churn and value effect models with the product's commands (`uplift effects fit`) on
the simulated campaign (features as of the assignment date), predicts effects for every customer
in the campaign, turns them into gains with the demo campaign's costs, and compares the learned
best-offer policy with the oracle policy (true effects), both treating the same number of
customers with no budget. Also prints the correlation of predicted and true effects per offer.

Usage: python evaluation/effects_simulated.py [--customers 50000] [--seed 0] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.campaign import eligible, load_campaign_spec
from uplift.config import CustomerValue
from uplift.effects.gain import expected_gains
from uplift.simulate import OFFERS, read_bank_table, read_truth
from uplift.tasks.data import features_to_file, open_inputs, simulate_to_folder
from uplift.tasks.models import fit_effects, predict_effects

ROOT = Path(__file__).resolve().parents[1]


def policy_value(gains: np.ndarray, true_gains: np.ndarray, allowed: np.ndarray, n_treat: int
                 ) -> float:
    """True total gain of treating the top ``n_treat`` customers by ``gains`` with their best
    allowed offer by ``gains``."""
    masked = np.where(allowed, gains, -np.inf)
    best = masked.argmax(axis=1)
    score = masked[np.arange(len(best)), best]
    chosen = np.argsort(-score, kind="stable")[:n_treat]
    return float(true_gains[chosen, best[chosen]].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--learners", default="t,x")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.data or tmp / "bank"
        if args.data is None:
            simulate_to_folder(data, args.customers, seed=args.seed)
        manifest = pd.read_json(data / "manifest.json", typ="series")
        as_of = manifest["assignment_date"]
        features_to_file(open_inputs(data), as_of, tmp / "features.parquet", threads=2)
        features = pd.read_parquet(tmp / "features.parquet").drop(
            columns=["as_of", "open_at_as_of"])
        log = read_bank_table(data / "campaign_log.parquet")
        table = log.merge(features, on="customer_id").drop(
            columns=["campaign_id", "assigned_at"])
        table.to_parquet(tmp / "train.parquet")
        timings = {}
        for outcome, goal in (("churned", "decrease"), ("value_after", "increase")):
            started = time.perf_counter()
            other = "value_after" if outcome == "churned" else "churned"
            table.drop(columns=[other]).to_parquet(tmp / f"train_{outcome}.parquet")
            fit_effects(tmp / f"train_{outcome}.parquet", tmp / f"m_{outcome}", treatment="arm",
                        control="control", outcome=outcome, goal=goal, propensity="propensity",
                        id_col="customer_id", learners=tuple(args.learners.split(",")))
            timings[f"fit {outcome}"] = time.perf_counter() - started
            started = time.perf_counter()
            table.drop(columns=["arm", "propensity", "churned", "value_after"]).to_parquet(
                tmp / "score.parquet")
            predict_effects(tmp / f"m_{outcome}", tmp / "score.parquet",
                            tmp / f"p_{outcome}.parquet")
            timings[f"predict {outcome}"] = time.perf_counter() - started
        churn_eff = pd.read_parquet(tmp / "p_churned.parquet")
        value_eff = pd.read_parquet(tmp / "p_value_after.parquet")
        print((pd.read_csv(tmp / "m_churned" / "comparison.csv")).round(4).to_string(index=False))

        truth = read_truth(data / "truth.parquet").set_index("customer_id").loc[
            table["customer_id"]].reset_index()
        customers = read_bank_table(data / "customers.parquet").set_index("customer_id").loc[
            table["customer_id"]].reset_index()
        spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
        value = CustomerValue()
        predicted = expected_gains(customers, churn_eff, spec, value, value_effects=value_eff)
        true_effects = pd.DataFrame({f"effect_{o}": truth[f"delta_churn_{o}"] for o in OFFERS})
        true_value = pd.DataFrame({f"effect_{o}": truth[f"delta_value_{o}"] for o in OFFERS})
        oracle = expected_gains(customers, true_effects, spec, value, value_effects=true_value)
        g_pred = predicted[[f"gain_{o}" for o in OFFERS]].to_numpy()
        g_true = oracle[[f"gain_{o}" for o in OFFERS]].to_numpy()
        allowed = np.column_stack([eligible(customers, spec.offer(o)) for o in OFFERS])
        oracle_best = np.where(allowed, g_true, -np.inf).max(axis=1)
        n_treat = int((oracle_best > 0).sum())
        v_oracle = policy_value(g_true, g_true, allowed, n_treat)
        v_model = policy_value(g_pred, g_true, allowed, n_treat)
        rng = np.random.default_rng(0)
        v_random = policy_value(rng.random(g_true.shape), g_true, allowed, n_treat)
        print(f"\ncampaign rows {len(table):,}; oracle treats {n_treat:,} customers")
        print(f"true incremental value  oracle {v_oracle:,.0f}  learned {v_model:,.0f} "
              f"({v_model / v_oracle:.1%} of oracle)  random offers {v_random:,.0f}")
        for share in (0.1, 0.3):
            n = int(share * len(table))
            v_o = policy_value(g_true, g_true, allowed, n)
            v_m = policy_value(g_pred, g_true, allowed, n)
            print(f"  treating the top {share:.0%} ({n:,}): oracle {v_o:,.0f}  learned "
                  f"{v_m:,.0f} ({v_m / v_o:.1%})")
        for o in OFFERS:
            c_churn = np.corrcoef(churn_eff[f"effect_{o}"], truth[f"delta_churn_{o}"])[0, 1]
            c_value = np.corrcoef(value_eff[f"effect_{o}"], truth[f"delta_value_{o}"])[0, 1]
            c_gain = np.corrcoef(predicted[f"gain_{o}"], oracle[f"gain_{o}"])[0, 1]
            print(f"  {o:<14} corr(pred, true): delta churn {c_churn:.3f}  delta value "
                  f"{c_value:.3f}  gain {c_gain:.3f}")
        for name, seconds in timings.items():
            print(f"time {name:<22} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
