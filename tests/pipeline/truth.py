"""The simulator's truth about plans: what a plan's choices are really worth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DEMO_CAMPAIGN = Path(__file__).resolve().parents[2] / "campaigns" / "retention_demo.yaml"


def true_net_gain(truth: pd.DataFrame, customer_ids, offers, customer_value: np.ndarray,
                  costs: np.ndarray) -> float:
    """Sum over the given customers of the true effect of their offer in currency
    (``-delta_churn * customer value + delta_value``, latent effects) minus its cost."""
    rows = truth.loc[pd.Index(customer_ids).astype(str)]
    offers = np.asarray(offers, dtype=object)
    gain = 0.0
    for offer in set(offers):
        mask = offers == offer
        gain += float(np.sum(-rows[f"delta_churn_latent_{offer}"].to_numpy()[mask]
                             * customer_value[mask]
                             + rows[f"delta_value_{offer}"].to_numpy()[mask]))
    return gain - float(np.sum(costs))


def read_truth_by_text_id(bank: Path) -> pd.DataFrame:
    truth = pd.read_parquet(bank / "truth.parquet")
    truth.index = truth["customer_id"].astype(str)       # plans and logs carry text ids
    return truth


def replayed_plan_truth(models: Path, bank: Path, *, budget: float, planned: int,
                        campaign: Path = DEMO_CAMPAIGN, seed: int = 0) -> dict[str, float]:
    """Replay the plan's rule on the campaign log as the backtest does, and price the replayed
    choice with the simulator's truth."""
    from uplift import io
    from uplift.campaign import load_campaign_spec
    from uplift.config import load_settings
    from uplift.evaluate.backtest import replayed_plan

    table = io.read_table(models / "backtest.parquet", derived=True)
    spec = load_campaign_spec(campaign)
    choice, gains = replayed_plan(table, spec, budget, planned,
                                  load_settings(None).customer_value, seed=seed)
    chosen = choice >= 0
    offers = np.asarray(spec.offer_names, dtype=object)[choice[chosen]]
    costs = np.array([gains[f"cost_{o}"].to_numpy()[i]
                      for o, i in zip(offers, np.flatnonzero(chosen), strict=True)])
    predicted = float(sum(gains[f"gain_{o}"].to_numpy()[i]
                          for o, i in zip(offers, np.flatnonzero(chosen), strict=True)))
    truth = read_truth_by_text_id(bank)
    # the backtest table holds the logged rows in the campaign log's order, without ids
    log = pd.read_parquet(bank / "campaign_log.parquet")
    assert (log["arm"].astype(str).to_numpy() == table["arm"].to_numpy()).all()
    assert np.allclose(log["churned"].to_numpy(float), table["churned"].to_numpy(float))
    value = gains["customer_value"].to_numpy(float)[chosen]
    return {"chosen": int(chosen.sum()), "predicted": predicted,
            "true_net_gain": true_net_gain(truth, log["customer_id"].to_numpy()[chosen],
                                           offers, value, costs)}
