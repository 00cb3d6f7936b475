"""Offline policy evaluation on a logged randomised campaign.

Given rows with the logged arm ``a_i``, outcome ``y_i``, the logged probability ``p_i`` of that
arm, and a candidate policy's arm ``pi(x_i)``:

* IPW: ``mean(w_i y_i)`` with ``w_i = 1[a_i = pi_i] / p_i``;
* self-normalised IPW: ``sum(w_i y_i) / sum(w_i)``;
* direct method (DM): ``mean(q(x_i, pi_i))`` with ``q`` an outcome model per arm (cross-fitted
  LightGBM, see :func:`outcome_model`);
* doubly robust: ``mean(q(x_i, pi_i) + w_i (y_i - q(x_i, a_i)))``.

Intervals are normal with standard errors from the per-row influence terms (for SNIPW the
linearised ``w_i (y_i - V) / mean(w)``). Paired differences between two policies use the
difference of their per-row terms, so shared noise cancels. Effective sample size
``(sum w)^2 / sum w^2`` and the share of rows whose logged arm matches the policy describe the
overlap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from uplift.errors import InputError


def _interval(terms: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    value = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(len(terms)))
    z = stats.norm.ppf(1 - alpha / 2)
    return value, se, value - z * se, value + z * se


def per_row_terms(y: np.ndarray, logged: np.ndarray, propensity: np.ndarray,
                  policy: np.ndarray, q: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Per-row contributions of each estimator (their means are the estimates)."""
    w = (logged == policy) / propensity
    terms = {"ipw": w * y}
    snipw = float((w * y).sum() / max(w.sum(), 1e-12))
    terms["snipw"] = snipw + w * (y - snipw) / max(w.mean(), 1e-12)
    if q is not None:
        q_pi = q.to_numpy()[np.arange(len(y)), q.columns.get_indexer(policy)]
        q_logged = q.to_numpy()[np.arange(len(y)), q.columns.get_indexer(logged)]
        terms["dm"] = q_pi
        terms["dr"] = q_pi + w * (y - q_logged)
    return terms


def evaluate_policy(y: np.ndarray, logged: np.ndarray, propensity: np.ndarray,
                    policy: np.ndarray, q: pd.DataFrame | None = None, alpha: float = 0.05
                    ) -> dict:
    """Estimates with intervals, effective sample size and overlap for one policy."""
    if np.any(~np.isfinite(propensity)) or np.any(propensity <= 0) or np.any(propensity > 1):
        raise InputError("propensities must be in (0, 1] for every logged row")
    if q is not None:
        unknown = sorted(set(policy) - set(q.columns))
        if unknown:
            raise InputError(f"policy uses arm(s) {', '.join(unknown)} absent from the log")
    w = (logged == policy) / propensity
    out = {"match_share": float((logged == policy).mean()),
           "effective_sample_size": float(w.sum() ** 2 / max((w**2).sum(), 1e-12)),
           "max_weight": float(w.max()), "treated_share": None}
    for name, terms in per_row_terms(y, logged, propensity, policy, q).items():
        value, se, low, high = _interval(terms, alpha)
        out[name] = {"value": value, "se": se, "low": low, "high": high}
    return out


def paired_difference(y: np.ndarray, logged: np.ndarray, propensity: np.ndarray,
                      first: np.ndarray, second: np.ndarray, q: pd.DataFrame | None,
                      alpha: float = 0.05) -> dict:
    """Estimated value of ``first`` minus ``second``, per estimator, with paired intervals."""
    a = per_row_terms(y, logged, propensity, first, q)
    b = per_row_terms(y, logged, propensity, second, q)
    out = {}
    for name in a:
        value, se, low, high = _interval(a[name] - b[name], alpha)
        out[name] = {"value": value, "se": se, "low": low, "high": high}
    return out


def outcome_model(X: np.ndarray, y: np.ndarray, logged: np.ndarray, *, folds: int = 2,
                  seed: int = 0, threads: int = 1) -> pd.DataFrame:
    """Cross-fitted predicted outcome for every row under every arm (columns = arms); with
    no feature columns, each arm's mean outcome on the other folds."""
    from lightgbm import LGBMRegressor

    arms = sorted(set(logged))
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    q = pd.DataFrame(0.0, index=range(len(y)), columns=arms)
    for k in range(folds):
        train, test = fold != k, fold == k
        for arm in arms:
            rows = train & (logged == arm)
            if rows.sum() < 20 or X.shape[1] == 0:
                q.loc[test, arm] = float(y[rows].mean()) if rows.any() else float(y.mean())
                continue
            model = LGBMRegressor(n_estimators=150, learning_rate=0.05, num_leaves=15,
                                  min_child_samples=50, n_jobs=threads, random_state=seed,
                                  verbose=-1)
            model.fit(X[rows], y[rows])
            q.loc[test, arm] = model.predict(X[test])
    return q
