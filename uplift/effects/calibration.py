"""Does each offer's predicted effect carry signal? A held-out calibration test, and the
fallback to coarse effects where it does not.

The allocator ranks customers by predicted gain; where the per-customer differences in an
offer's predicted effect are noise, it picks the most over-estimated customers (winner's
curse), worst for cheap offers. So, per offer, the out-of-fold predictions on the randomised
campaign log are tested with the *best linear predictor* (BLP) of Chernozhukov, Demirer, Duflo
and Fernandez-Val ("Generic machine learning inference on heterogeneous treatment effects in
randomized experiments"): on the rows in the offer's arm or in control, weighted least squares

    Y = a + c * S + D * (b1 + b2 * (S - mean S)) + e

with ``Y`` the realised value of a customer (``-churned * customer value + value_after``, minus
the baseline ``-churn risk * customer value`` when the table has it; currency), ``S`` the
predicted value effect before cost (``-delta_churn * customer value + delta_value``; currency),
``D`` = 1 for the offer's arm, weights ``1 / propensity`` of the row's own arm (which balances
the two arms as a 50/50 trial would), and heteroskedasticity-robust (HC1) standard errors.
``b1`` estimates the offer's average effect and ``b2`` the slope on the prediction: 1 when the
predictions are calibrated, 0 when they carry no signal.

Decision per offer: keep the per-customer predictions when the slope is positive at one-sided
5% (``b2 - 1.645 * se > 0``); otherwise replace each customer's predicted effects (on churn and
on value) by the average prediction of the customer's segment (a coarse, well-estimated effect;
the offer average when no segment column is given). Gains still vary with each customer's value
and cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from uplift.config import CustomerValue

Z_ONE_SIDED_95 = 1.645
MIN_ROWS = 50
OOF_CHURN, OOF_VALUE, BASELINE = "oof_churn_", "oof_value_", "baseline_churn_risk"
PER_CUSTOMER, SEGMENT = "per-customer", "segment average"


@dataclass(frozen=True)
class OfferEvidence:
    """The BLP test of one offer (money in currency per customer)."""

    offer: str
    treated_rows: int
    control_rows: int
    average_effect: float        # b1
    average_effect_se: float
    slope: float                 # b2 (1 = calibrated, 0 = no signal)
    slope_se: float
    use: str                     # PER_CUSTOMER or SEGMENT

    @property
    def why(self) -> str:
        """One line a planner can read."""
        test = f"slope {self.slope:.2f} +- {self.slope_se:.2f} (SE)"
        if self.use == PER_CUSTOMER:
            return f"{test}: held-out rows confirm the per-customer differences"
        if self.treated_rows < MIN_ROWS or self.control_rows < MIN_ROWS:
            return (f"too few held-out rows ({self.treated_rows} offered, {self.control_rows} "
                    "control) to test the per-customer differences")
        return f"{test}: not above 0 at 5%, the per-customer differences look like noise"

    def to_dict(self) -> dict:
        """Fields (NaN as None, for JSON) and the ``why`` line."""
        out = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
               for k, v in asdict(self).items()}
        return {**out, "why": self.why}


def blp_test(y: np.ndarray, treated: np.ndarray, score: np.ndarray, weight: np.ndarray
             ) -> tuple[float, float, float, float]:
    """(b1, se_b1, b2, se_b2) of the weighted BLP regression above (HC1 standard errors)."""
    y, score, weight = (np.asarray(a, dtype=float) for a in (y, score, weight))
    d = np.asarray(treated, dtype=float)
    centred = score - np.average(score, weights=weight)
    x = np.column_stack([np.ones_like(y), score, d, d * centred])
    xw = x * weight[:, None]
    bread = np.linalg.pinv(x.T @ xw)
    beta = bread @ (xw.T @ y)
    resid = y - x @ beta
    meat = (xw * resid[:, None]).T @ (xw * resid[:, None])
    n, k = x.shape
    cov = bread @ meat @ bread * n / max(n - k, 1)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return float(beta[2]), float(se[2]), float(beta[3]), float(se[3])


def offer_evidence(table: pd.DataFrame, value: CustomerValue, offers: list[str] | None = None,
                   *, control: str = "control", z: float = Z_ONE_SIDED_95
                   ) -> dict[str, OfferEvidence]:
    """The BLP test of each offer on ``table``: the campaign log with out-of-fold effects
    (``uplift.evaluate.backtest.backtest_table``: arm, propensity, churned, value_after,
    aum, products_held, ``oof_churn_<offer>``, optionally ``oof_value_<offer>`` and the
    baseline churn risk)."""
    if offers is None:
        offers = [c.removeprefix(OOF_CHURN) for c in table.columns if c.startswith(OOF_CHURN)]
    aum = table["aum"].to_numpy(float) if "aum" in table else np.zeros(len(table))
    products = (table["products_held"].to_numpy(float) if "products_held" in table
                else np.zeros(len(table)))
    worth = value.value(aum, products)
    y = -table["churned"].to_numpy(float) * worth + table["value_after"].to_numpy(float)
    if BASELINE in table.columns:
        y = y + table[BASELINE].to_numpy(float) * worth
    arm = table["arm"].astype(str).to_numpy()
    weight = 1.0 / np.clip(table["propensity"].to_numpy(float), 1e-3, 1.0)
    out: dict[str, OfferEvidence] = {}
    for offer in offers:
        score = -table[OOF_CHURN + offer].to_numpy(float) * worth
        if OOF_VALUE + offer in table.columns:
            score = score + table[OOF_VALUE + offer].to_numpy(float)
        rows = (arm == offer) | (arm == control)
        n_t, n_c = int((arm == offer).sum()), int((arm == control).sum())
        if n_t < MIN_ROWS or n_c < MIN_ROWS:
            out[offer] = OfferEvidence(offer, n_t, n_c, float("nan"), float("nan"),
                                       float("nan"), float("nan"), SEGMENT)
            continue
        b1, se1, b2, se2 = blp_test(y[rows], arm[rows] == offer, score[rows], weight[rows])
        use = PER_CUSTOMER if b2 - z * se2 > 0 else SEGMENT
        out[offer] = OfferEvidence(offer, n_t, n_c, b1, se1, b2, se2, use)
    return out


def describe(evidence: dict[str, OfferEvidence]) -> list[str]:
    """One line per offer: what the plan uses and why."""
    return [f"  {e.offer}: {e.use} effects ({e.why})" for e in evidence.values()]


def coarse_effects(evidence: dict[str, OfferEvidence], effects: pd.DataFrame,
                   segments: np.ndarray | None) -> pd.DataFrame:
    """``effects`` (columns ``effect_<offer>``, rows = customers) with the offers that failed
    the test replaced by the mean prediction of each customer's segment (the offer mean
    without ``segments``). Other columns are kept."""
    out = effects.copy()
    groups = (np.zeros(len(out), dtype=np.int64) if segments is None
              else pd.factorize(pd.Series(segments).astype(str))[0])
    counts = np.bincount(groups)
    for offer, e in evidence.items():
        col = f"effect_{offer}"
        if e.use == PER_CUSTOMER or col not in out.columns:
            continue
        values = out[col].to_numpy(float)
        means = np.bincount(groups, weights=values) / np.maximum(counts, 1)
        out[col] = means[groups]
    return out


EVIDENCE_FILE = "calibration.json"


def evidence_for_models(folder, value: CustomerValue) -> dict[str, OfferEvidence] | None:
    """The test of the models trained in ``folder`` (a path): ``calibration.json`` when
    training wrote it, else computed from its ``backtest.parquet``; None when it has neither
    (then every offer keeps its per-customer predictions)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    if (folder / EVIDENCE_FILE).exists():
        rows = json.loads((folder / EVIDENCE_FILE).read_text())
        fields = set(OfferEvidence.__dataclass_fields__)
        return {r["offer"]: OfferEvidence(**{k: (float("nan") if v is None else v)
                                             for k, v in r.items() if k in fields})
                for r in rows}
    if (folder / "backtest.parquet").exists():
        return offer_evidence(pd.read_parquet(folder / "backtest.parquet"), value)
    return None
