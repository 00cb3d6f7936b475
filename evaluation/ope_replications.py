"""Doubly robust policy value on simulated logs: bias and interval coverage over replications.

An effects model is trained once on a training bank (seed 1000). Each replication simulates a
fresh bank (its own seed), logs its randomised campaign, lets the model choose each customer's
offer (best predicted benefit, else control) and estimates that policy's 30-day churn rate with
DM, IPW, SNIPW and DR (`uplift.evaluate.ope`), against the true value from truth.parquet.

Usage: python evaluation/ope_replications.py [--replications 50] [--customers 20000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from uplift.evaluate.ope import evaluate_policy, outcome_model
from uplift.evaluate.policies import policy_arms
from uplift.features import FeatureInputs
from uplift.pipeline import campaign_table as pipeline_campaign_table
from uplift.simulate import read_truth, true_policy_churn
from uplift.tasks.data import simulate_to_folder
from uplift.tasks.models import fit_effects


def campaign_table(data: Path) -> pd.DataFrame:
    """The bank's campaign log with features as of the assignment date (no other outcome)."""
    return pipeline_campaign_table(FeatureInputs.from_folder(data), threads=2).drop(
        columns=["campaign_id", "assigned_at", "value_after"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        simulate_to_folder(tmp / "train", args.customers, seed=1000)
        campaign_table(tmp / "train").to_parquet(tmp / "train.parquet")
        fit_effects(tmp / "train.parquet", tmp / "model", treatment="arm", control="control",
                    outcome="churned", goal="decrease", propensity="propensity",
                    id_col="customer_id")
        rows = []
        for rep in range(args.replications):
            started = time.perf_counter()
            bank = tmp / f"rep{rep}"
            simulate_to_folder(bank, args.customers, seed=rep)
            log = campaign_table(bank)
            arms = sorted(set(log["arm"]) - {"control"})
            chosen = policy_arms(f"model:{tmp / 'model'}", log, control="control", arms=arms)
            y = log["churned"].to_numpy(float)
            logged = log["arm"].astype(str).to_numpy()
            features = [c for c in log.columns if c not in ("customer_id", "arm", "churned",
                                                            "propensity")]
            q = outcome_model(log[features].to_numpy(float), y, logged, seed=rep)
            result = evaluate_policy(y, logged, log["propensity"].to_numpy(float), chosen, q)
            true_value = true_policy_churn(read_truth(bank / "truth.parquet"),
                                           log["customer_id"], chosen)
            record = {"rep": rep, "truth": true_value, "treated": float((chosen != "control")
                                                                       .mean())}
            for est in ("dm", "ipw", "snipw", "dr"):
                r = result[est]
                record[f"{est}"] = r["value"]
                record[f"{est}_covers"] = r["low"] <= true_value <= r["high"]
            rows.append(record)
            print(f"rep {rep}: truth {true_value:.4f}  DR {result['dr']['value']:.4f} "
                  f"[{result['dr']['low']:.4f}, {result['dr']['high']:.4f}]  "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
            shutil.rmtree(bank)
        table = pd.DataFrame(rows)
        print(f"\n{len(table)} replications, {args.customers:,} customers each; true policy "
              f"value (30-day churn rate) mean {table['truth'].mean():.4f}")
        for est in ("dm", "ipw", "snipw", "dr"):
            rel = (table[est] - table["truth"]) / table["truth"]
            print(f"{est.upper():>6}: mean error {rel.mean():+.2%} of the true value "
                  f"(mean absolute {rel.abs().mean():.2%}); 95% interval covers the truth in "
                  f"{table[f'{est}_covers'].mean():.0%}")


if __name__ == "__main__":
    main()
