"""The planner's plan on the demo bank, scored against the truth.

Runs the same chain as `uplift plan` (demo bank, cached models), then compares the *true* net
gain (true churn and value effects from truth.parquet, costs subtracted) of:

* the plan (allocator on predicted gains, same rules as `uplift plan`, before the holdout);
* the oracle plan: the allocator on the true gains, same budget and rules;
* "rate coupon to every red-tier customer (riskiest first) until the budget is spent";
* the model's gains without the allocator: customers by best predicted gain, greedily, within
  the budget and the advisor capacity;
* two variants of the plan: gains from effects shrunk toward each offer's average (empirical
  Bayes), and ``--confident`` (only offers whose gain lower bound is positive).

To separate what the allocator can add from what the estimates allow, it also prints the same
greedy rule on the *true* gains (the allocator's edge over greedy when effects are known
exactly: oracle / greedy-on-truth), the spend of each plan, the plan's predicted net gain
against its true one (the allocator picks the highest estimates, so they run high), and per
offer the correlation of predicted with true gains over the scored customers.

Usage: python evaluation/plan_simulated.py [--budgets 500000,100000,30000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.allocate import allocate
from uplift.allocate.plan import ScoreTable
from uplift.campaign import eligible, load_campaign_spec
from uplift.effects.gain import expected_gains
from uplift.features import build_features
from uplift.pipeline import default_cache, demo_run, score_customers
from uplift.simulate import OFFERS, read_truth

ROOT = Path(__file__).resolve().parents[1]


def chosen_total(choice: np.ndarray, per_offer: np.ndarray) -> float:
    """Sum of ``per_offer[i, choice[i]]`` over customers with an offer (gains or costs)."""
    rows = np.flatnonzero(choice >= 0)
    return float(per_offer[rows, choice[rows]].sum())


def greedy(gains: np.ndarray, costs: np.ndarray, allowed: np.ndarray, budget: float,
           cap_col: int, cap: int) -> np.ndarray:
    masked = np.where(allowed, gains, -np.inf)
    best = masked.argmax(axis=1)
    score = masked[np.arange(len(best)), best]
    choice = np.full(len(best), -1)
    spent, used = 0.0, 0
    for i in np.argsort(-score, kind="stable"):
        if score[i] <= 0:
            break
        c = costs[i, best[i]]
        if spent + c > budget or (best[i] == cap_col and used >= cap):
            continue
        choice[i] = best[i]
        spent += c
        used += best[i] == cap_col
    return choice


def shrunk_scores(scores: pd.DataFrame, features: pd.DataFrame, models, spec,
                  settings) -> pd.DataFrame:
    """The same scores with gains from effects shrunk toward each offer's average effect."""
    current = features[features["open_at_as_of"] == 1].drop(
        columns=["open_at_as_of", "as_of"]).reset_index(drop=True)

    def frame(model) -> pd.DataFrame:
        X = model.matrix(current, source="features")
        effects, se = model.estimator_.predict_shrunk(X), model.estimator_.predict_se(X)
        return pd.DataFrame({**{f"effect_{a}": effects[a] for a in model.arms},
                             **{f"se_{a}": se[a] for a in model.arms}})

    value = frame(models.effects_value) if models.effects_value is not None else None
    gains = expected_gains(scores, frame(models.effects_churn), spec, settings.customer_value,
                           value_effects=value)
    out = scores.copy()
    for column in gains.columns:
        if column.startswith(("gain_", "gain_lo_")):
            out[column] = gains[column].to_numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", default="500000,100000,30000")
    args = parser.parse_args()
    demo = demo_run(default_cache(), print)
    data, inputs, day, settings, models = (demo.data, demo.inputs, demo.as_of, demo.settings,
                                           demo.models)
    spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    features = build_features(inputs, day)
    scores = score_customers(inputs, day, models, spec, settings, features=features)
    truth = read_truth(data / "truth.parquet").set_index("customer_id").loc[
        scores["customer_id"]].reset_index()
    true_churn = pd.DataFrame({f"effect_{o}": truth[f"delta_churn_{o}"] for o in OFFERS})
    true_val = pd.DataFrame({f"effect_{o}": truth[f"delta_value_{o}"] for o in OFFERS})
    oracle_scores = expected_gains(scores, true_churn, spec, settings.customer_value,
                                   value_effects=true_val)
    g_true = oracle_scores[[f"gain_{o}" for o in spec.offer_names]].to_numpy()
    g_pred = scores[[f"gain_{o}" for o in spec.offer_names]].to_numpy()
    costs = scores[[f"cost_{o}" for o in spec.offer_names]].to_numpy()
    consent = scores["marketing_consent"].astype(bool).to_numpy()
    allowed = np.column_stack([eligible(scores, spec.offer(o)) for o in spec.offer_names])
    allowed &= consent[:, None]
    cap = spec.capacities[0].max_count
    cap_col = spec.offer_names.index(spec.capacities[0].offer)
    coupon = spec.offer_names.index("rate_coupon")
    shrunk = shrunk_scores(scores, features, models, spec, settings)
    for k, offer in enumerate(spec.offer_names):
        r = np.corrcoef(g_pred[:, k], g_true[:, k])[0, 1]
        print(f"{offer:<14} predicted vs true gain: correlation {r:+.3f}, sd "
              f"{g_pred[:, k].std():7.1f} vs {g_true[:, k].std():7.1f}")
    for budget in [float(b) for b in args.budgets.split(",")]:
        plan = allocate(ScoreTable.from_frame(scores, spec.offer_names, "scores"), spec,
                        budget=budget)
        variants = {
            "shrunk effects": allocate(ScoreTable.from_frame(shrunk, spec.offer_names, "s"),
                                       spec, budget=budget),
            "--confident": allocate(ScoreTable.from_frame(scores, spec.offer_names, "c"), spec,
                                    budget=budget, confident=True)}
        oracle_table = scores.copy()
        for o in spec.offer_names:
            oracle_table[f"gain_{o}"] = oracle_scores[f"gain_{o}"]
        oracle = allocate(ScoreTable.from_frame(oracle_table, spec.offer_names, "oracle"), spec,
                          budget=budget)
        v_plan = chosen_total(plan.solution.choice, g_true)
        v_oracle = chosen_total(oracle.solution.choice, g_true)
        red = np.flatnonzero((scores["tier"] == "red").to_numpy() & allowed[:, coupon])
        red = red[np.argsort(-scores["churn_risk"].to_numpy()[red], kind="stable")]
        spend = np.cumsum(costs[red, coupon])
        rule = np.full(len(scores), -1)
        rule[red[spend <= budget]] = coupon
        v_rule = chosen_total(rule, g_true)
        greedy_choice = greedy(g_pred, costs, allowed, budget, cap_col, cap)
        v_greedy = chosen_total(greedy_choice, g_true)
        v_greedy_true = chosen_total(greedy(g_true, costs, allowed, budget, cap_col, cap), g_true)
        print(f"budget {budget:>9,.0f}: true net gain  plan {v_plan:>11,.0f} "
              f"({v_plan / v_oracle:.1%} of oracle)  oracle {v_oracle:>11,.0f}  "
              f"coupon-to-red {v_rule:>11,.0f}  greedy-by-gain {v_greedy:>11,.0f}")
        print(f"{'':>18}plan vs greedy-by-gain {v_plan / v_greedy - 1:+.1%}; with true gains: "
              f"oracle vs greedy {v_oracle / v_greedy_true - 1:+.1%} "
              f"(greedy on true gains {v_greedy_true:,.0f})")
        v_promised = chosen_total(plan.solution.choice, g_pred)
        print(f"{'':>18}the plan's predicted net gain {v_promised:,.0f} vs true {v_plan:,.0f} "
              f"(true / predicted {v_plan / v_promised:.2f})")
        print(f"{'':>18}spend: plan {chosen_total(plan.solution.choice, costs):,.0f}, greedy "
              f"{chosen_total(greedy_choice, costs):,.0f}, oracle "
              f"{chosen_total(oracle.solution.choice, costs):,.0f}")
        for name, result in variants.items():
            value = chosen_total(result.solution.choice, g_true)
            print(f"{'':>18}plan on {name}: {value:>11,.0f} ({value / v_oracle:.1%} of oracle)")

if __name__ == "__main__":
    main()
