"""Validation figures for a churn model: discrimination, calibration, lift, tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-frequency bins: sum of |observed - predicted| weighted by bin size."""
    table = calibration_table(y, p, bins)
    return float((table["count"] * (table["observed"] - table["predicted"]).abs()).sum()
                 / table["count"].sum())


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-frequency bins of predicted risk: count, mean predicted, observed churn rate."""
    frame = pd.DataFrame({"y": y, "p": p})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(count=("y", "size"), predicted=("p", "mean"),
                                   observed=("y", "mean")).reset_index()
    return out


def decile_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Deciles by risk (1 = riskiest): churn rate, lift over the base rate, cumulative capture."""
    frame = pd.DataFrame({"y": y, "p": p})
    frame["decile"] = 10 - pd.qcut(frame["p"].rank(method="first"), 10, labels=False)
    base = frame["y"].mean()
    out = frame.groupby("decile").agg(count=("y", "size"), churners=("y", "sum"),
                                      churn_rate=("y", "mean")).reset_index()
    out["lift"] = out["churn_rate"] / base if base > 0 else np.nan
    out["capture"] = out["churners"].cumsum() / max(frame["y"].sum(), 1)
    return out


def tier_table(y: np.ndarray, tiers: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"y": y, "tier": tiers})
    return frame.groupby("tier").agg(count=("y", "size"),
                                     churn_rate=("y", "mean")).reset_index()


def churn_report(y: np.ndarray, p: np.ndarray, tiers: np.ndarray | None = None) -> dict:
    """All validation figures as plain JSON-ready numbers."""
    deciles = decile_table(y, p)
    report = {
        "rows": int(len(y)),
        "churn_rate": float(np.mean(y)),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_precision": float(deciles.loc[deciles["decile"] == 1, "churn_rate"].iloc[0]),
        "calibration": calibration_table(y, p).to_dict(orient="records"),
        "deciles": deciles.to_dict(orient="records"),
    }
    if tiers is not None:
        report["tiers"] = tier_table(y, tiers).to_dict(orient="records")
    return report
