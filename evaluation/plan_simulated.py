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

Over several simulated banks (``--seeds``; seed 0 is the demo bank, the others are simulated
and trained the same way under the cache folder) it prints per budget the mean and spread of
plan / oracle and plan vs greedy-by-predicted-gain, and the same for the plan on raw
per-customer effects (before the held-out calibration test replaced the offers without signal
by the averages of effect groups (churn tier and top reason), :mod:`uplift.effects.calibration`).

Usage: python evaluation/plan_simulated.py [--budgets 10000,30000,100000,demo]
       [--seeds 0,1,2] [--variants]
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
from uplift.pipeline import (
    Models,
    default_cache,
    demo_run,
    ensure_models,
    fingerprint,
    load_models,
    planning_date,
    score_customers,
)
from uplift.simulate import OFFERS, read_truth

ROOT = Path(__file__).resolve().parents[1]


def chosen_total(choice: np.ndarray, per_offer: np.ndarray) -> float:
    """Sum of ``per_offer[i, choice[i]]`` over customers with an offer (gains or costs)."""
    rows = np.flatnonzero(choice >= 0)
    return float(per_offer[rows, choice[rows]].sum())


def greedy(gains: np.ndarray, costs: np.ndarray, allowed: np.ndarray, budget: float,
           caps: dict[int, int]) -> np.ndarray:
    """Customers by best gain, each given that offer while budget and capacity (offer index ->
    max count) allow."""
    masked = np.where(allowed, gains, -np.inf)
    best = masked.argmax(axis=1)
    score = masked[np.arange(len(best)), best]
    choice = np.full(len(best), -1)
    spent = 0.0
    used = dict.fromkeys(caps, 0)
    for i in np.argsort(-score, kind="stable"):
        if score[i] <= 0:
            break
        c, k = costs[i, best[i]], int(best[i])
        if spent + c > budget or (k in caps and used[k] >= caps[k]):
            continue
        choice[i] = k
        spent += c
        if k in caps:
            used[k] += 1
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


def raw_scores(scores: pd.DataFrame, features: pd.DataFrame, models: Models, spec,
               settings) -> pd.DataFrame:
    """The same scores with gains from the raw per-customer effects of every offer."""
    current = features[features["open_at_as_of"] == 1].drop(
        columns=["open_at_as_of", "as_of"]).reset_index(drop=True)
    churn = models.effects_churn.predict(current, source="features")
    value = (models.effects_value.predict(current, source="features")
             if models.effects_value is not None else None)
    gains = expected_gains(scores, churn, spec, settings.customer_value, value_effects=value)
    out = scores.copy()
    for column in gains.columns:
        if column.startswith(("gain_", "gain_lo_")):
            out[column] = gains[column].to_numpy()
    return out


def bank(seed: int, cache: Path):
    """(data folder, inputs, planning date, settings, models) of the bank of ``seed``: the demo
    bank for 0, else simulated and trained like it under ``cache``."""
    if seed == 0:
        demo = demo_run(cache, print)
        return demo.data, demo.inputs, demo.as_of, demo.settings, demo.models
    from uplift.cli import run
    from uplift.config import Settings
    from uplift.features import FeatureInputs

    data = cache / f"plan-sim-bank-50000-seed{seed}"
    if not (data / "manifest.json").exists():
        assert run(["--quiet", "simulate", "--customers", "50000", "--seed", str(seed),
                    "--out", str(data)]) == 0
    inputs = FeatureInputs.from_folder(data)
    settings = Settings()
    day = planning_date(data, inputs, None)
    key = fingerprint(inputs, day, settings, 0)
    folder = cache / "models" / key
    ensure_models(inputs, day, folder, settings, seed=0, data=data, key=key, progress=print)
    return data, inputs, day, settings, load_models(folder)


