"""Net value of a targeting policy on a labelled randomised campaign table, in currency.

Each row's realised net value is ``value * good - cost of the arm it received`` (``good``: the
outcome on its good side; see :mod:`uplift.effects.money`). A policy's value per customer is
estimated by self-normalised inverse-propensity weighting over the rows whose logged arm
matches the policy (:mod:`uplift.evaluate.ope`), and reported *relative to treating no one*,
paired row by row so shared noise cancels; the 95% interval is normal with the linearised
standard error. ``total`` is that per-customer value times the rows of the table.

For the customers a policy sends offer ``a`` (the "recommended set") it also gives the
Udacity-style figures, from the rows of that set that were randomised to ``a`` or to control:

* incremental response rate ``IRR = mean(y | a) - mean(y | control)`` (outcome units);
* net incremental revenue ``NIR = value * (sum(good | a) - sum(good | control) * n_a / n_c)
  - sum(cost | a)`` (currency; control scaled to the treated count).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift.effects.money import Money, logged_cost
from uplift.evaluate.ope import paired_difference


def arm_shares(logged: np.ndarray) -> np.ndarray:
    """Each row's arm share in the table: the assignment probability of a uniform design."""
    arms, inverse, counts = np.unique(logged, return_inverse=True, return_counts=True)
    return (counts / len(logged))[inverse]


def policy_net_value(policy: np.ndarray, logged: np.ndarray, good: np.ndarray,
                     costs: np.ndarray, arms: list[str], control: str, money: Money,
                     propensity: np.ndarray, alpha: float = 0.05) -> dict:
    """Net value per customer of ``policy`` minus treating no one (SNIPW), with interval."""
    realised = money.value * good - logged_cost(costs, arms, logged)
    nobody = np.full(len(logged), control, dtype=object)
    diff = paired_difference(realised, logged, propensity, np.asarray(policy, dtype=object),
                             nobody, None, alpha=alpha)["snipw"]
    n = len(logged)
    return {"treated_share": float(np.mean(np.asarray(policy) != control)),
            "net_value_per_customer": diff["value"], "low": diff["low"], "high": diff["high"],
            "se": diff["se"], "total": diff["value"] * n, "total_low": diff["low"] * n,
            "total_high": diff["high"] * n}


def recommended_set_figures(policy: np.ndarray, logged: np.ndarray, y: np.ndarray,
                            good: np.ndarray, costs: np.ndarray, arms: list[str],
                            control: str, money: Money) -> dict[str, dict]:
    """IRR and NIR per offer over the customers the policy sends that offer."""
    out = {}
    for j, arm in enumerate(arms):
        chosen = np.asarray(policy) == arm
        t, c = chosen & (logged == arm), chosen & (logged == control)
        n_t, n_c = int(t.sum()), int(c.sum())
        row: dict = {"recommended": int(chosen.sum()), "rows_offer": n_t, "rows_control": n_c}
        if n_t and n_c:
            row["irr"] = float(y[t].mean() - y[c].mean())
            row["nir"] = float(money.value * (good[t].sum() - good[c].sum() * n_t / n_c)
                               - costs[t, j].sum())
        out[arm] = row
    return out


def net_value_report(model, table: pd.DataFrame, money: Money, *, z: float = 1.0,
                     source: str = "table", alpha: float = 0.05) -> dict:
    """Recommended policy vs everyone-gets-one-offer and no one, in currency (JSON-ready)."""
    from uplift.effects.money import cost_matrix

    logged = table[model.treatment].astype(str).to_numpy()
    y = pd.to_numeric(table[model.outcome], errors="coerce").to_numpy(dtype=float)
    good = model.estimator_.good(y)
    control = str(model.control)
    arms = model.arms
    costs = cost_matrix(money, table, arms, source=source)
    if model.propensity and model.propensity in table.columns:
        propensity = pd.to_numeric(table[model.propensity], errors="coerce").to_numpy(float)
        design = f"logged propensities ({model.propensity!r})"
    else:
        propensity = arm_shares(logged)
        design = "arm shares of this table (assumes uniform randomisation)"
    features = table.drop(columns=[c for c in (model.treatment, model.outcome,
                                               model.propensity) if c and c in table.columns])
    recommended = model.recommend(features, z=z, source=source, money=money)
    policies = {"recommended": recommended,
                **{f"everyone: {a}": np.full(len(table), a, dtype=object) for a in arms}}
    values = {name: policy_net_value(p, logged, good, costs, arms, control, money, propensity,
                                     alpha) for name, p in policies.items()}
    values["no one"] = {"treated_share": 0.0, "net_value_per_customer": 0.0, "low": 0.0,
                        "high": 0.0, "se": 0.0, "total": 0.0, "total_low": 0.0,
                        "total_high": 0.0}
    return {"rows": len(table), "money": money.to_json(), "evidence": z, "design": design,
            "policies": values,
            "recommended_set": recommended_set_figures(recommended, logged, y, good, costs,
                                                       arms, control, money)}
