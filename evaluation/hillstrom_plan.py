"""Hillstrom: a multi-arm e-mail plan under a 30%-of-customers contact budget, valued offline.

70/30 split (seeded). `uplift effects fit` learns each e-mail's effect on `visit` from the
training part; on the test part every customer gets gain_<arm> = predicted extra visit
probability and cost_<arm> = 1 (one contact), and `uplift allocate` picks at most 30% of the
test customers. `uplift simulate-policy` then values that plan on the test log (arms were
randomised 1/3 each) against random targeting of the same number of customers.

Usage: python evaluation/hillstrom_plan.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.cli import run

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
        frame[~test].to_csv(tmp / "train.csv", index=False)
        assert run(["--quiet", "effects", "fit", "--table", str(tmp / "train.csv"),
                    "--treatment", "segment", "--control", "No E-Mail", "--outcome", "visit",
                    "--id", "customer_id", "--learners", "t,s,x", "--seed", str(args.seed),
                    "--out", str(tmp / "model")]) == 0
        held = frame[test].reset_index(drop=True)
        held.drop(columns=["segment", "visit"]).to_csv(tmp / "test_x.csv", index=False)
        assert run(["--quiet", "effects", "predict", "--model", str(tmp / "model"), "--table",
                    str(tmp / "test_x.csv"), "--out", str(tmp / "effects.csv")]) == 0
        effects = pd.read_csv(tmp / "effects.csv")
        scores = pd.DataFrame({"customer_id": held["customer_id"]})
        for k, arm in enumerate(ARMS):
            name = f"e{k}"
            scores[f"gain_{name}"] = effects[f"effect_{arm}"]
            scores[f"cost_{name}"] = 1.0
        scores.to_csv(tmp / "scores.csv", index=False)
        budget = int(0.3 * len(held))
        spec = {"name": "hillstrom", "currency": "contacts", "holdout_fraction": 0.0,
                "require_consent": False, "holdout_stratify": [],
                "offers": [{"name": f"e{k}", "channel": "email", "cost": {"fixed": 1.0}}
                           for k in range(len(ARMS))]}
        (tmp / "spec.yaml").write_text(json.dumps(spec))
        assert run(["--quiet", "allocate", "--scores", str(tmp / "scores.csv"), "--campaign",
                    str(tmp / "spec.yaml"), "--budget", str(budget), "--out",
                    str(tmp / "plan.csv")]) == 0
        plan = pd.read_csv(tmp / "plan.csv")
        plan["offer"] = plan["offer"].map({f"e{k}": arm for k, arm in enumerate(ARMS)})
        plan.to_csv(tmp / "plan_named.csv", index=False)
        log = held.assign(propensity=1 / 3)
        log.to_csv(tmp / "log.csv", index=False)
        share = len(plan) / len(held)
        print(f"test customers {len(held):,}; contact budget {budget:,} (30%); plan contacts "
              f"{len(plan):,}: " + ", ".join(f"{a} {n:,}" for a, n in
                                            plan["offer"].value_counts().items()))
        assert run(["simulate-policy", "--log", str(tmp / "log.csv"), "--arm", "segment",
                    "--control", "No E-Mail", "--outcome", "visit", "--propensity",
                    "propensity", "--features", "recency,history,mens,womens,newbie",
                    "--policy", f"plan:{tmp / 'plan_named.csv'}",
                    "--policy", f"random:{share:.4f}:Mens E-Mail",
                    "--policy", f"random:{share:.4f}:Womens E-Mail", "--policy", "none",
                    "--seed", str(args.seed)]) == 0


if __name__ == "__main__":
    main()
