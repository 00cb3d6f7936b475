"""Offline simulation of several candidate policies on one logged campaign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift.effects.money import Money, cost_matrix, logged_cost
from uplift.errors import InputError, SchemaError, UpliftError
from uplift.evaluate.ab import metric_values
from uplift.evaluate.ope import evaluate_policy, outcome_model, paired_difference
from uplift.evaluate.policies import policy_arms, policy_file
from uplift.schema import rows_text

# columns measured after the assignment (the campaign log's and outcomes tables' results):
# never features of the outcome model, whatever the log calls its outcome
POST_ASSIGNMENT = ("churned", "value_after", "retained", "retained_value", "new_business",
                   "cost")
TRAINED_ON_SHARE = 0.8


def simulate_policies(
    frame: pd.DataFrame, *, arm: str, control: str, outcome: str, propensity: str,
    policies: list[str], goal: str = "increase", features: list[str] | None = None,
    truth: Path | None = None, seed: int = 0, source: str = "log",
    money: Money | None = None,
) -> dict:
    """Each policy's DM/IPW/SNIPW/DR value with intervals, overlap, and paired differences
    against the first policy; with a simulator ``truth`` file and a ``churned`` outcome, also
    each policy's true value. ``features`` (default: every numeric column except the arm,
    outcome, propensity and customer_id) feed the cross-fitted outcome model of DM and DR.

    With ``money`` every value is in currency per customer: ``value * good - cost`` of the arm
    the policy gives (``good``: the outcome on its good side, ``1 - y`` for a binary outcome
    with goal ``decrease``); cost columns named by ``money`` are read from the log."""
    for col in (arm, outcome, propensity):
        if col not in frame.columns:
            raise SchemaError(source, [f"column {col!r} not found"])
    if "customer_id" in frame.columns:
        from uplift.ids import parse_ids, repeated_ids

        if problems := repeated_ids(parse_ids(frame["customer_id"], source=source),
                                    each="each logged customer is one row"):
            raise SchemaError(source, problems)
    logged = frame[arm].astype(str).to_numpy()
    if control not in set(logged):
        raise InputError(f"{source}: control value {control!r} not in column {arm!r}")
    y, _ = metric_values(frame, outcome, source)
    p, _ = metric_values(frame, propensity, source)
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        raise SchemaError(source, [f"column {propensity!r}: propensities must be in (0, 1]; "
                                   f"{rows_text(bad)}"])
    arms = sorted(a for a in set(logged) if a != control)
    after = {outcome, *(c for c in POST_ASSIGNMENT if c in frame.columns)}
    skip = {arm, propensity, "customer_id", *after,
            *(money.cost_columns() if money else [])}
    if features:
        leaking = [c for c in features if c in after]
        if leaking:
            raise InputError(f"{source}: {', '.join(leaking)} measured after assignment "
                             "cannot be a feature of the outcome model (it would give every "
                             "policy the same value); drop it from the features")
    cols = features or [c for c in frame.columns
                        if c not in skip and frame[c].dtype.kind in "biuf"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: feature column(s) not found: {', '.join(missing)}")
    warnings = trained_on_warnings(policies, frame, outcome, source, arm=arm)
    q = outcome_model(frame[cols].to_numpy(dtype=float), y, logged, seed=seed)
    if money is not None:
        y, q = _in_money(y, q, logged, frame, arms, control, goal, money, source)
    results, chosen = {}, {}
    for spec in policies:
        chosen[spec] = policy_arms(spec, frame, control=control, arms=arms, seed=seed,
                                   money=money)
        results[spec] = evaluate_policy(y, logged, p, chosen[spec], q)
        results[spec]["treated_share"] = float((chosen[spec] != control).mean())
    if (truth is not None and outcome == "churned" and "customer_id" in frame.columns
            and money is None):
        from uplift.simulate import read_truth, true_policy_churn

        table = read_truth(truth)
        for spec, picked in chosen.items():
            results[spec]["true_value"] = true_policy_churn(table, frame["customer_id"],
                                                            picked, control)
    first = policies[0]
    diffs = {f"{s} - {first}": paired_difference(y, logged, p, chosen[s], chosen[first], q)
             for s in policies[1:]}
    return {"outcome": outcome, "goal": goal, "rows": len(frame), "features": len(cols),
            "excluded_after_assignment": sorted(after), "warnings": warnings,
            "money": None if money is None else money.to_json(),
            "policies": results, "differences": diffs}


def effects_folder(path: Path, outcome: str = "churned") -> Path:
    """An effects model folder from ``path``: the folder itself, or within a trained model
    folder (``uplift train`` / the plan's cache) the model of ``outcome`` (``effects_value``
    for value_after, else ``effects_churn``)."""
    if (path / "model.json").exists():
        return path
    sub = path / ("effects_value" if outcome == "value_after" else "effects_churn")
    if (sub / "model.json").exists():
        return sub
    raise InputError(f"{path}: neither an effects model folder (model.json) nor a trained "
                     "model folder (effects_churn/); pass the folder `uplift train` wrote")


def _policy_models(spec: str) -> list[Path]:
    """Model folders behind a policy spec (model:, tree:, or a plan's manifest)."""
    import json

    kind = spec.partition(":")[0]
    if kind in ("model", "tree"):
        return [policy_file(spec)]
    if kind == "plan":
        from uplift.io import manifest_path_for

        manifest = manifest_path_for(policy_file(spec))
        if manifest.exists():
            models = json.loads(manifest.read_text(encoding="utf-8")).get(
                "summary", {}).get("models")
            return [Path(models)] if models else []
    return []


def trained_on_warnings(policies: list[str], frame: pd.DataFrame, outcome: str,
                        source: str, *, arm: str = "arm") -> list[str]:
    """A warning per policy whose models were trained on (most of) the rows of this log:
    their effects fit these very outcomes, so the policy's value here is optimistic."""
    import json

    from uplift.effects.model import EffectsModel

    out = []
    for spec in policies:
        for folder in _policy_models(spec):
            share = None
            stamp = folder / "fingerprint.json"
            if stamp.exists():
                data = Path(json.loads(stamp.read_text(encoding="utf-8")).get("data", ""))
                if data.is_dir() and Path(source).resolve().parent == data.resolve():
                    share = 1.0
            if share is None and "customer_id" in frame.columns:
                try:
                    model = EffectsModel.load(effects_folder(folder, outcome))
                except UpliftError:
                    continue
                share = model.trained_on_share(frame["customer_id"], frame[arm], frame[outcome])
            if share is not None and share >= TRAINED_ON_SHARE:
                out.append(f"policy {spec!r}: its models were trained on this log ({share:.0%} "
                           "of its rows): the estimate is optimistic, evaluate it on a "
                           "campaign the models never saw")
    return out



def _in_money(y: np.ndarray, q: pd.DataFrame, logged: np.ndarray, frame: pd.DataFrame,
              arms: list[str], control: str, goal: str, money: Money, source: str
              ) -> tuple[np.ndarray, pd.DataFrame]:
    """Outcomes and outcome-model predictions as net value per customer (currency)."""
    if goal not in ("increase", "decrease"):
        raise InputError(f"goal must be 'increase' or 'decrease', not {goal!r}")
    binary = bool(np.isin(y, [0, 1]).all())

    def good(values: np.ndarray) -> np.ndarray:
        if goal == "increase":
            return values
        return 1 - values if binary else -values

    costs = cost_matrix(money, frame, arms, source=source)
    net_y = money.value * good(y) - logged_cost(costs, arms, logged)
    net_q = pd.DataFrame({a: money.value * good(q[a].to_numpy()) - (
        costs[:, arms.index(a)] if a in arms else 0.0) for a in q.columns})
    return net_y, net_q
