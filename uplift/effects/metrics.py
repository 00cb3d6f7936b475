"""Uplift metrics per offer (each offer against control only) and policy value by IPW.

Qini coefficient, AUUC and uplift@k come from scikit-uplift (binary treatment: rows of one
offer vs control). Scores passed in are *benefits* (higher = better to treat): for churn, the
negative predicted change in churn probability, with the outcome flipped to "retained", so every
metric reads "higher is better".
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def _sklift():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklift import metrics
    return metrics


def _ranked_cumsums(y: np.ndarray, benefit: np.ndarray, treated: np.ndarray) -> tuple:
    """Rows by decreasing benefit: outcomes, treated flags, and cumulative counts and outcome
    sums of treated and control rows (the pieces of Qini and uplift curves)."""
    order = np.argsort(-np.asarray(benefit, float), kind="stable")
    y, t = np.asarray(y, float)[order], np.asarray(treated)[order].astype(bool)
    return (y, t, np.cumsum(t), np.cumsum(~t), np.cumsum(np.where(t, y, 0.0)),
            np.cumsum(np.where(t, 0.0, y)))


def _continuous_metrics(y: np.ndarray, benefit: np.ndarray, treated: np.ndarray, k: float
                        ) -> dict[str, float]:
    """Qini and uplift curve areas above random, per customer, for a continuous outcome.

    scikit-uplift's scores need a binary outcome. Here ``qini`` is the mean gap between the
    Qini curve (incremental outcome of the targeted share) and the random line, divided by the
    number of rows; ``auuc`` the same for the uplift curve; both in outcome units per customer.
    """
    y, t, n_t, n_c, y_t, y_c = _ranked_cumsums(y, benefit, treated)
    qini = y_t - y_c * n_t / np.maximum(n_c, 1)
    uplift = (y_t / np.maximum(n_t, 1) - y_c / np.maximum(n_c, 1)) * (n_t + n_c)
    share = np.arange(1, len(y) + 1) / len(y)
    top = max(1, int(round(k * len(y))))
    head_t, head_c = t[:top], ~t[:top]
    at_k = (y[:top][head_t].mean() if head_t.any() else 0.0) - (
        y[:top][head_c].mean() if head_c.any() else 0.0)
    return {"qini": float(np.mean(qini - share * qini[-1]) / len(y)),
            "auuc": float(np.mean(uplift - share * uplift[-1]) / len(y)),
            "uplift_at_30": float(at_k)}


def arm_metrics(y: np.ndarray, benefit: np.ndarray, treated: np.ndarray, k: float = 0.3
                ) -> dict[str, float]:
    """Qini coefficient, AUUC and uplift@k for one offer vs control (arrays on those rows).

    Binary outcomes use scikit-uplift; continuous ones :func:`_continuous_metrics`.
    """
    if not np.isin(y, [0, 1]).all():
        return _continuous_metrics(np.asarray(y, float), np.asarray(benefit, float),
                                   np.asarray(treated), k)
    m = _sklift()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "qini": float(m.qini_auc_score(y, benefit, treated)),
            "auuc": float(m.uplift_auc_score(y, benefit, treated)),
            "uplift_at_30": float(m.uplift_at_k(y, benefit, treated, strategy="overall", k=k)),
        }


def bootstrap_arm_metrics(y: np.ndarray, benefit: np.ndarray, treated: np.ndarray, *,
                          n_boot: int = 200, seed: int = 0, level: float = 0.95
                          ) -> dict[str, tuple[float, float, float]]:
    """Each metric with a percentile bootstrap interval: {name: (value, low, high)}."""
    point = arm_metrics(y, benefit, treated)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in point}
    n = len(y)
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if treated[idx].min() == treated[idx].max():
            continue
        for key, value in arm_metrics(y[idx], benefit[idx], treated[idx]).items():
            draws[key].append(value)
    alpha = (1 - level) / 2
    return {k: (v, float(np.quantile(draws[k], alpha)), float(np.quantile(draws[k], 1 - alpha)))
            for k, v in point.items()}


def snipw_value(outcome: np.ndarray, logged_arm: np.ndarray, policy_arm: np.ndarray,
                propensity: np.ndarray) -> float:
    """Self-normalised IPW estimate of the mean outcome had every row followed the policy."""
    match = (logged_arm == policy_arm).astype(float)
    weights = match / propensity
    total = weights.sum()
    return float((weights * outcome).sum() / total) if total > 0 else float("nan")


def qini_points(y: np.ndarray, benefit: np.ndarray, treated: np.ndarray, points: int = 101
                ) -> pd.DataFrame:
    """Qini curve (share targeted, incremental outcomes) for plotting, with the random line."""
    if not np.isin(y, [0, 1]).all():
        _, _, n_t, n_c, y_t, y_c = _ranked_cumsums(y, benefit, treated)
        q = y_t - y_c * n_t / np.maximum(n_c, 1)
        x = np.arange(1, len(q) + 1)
    else:
        m = _sklift()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, q = m.qini_curve(y, benefit, treated)
    share = x / max(x[-1], 1)
    grid = np.linspace(0, 1, points)
    curve = np.interp(grid, share, q)
    return pd.DataFrame({"share": grid, "qini": curve, "random": grid * (q[-1] if len(q) else 0)})
