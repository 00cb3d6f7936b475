"""Coverage of the campaign ROI interval on simulated campaigns (known true effects).

Each replication simulates a bank (its own seed); its randomised campaign is evaluated with
`uplift.evaluate.evaluate_ab` per offer against control, value = retained x annual customer
value (currency), cost = the demo campaign's cost of the offer. The true ROI of an offer on
the customers who got it is (sum of -true delta churn x annual value - cost) / cost.

Usage: python evaluation/roi_replications.py [--replications 50] [--customers 20000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.campaign import load_campaign_spec
from uplift.evaluate import evaluate_ab
from uplift.simulate import OFFERS, simulate_bank

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replications", type=int, default=50)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    rows = []
    for rep in range(args.replications):
        bank = simulate_bank(args.customers, 12, seed=rep)
        log = bank.campaign_log.merge(bank.truth.drop(columns=["segment"]), on="customer_id").merge(
            bank.customers[["customer_id", "aum", "segment"]], on="customer_id")
        log["value"] = (1 - log["churned"]) * log["annual_value"]
        log["cost"] = 0.0
        for offer in OFFERS:
            mask = log["arm"] == offer
            log.loc[mask, "cost"] = spec.offer(offer).cost.cost(log.loc[mask, "aum"].to_numpy())
        result = evaluate_ab(log, arm="arm", control="control", metric="churned", cost="cost",
                             value="value", n_boot=300, seed=rep, strata="segment")
        for offer in OFFERS:
            m = result["money"][offer]
            treated = log[log["arm"] == offer]
            gain = float((-treated[f"delta_churn_{offer}"] * treated["annual_value"]).sum())
            cost = float(treated["cost"].sum())
            truth = (gain - cost) / cost
            rows.append({"rep": rep, "offer": offer, "truth": truth, "roi": m["roi"],
                         "delta": m["roi_low"] <= truth <= m["roi_high"],
                         "bootstrap": m["roi_boot_low"] <= truth <= m["roi_boot_high"]})
    table = pd.DataFrame(rows)
    summary = table.groupby("offer").agg(true_roi=("truth", "mean"), estimate=("roi", "mean"),
                                         delta_coverage=("delta", "mean"),
                                         bootstrap_coverage=("bootstrap", "mean"))
    print(f"{args.replications} replications x {args.customers:,} customers")
    print(summary.round(3).to_string())
    print(f"overall coverage: delta {table['delta'].mean():.1%}, bootstrap "
          f"{table['bootstrap'].mean():.1%}; mean error "
          f"{np.mean(table['roi'] - table['truth']):+.3f}")


if __name__ == "__main__":
    main()
