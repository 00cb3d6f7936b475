"""Hillstrom: a multi-arm e-mail plan under a 30%-of-customers contact budget, valued offline.

70/30 split (seeded). The effects model (`uplift.EffectsModel`, what `uplift effects fit` runs)
learns each e-mail's effect on `visit` from the training part; on the test part every customer
gets gain_<arm> = predicted extra visit probability and cost_<arm> = 1 (one contact), and the
allocator (`uplift.allocate_offers`) picks at most 30% of the test customers. The offline policy
simulation (`uplift.simulate_policy`) then values that plan on the test log (arms were
randomised 1/3 each) against random targeting of the same number of customers.

Usage: python evaluation/hillstrom_plan.py [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import uplift
from uplift.report.console import policy_lines

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom.csv"
ARMS = ["Mens E-Mail", "Womens E-Mail"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = pd.read_csv(DATA).drop(columns=["conversion", "spend"])
    frame.insert(0, "customer_id", np.arange(len(frame)))
    rng = np.random.default_rng(args.seed)
    test = rng.random(len(frame)) < 0.3
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = uplift.EffectsModel(
            treatment="segment", control="No E-Mail", outcome="visit", id_col="customer_id",
            estimator=uplift.UpliftEstimator(learners=("t", "s", "x"), random_state=args.seed))
        model.fit(frame[~test], source="hillstrom training rows")
        held = frame[test].reset_index(drop=True)
        effects = model.predict(held.drop(columns=["segment", "visit"]), source="held out")
        scores = pd.DataFrame({"customer_id": held["customer_id"].astype(str)})
        for k, arm in enumerate(ARMS):
            scores[f"gain_e{k}"] = effects[f"effect_{arm}"].to_numpy()
            scores[f"cost_e{k}"] = 1.0
        budget = int(0.3 * len(held))
        spec = uplift.CampaignSpec.model_validate({
            "name": "hillstrom", "currency": "contacts", "holdout_fraction": 0.0,
            "require_consent": False, "holdout_stratify": [],
            "offers": [{"name": f"e{k}", "channel": "email", "cost": {"fixed": 1.0}}
                       for k in range(len(ARMS))]})
        plan = uplift.allocate_offers(scores, spec, budget=budget).plan
        plan["offer"] = plan["offer"].map({f"e{k}": arm for k, arm in enumerate(ARMS)})
        plan.to_csv(tmp / "plan_named.csv", index=False)
        share = len(plan) / len(held)
        print(f"test customers {len(held):,}; contact budget {budget:,} (30%); plan contacts "
              f"{len(plan):,}: " + ", ".join(f"{a} {n:,}" for a, n in
                                            plan["offer"].value_counts().items()))
        result = uplift.simulate_policy(
            held.assign(propensity=1 / 3), arm="segment", control="No E-Mail", outcome="visit",
            propensity="propensity", features=["recency", "history", "mens", "womens", "newbie"],
            policies=[f"plan:{tmp / 'plan_named.csv'}", f"random:{share:.4f}:Mens E-Mail",
                      f"random:{share:.4f}:Womens E-Mail", "none"], seed=args.seed)
        for line in policy_lines(result):
            print(line)

if __name__ == "__main__":
    main()