def evaluate_bank(seed: int, budgets: list[float], spec, variants: bool) -> list[dict]:
    """Rows (seed, budget, method, true net gain, oracle) for one bank."""
    data, inputs, day, settings, models = bank(seed, default_cache())
    features = build_features(inputs, day)
    scores = score_customers(inputs, day, models, spec, settings, features=features)
    raw = raw_scores(scores, features, models, spec, settings)
    truth = read_truth(data / "truth.parquet").set_index("customer_id").loc[
        scores["customer_id"]].reset_index()
    true_churn = pd.DataFrame({f"effect_{o}": truth[f"delta_churn_{o}"] for o in OFFERS})
    true_val = pd.DataFrame({f"effect_{o}": truth[f"delta_value_{o}"] for o in OFFERS})
    oracle_scores = expected_gains(scores, true_churn, spec, settings.customer_value,
                                   value_effects=true_val)
    names = spec.offer_names
    g_true = oracle_scores[[f"gain_{o}" for o in names]].to_numpy()
    g_pred = scores[[f"gain_{o}" for o in names]].to_numpy()
    g_raw = raw[[f"gain_{o}" for o in names]].to_numpy()
    costs = scores[[f"cost_{o}" for o in names]].to_numpy()
    consent = scores["marketing_consent"].astype(bool).to_numpy()
    allowed = np.column_stack([eligible(scores, spec.offer(o)) for o in names])
    allowed &= consent[:, None]
    caps = {names.index(c.offer): c.max_count for c in spec.capacities
            if c.max_count is not None}
    coupon = names.index("rate_coupon")
    print(f"seed {seed}: {len(scores):,} customers scored")
    for k, offer in enumerate(names):
        r_raw = np.corrcoef(g_raw[:, k], g_true[:, k])[0, 1]
        print(f"  {offer:<14} raw predicted vs true gain: correlation {r_raw:+.3f}; plan uses "
              f"{'raw' if np.allclose(g_raw[:, k], g_pred[:, k]) else 'group averages'}")
    oracle_table = scores.copy()
    for o in names:
        oracle_table[f"gain_{o}"] = oracle_scores[f"gain_{o}"]
    rows = []
    for budget in budgets:
        def plan_of(table: pd.DataFrame, budget: float = budget, **kw) -> np.ndarray:
            return allocate(ScoreTable.from_frame(table, names, "scores"), spec, budget=budget,
                            **kw).solution.choice

        choices = {"plan": plan_of(scores), "plan on raw effects": plan_of(raw),
                   "oracle": plan_of(oracle_table),
                   "greedy by predicted gain": greedy(g_pred, costs, allowed, budget, caps),
                   "greedy by raw predicted gain": greedy(g_raw, costs, allowed, budget, caps),
                   "greedy on true gains": greedy(g_true, costs, allowed, budget, caps)}
        red = np.flatnonzero((scores["tier"] == "red").to_numpy() & allowed[:, coupon])
        red = red[np.argsort(-scores["churn_risk"].to_numpy()[red], kind="stable")]
        rule = np.full(len(scores), -1)
        rule[red[np.cumsum(costs[red, coupon]) <= budget]] = coupon
        choices["coupon to red tier"] = rule
        if variants:
            shrunk = shrunk_scores(scores, features, models, spec, settings)
            choices["plan on shrunk effects"] = plan_of(shrunk)
            choices["--confident"] = plan_of(scores, confident=True)
        oracle = chosen_total(choices["oracle"], g_true)
        for method, choice in choices.items():
            rows.append({"seed": seed, "budget": budget, "method": method,
                         "true_gain": chosen_total(choice, g_true),
                         "predicted_gain": chosen_total(choice, g_pred),
                         "spend": chosen_total(choice, costs), "oracle": oracle})
        v = {m: chosen_total(c, g_true) for m, c in choices.items()}
        print(f"  budget {budget:>9,.0f}: plan {v['plan']:>11,.0f} ({v['plan'] / oracle:.1%} of "
              f"oracle {oracle:,.0f}); raw-effects plan {v['plan on raw effects'] / oracle:.1%}; "
              f"greedy {v['greedy by predicted gain'] / oracle:.1%}; plan vs greedy "
              f"{v['plan'] / v['greedy by predicted gain'] - 1:+.1%}; spend plan "
              f"{chosen_total(choices['plan'], costs):,.0f} oracle "
              f"{chosen_total(choices['oracle'], costs):,.0f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budgets", default="10000,30000,100000,demo")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", action="store_true",
                        help="also the plans on shrunk effects and --confident")
    args = parser.parse_args()
    spec = load_campaign_spec(ROOT / "campaigns" / "retention_demo.yaml")
    budgets = [float(spec.budget) if b == "demo" else float(b) for b in args.budgets.split(",")]
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows += evaluate_bank(seed, budgets, spec, args.variants)
    frame = pd.DataFrame(rows)
    frame["share_of_oracle"] = frame["true_gain"] / frame["oracle"]
    greedy_gain = frame[frame["method"] == "greedy by predicted gain"].set_index(
        ["seed", "budget"])["true_gain"]
    frame["vs_greedy"] = frame["true_gain"] / greedy_gain.loc[
        list(zip(frame["seed"], frame["budget"], strict=True))].to_numpy() - 1
    summary = frame.groupby(["budget", "method"]).agg(
        share_of_oracle=("share_of_oracle", "mean"), share_sd=("share_of_oracle", "std"),
        vs_greedy=("vs_greedy", "mean"), vs_greedy_sd=("vs_greedy", "std"),
        true_gain=("true_gain", "mean"), spend=("spend", "mean"))
    with pd.option_context("display.float_format", "{:,.3f}".format, "display.width", 200,
                           "display.max_rows", 200):
        print(summary)


if __name__ == "__main__":
    main()
