"""The plan backtest on the demo bank, checked against the truth.

`uplift plan` replays its rule on the past randomised campaign (out-of-fold effects) and
estimates by inverse-propensity weighting how much of the predicted net gain came true
(`uplift.evaluate.backtest`). On the demo bank the logged customers' true effects are known
(``truth.parquet``, full-information columns, which is what their realised outcomes average
to), so the estimate can be compared with the true net gain of the very same replayed choices.

Usage: python evaluation/plan_backtest.py [--budgets 500000,30000,10000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from uplift import io
from uplift.campaign import load_campaign_spec
from uplift.effects.gain import expected_gains
from uplift.evaluate.backtest import measure, replayed_plan
from uplift.pipeline import campaign_table, default_cache, demo_run
from uplift.simulate import OFFERS, read_truth

ROOT = Path(__file__).resolve().parents[1]


def true_net_gain(choice: np.ndarray, table: pd.DataFrame, truth: pd.DataFrame, spec,
                  value) -> float:
    """True net gain (currency) of ``choice`` on the logged rows; ``truth`` aligned with them
    (full-information effects: what their realised outcomes average to)."""
    gains = expected_gains(
        table.assign(customer_id=np.arange(len(table))),
        pd.DataFrame({f"effect_{o}": truth[f"delta_churn_latent_{o}"] for o in OFFERS}),
        spec, value,
        value_effects=pd.DataFrame({f"effect_{o}": truth[f"delta_value_{o}"] for o in OFFERS}))
    return float(sum(gains[f"gain_{o}"].to_numpy()[choice == k].sum()
                     for k, o in enumerate(spec.offer_names)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", default="500000,30000,10000")
    args = parser.parse_args()
    demo = demo_run(default_cache(), print)
    spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    table = io.read_table(demo.models.folder / "backtest.parquet")
    logged = campaign_table(demo.inputs, demo.settings.runtime.threads)  # same row order
    truth = read_truth(demo.data / "truth.parquet").set_index("customer_id").loc[
        logged["customer_id"]].reset_index()
    planned = int((pd.read_parquet(demo.data / "customers.parquet")["close_date"].isna()).sum())
    print(f"{len(table):,} logged customers; plan population {planned:,}")
    for budget in [float(b) for b in args.budgets.split(",")]:
        choice, gains = replayed_plan(table, spec, budget, planned,
                                      demo.settings.customer_value)
        result = measure(table, choice, gains, spec.offer_names)
        true = true_net_gain(choice, table, truth, spec, demo.settings.customer_value)
        low, high = result.realisation_interval
        print(f"budget {budget:>9,.0f}: chosen {result.chosen:,}; predicted "
              f"{result.predicted:,.0f}; IPW realised {result.realised:,.0f} "
              f"[{result.realised_low:,.0f}, {result.realised_high:,.0f}]; true "
              f"{true:,.0f}; realisation {result.realisation:.2f} ({low:.2f} .. {high:.2f}) vs "
              f"true {true / result.predicted:.2f}; interval covers the truth: "
              f"{result.realised_low <= true <= result.realised_high}")


if __name__ == "__main__":
    main()
