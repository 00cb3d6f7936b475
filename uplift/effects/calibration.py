"""Does each offer's predicted effect carry signal? A held-out calibration test, and the
fallback to coarse effects where it does not.

The allocator ranks customers by predicted gain; where the per-customer differences in an
offer's predicted effect are noise, it picks the most over-estimated customers (winner's
curse), worst for cheap offers. So, per offer, the out-of-fold predictions on the randomised
campaign log are tested with the *best linear predictor* (BLP) of Chernozhukov, Demirer, Duflo
and Fernandez-Val ("Generic machine learning inference on heterogeneous treatment effects in
randomized experiments"): on the rows in the offer's arm or in control, weighted least squares

    Y = a + c * S + D * (b1 + b2 * (S - mean S)) + e

with ``D`` = 1 for the offer's arm, weights ``1 / propensity`` of the row's own arm (which
balances the two arms as a 50/50 trial would), and heteroskedasticity-robust (HC1) standard
errors. ``b1`` estimates the offer's average effect and ``b2`` the slope on the prediction: 1
when the predictions are calibrated, 0 when they carry no signal. Each of the two predicted
effects the gain is built from is tested on its own outcome:

* churn: ``Y = -churned`` (plus the churn risk at assignment when the table has it, a baseline
  that does not depend on the arm and only removes variance), ``S = -delta_churn``
  (probability);
* value: ``Y = value_after``, ``S = delta_value`` (currency).

* gain (what the allocator ranks by): ``Y = -churned * customer value + value_after`` (plus
  the baseline ``churn risk * customer value``), ``S = -delta_churn * customer value +
  delta_value`` (currency).

Decision per offer and effect: keep the per-customer predictions when the slope of the effect
and the slope of the offer's money gain are both positive at one-sided 5% (``b2 - 1.645 * se >
0``; an effect can carry signal while the gain built from it does not, e.g. a small effect on
churn swamped by noise in the predicted value effect of large accounts); otherwise replace each
customer's predicted effect by the average prediction of the customer's *effect group*
(:func:`effect_groups`): the churn tier and, at amber or above, the top churn reason ("red |
activity fading"). An offer acts on the churn hazard, so its effect grows with the risk, and
which offer helps depends on why a customer leaves; averaging within such groups keeps that
coarse, well-estimated part of the differences and drops the per-customer noise. (On the
simulated bank the bank's own ``segment`` column, used before, carried almost none of it: the
averaged gains correlated 0.13 / 0.19 / -0.04 with the true ones for the coupon, the fee
waiver and the health report, against 0.71 / 0.74 / 0.29 by tier and reason.) A group with
fewer than :data:`MIN_GROUP` scored customers eligible for the offer takes its tier's average;
a tier below that, the offer's. The groups' averages are tested the same way (each logged
row's prediction replaced by its group's mean): a group gets the mean prediction of the
customers eligible for the offer, corrected by the predictions' bias measured on the held-out
rows (``b1`` minus their mean prediction, :attr:`OfferEvidence.bias`), plus its average's
distance from that mean times the group-level slope, shrunk by its standard error and clipped
to [0, 1] (:attr:`OfferEvidence.group_scale`). So groups whose differences the held-out rows
do not bear out collapse to one corrected average, over-dispersed ones shrink, and an offer
only some customers may get (an advisor visit for large accounts) keeps the level of those
customers rather than the whole campaign's. Gains still vary with each customer's value and
cost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from uplift.config import CustomerValue

Z_ONE_SIDED_95 = 1.645
MIN_ROWS = 50
OOF_CHURN, OOF_VALUE, BASELINE = "oof_churn_", "oof_value_", "baseline_churn_risk"
EFFECT_GROUP = "effect_group"     # the backtest table's column of each row's effect group
PER_CUSTOMER, GROUP = "per-customer", "group average"
#: fewest customers whose average effect stands for their group (else the tier's, then the
#: offer's)
MIN_GROUP = 30
#: the tier without reasons: its customers form one group whatever their reasons
LOWEST_TIER = "green"
ALL = ""                         # the key of the offer's average in a group-means mapping


@dataclass(frozen=True)
class OfferEvidence:
    """The BLP test of one offer's predicted effect on one outcome (churn: probability;
    value: currency per customer)."""

    offer: str
    outcome: str                 # "churn" or "value"
    treated_rows: int
    control_rows: int
    average_effect: float        # b1
    average_effect_se: float
    slope: float                 # b2 (1 = calibrated, 0 = no signal)
    slope_se: float
    use: str                     # PER_CUSTOMER or GROUP
    gain_slope: float = float("nan")       # slope of the offer's money gain (when tested)
    gain_slope_se: float = float("nan")
    group_slope: float = float("nan")      # slope on the effect groups' average predictions
    group_slope_se: float = float("nan")
    mean_prediction: float = float("nan")  # the predictions' (weighted) mean on the same rows

    @property
    def bias(self) -> float:
        """How far the predictions' mean ran from the measured average effect on the held-out
        rows (``b1 - mean prediction``); 0 when either was not measured."""
        gap = self.average_effect - self.mean_prediction
        return float(gap) if np.isfinite(gap) else 0.0

    @property
    def group_scale(self) -> float:
        """How much of the groups' spread around the offer's average a plan keeps: the
        group-level slope ``b`` shrunk by its noise, ``b * (1 - (se / b)**2)`` (0 when ``b``
        is within one standard error of 0 or below), clipped to [0, 1]; 1 when it was not
        measured."""
        b, se = self.group_slope, self.group_slope_se
        if not np.isfinite(b):
            return 1.0
        if b <= 0 or not np.isfinite(se) or se >= b:
            return 0.0
        return float(np.clip(b * (1.0 - (se / b) ** 2), 0.0, 1.0))

    @property
    def why(self) -> str:
        """One line a planner can read."""
        test = f"{self.outcome} slope {self.slope:.2f} +- {self.slope_se:.2f}"
        if self.use == PER_CUSTOMER:
            return f"{test}: held-out rows confirm the per-customer differences"
        return self._why_not(test) + self._groups_used()

    def _groups_used(self) -> str:
        if not np.isfinite(self.group_slope):
            return ""
        return (f"; the groups' averages have slope {self.group_slope:.2f} +- "
                f"{self.group_slope_se:.2f} on the same rows: {self.group_scale:.0%} of their "
                "spread is kept around the eligible customers' average, corrected by the "
                f"predictions' measured bias ({self.bias:+.4g})")

    def _why_not(self, test: str) -> str:
        if self.slope - Z_ONE_SIDED_95 * self.slope_se > 0:
            return (f"{test} passes, but the gain slope {self.gain_slope:.2f} +- "
                    f"{self.gain_slope_se:.2f} is not above 0 at 5%: the predicted gains "
                    "rank customers by noise")
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


def offer_evidence(table: pd.DataFrame, offers: list[str] | None = None, *,
                   outcome: str = "churn", value: CustomerValue | None = None,
                   control: str = "control", z: float = Z_ONE_SIDED_95
                   ) -> dict[str, OfferEvidence]:
    """The BLP test of each offer's predicted effect on ``outcome`` ("churn", "value" or
    "gain", which needs the customer ``value`` formula) on ``table``: the campaign log with
    out-of-fold effects (``uplift.evaluate.backtest.backtest_table``: arm, propensity,
    churned, value_after, aum, products_held, ``oof_churn_<offer>``, ``oof_value_<offer>``,
    optionally the baseline churn risk). Offers without the needed column are left out."""
    if offers is None:
        offers = [c.removeprefix(OOF_CHURN) for c in table.columns if c.startswith(OOF_CHURN)]
    need = OOF_VALUE if outcome == "value" else OOF_CHURN
    offers = [o for o in offers if need + o in table.columns]
    worth = np.ones(len(table))
    if outcome == "gain":
        aum = table["aum"].to_numpy(float) if "aum" in table else np.zeros(len(table))
        products = (table["products_held"].to_numpy(float) if "products_held" in table
                    else np.zeros(len(table)))
        worth = (value or CustomerValue()).value(aum, products)
    y = np.zeros(len(table))
    if outcome in ("churn", "gain"):
        y -= table["churned"].to_numpy(float) * worth
        if BASELINE in table.columns:
            y += table[BASELINE].to_numpy(float) * worth
    if outcome in ("value", "gain"):
        y += table["value_after"].to_numpy(float)
    arm = table["arm"].astype(str).to_numpy()
    weight = 1.0 / np.clip(table["propensity"].to_numpy(float), 1e-3, 1.0)
    out: dict[str, OfferEvidence] = {}
    for offer in offers:
        score = np.zeros(len(table))
        if outcome in ("churn", "gain"):
            score -= table[OOF_CHURN + offer].to_numpy(float) * worth
        if outcome in ("value", "gain") and OOF_VALUE + offer in table.columns:
            score += table[OOF_VALUE + offer].to_numpy(float)
        sign = -1.0 if outcome == "churn" else 1.0
        rows = (arm == offer) | (arm == control)
        n_t, n_c = int((arm == offer).sum()), int((arm == control).sum())
        if n_t < MIN_ROWS or n_c < MIN_ROWS:
            out[offer] = OfferEvidence(offer, outcome, n_t, n_c, float("nan"), float("nan"),
                                       float("nan"), float("nan"), GROUP)
            continue
        b1, se1, b2, se2 = blp_test(y[rows], arm[rows] == offer, score[rows], weight[rows])
        use = PER_CUSTOMER if b2 - z * se2 > 0 else GROUP
        mean = sign * float(np.average(score[rows], weights=weight[rows]))
        out[offer] = OfferEvidence(offer, outcome, n_t, n_c, sign * b1, se1, b2, se2, use,
                                   mean_prediction=mean)
    return out


def all_evidence(table: pd.DataFrame, offers: list[str] | None = None,
                 value: CustomerValue | None = None) -> dict[str, dict[str, OfferEvidence]]:
    """{"churn": {offer: evidence}, "value": {offer: evidence}}: each effect's own test, its
    ``use`` downgraded to GROUP when the offer's money-gain test fails, and, when ``table``
    has the rows' effect groups, the same test of the groups' average predictions (each row's
    prediction replaced by its group's mean over the table): the slope a plan scales the
    groups' spread by (:attr:`OfferEvidence.group_scale`)."""
    from dataclasses import replace

    gain = offer_evidence(table, offers, outcome="gain", value=value)
    grouped = {}
    if EFFECT_GROUP in table.columns:
        averaged = table.copy()
        labels = table[EFFECT_GROUP].astype(str).to_numpy()
        for column in [c for c in table.columns if c.startswith((OOF_CHURN, OOF_VALUE))]:
            averaged[column] = table[column].groupby(labels).transform("mean").to_numpy()
        grouped = {outcome: offer_evidence(averaged, offers, outcome=outcome)
                   for outcome in ("churn", "value")}
    out = {}
    for outcome in ("churn", "value"):
        out[outcome] = {}
        for offer, e in offer_evidence(table, offers, outcome=outcome).items():
            g = gain.get(offer)
            if g is not None:
                e = replace(e, gain_slope=g.slope, gain_slope_se=g.slope_se,
                            use=e.use if g.use == PER_CUSTOMER else GROUP)
            a = grouped.get(outcome, {}).get(offer)
            if a is not None and e.use != PER_CUSTOMER:
                e = replace(e, group_slope=a.slope, group_slope_se=a.slope_se)
            out[outcome][offer] = e
    return out


def describe(evidence: dict[str, dict[str, OfferEvidence]]) -> list[str]:
    """One line per offer and effect: what the plan uses and why."""
    return [f"  {e.offer}: {e.outcome} effect {e.use} ({e.why})"
            for per_offer in evidence.values() for e in per_offer.values()]


def evidence_rows(evidence: dict[str, dict[str, OfferEvidence]]) -> list[dict]:
    """The evidence as JSON-ready rows (one per offer and effect)."""
    return [e.to_dict() for per_offer in evidence.values() for e in per_offer.values()]


def effect_groups(tiers: np.ndarray, reasons: np.ndarray) -> np.ndarray:
    """The effect group of each customer: its churn tier, and above the lowest tier also its
    top churn reason (``"red|balance falling fast"``); no reason: the tier alone."""
    tiers = pd.Series(tiers, dtype=object).astype(str).to_numpy(dtype=object)
    reasons = pd.Series(reasons, dtype=object).fillna("").astype(str).to_numpy(dtype=object)
    explained = (tiers != LOWEST_TIER) & (reasons != "")
    return np.where(explained, tiers + "|" + reasons, tiers)


def _tier_of(group: str) -> str:
    return group.split("|", 1)[0]


def _whole_tier(group: str) -> str:
    """The key of the mean over every group of ``group``'s tier."""
    return _tier_of(group) + "|*"


def coarse_effects(evidence: dict[str, OfferEvidence], effects: pd.DataFrame,
                   groups: np.ndarray | None,
                   means: dict[str, dict[str, float]] | None = None, *,
                   eligible: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``effects`` (columns ``effect_<offer>``, rows = customers) with the offers that failed
    the test replaced by the mean prediction of each customer's group (``groups``, from
    :func:`effect_groups`; the offer mean without groups) over the customers ``eligible`` for
    the offer (offer -> boolean per row; everyone without). Other columns are kept. ``means``
    (offer -> group -> mean, from :func:`group_means`) gives the means when ``effects`` is
    one batch of the customers."""
    out = effects.copy()
    labels = _group_labels(groups, len(out))
    if means is None:
        means = group_means(group_sums(evidence, effects, groups, eligible))
    codes, uniques = pd.factorize(labels)
    for offer, e in evidence.items():
        col = f"effect_{offer}"
        if e.use == PER_CUSTOMER or col not in out.columns or not len(out):
            continue
        known = means[offer]
        mean_of = np.array([known.get(g, known.get(_whole_tier(g), known[ALL]))
                            for g in uniques], dtype=float)
        # the groups' spread around the eligible customers' mean prediction, scaled by their
        # held-out slope; the mean moved by the predictions' bias measured on held-out rows
        level = known[ALL] + (e.bias if np.isfinite(e.group_slope) else 0.0)
        out[col] = level + e.group_scale * (mean_of[codes] - known[ALL])
    return out


def _group_labels(groups: np.ndarray | None, n: int) -> np.ndarray:
    return (np.full(n, ALL, dtype=object) if groups is None
            else pd.Series(groups).astype(str).to_numpy(dtype=object))


def group_sums(evidence: dict[str, OfferEvidence], effects: pd.DataFrame,
               groups: np.ndarray | None, eligible: dict[str, np.ndarray] | None = None
               ) -> pd.DataFrame:
    """Per offer that failed the test and group: the sum and count of predicted effects over
    the customers ``eligible`` for the offer (offer -> boolean per row; everyone without: an
    advisor visit's average should not mix in the small accounts that cannot get one)
    (columns offer, group, total, count); sums of batches add up to the whole's."""
    labels = _group_labels(groups, len(effects))
    parts = []
    for offer, e in evidence.items():
        col = f"effect_{offer}"
        if e.use == PER_CUSTOMER or col not in effects.columns:
            continue
        rows = (np.ones(len(effects), dtype=bool) if eligible is None or offer not in eligible
                else np.asarray(eligible[offer], dtype=bool))
        grouped = pd.DataFrame({"group": labels[rows],
                                "total": effects[col].to_numpy(float)[rows]}
                               ).groupby("group", sort=True)["total"].agg(["sum", "count"])
        parts.append(pd.DataFrame({"offer": offer, "group": grouped.index.astype(str),
                                   "total": grouped["sum"].to_numpy(float),
                                   "count": grouped["count"].to_numpy(np.int64)}))
    return (pd.concat(parts, ignore_index=True) if parts else
            pd.DataFrame({"offer": [], "group": [], "total": [], "count": []}))


def group_means(sums: pd.DataFrame, min_group: int = MIN_GROUP
                ) -> dict[str, dict[str, float]]:
    """offer -> group -> mean predicted effect, from :func:`group_sums` rows (of one table,
    or of several batches: rows of the same offer and group are added). A group of fewer than
    ``min_group`` customers gets its tier's mean (every group of the tier together), a tier
    below that the offer's; the offer's mean is also under the key :data:`ALL`, a tier's
    under ``"<tier>|*"``."""
    grouped = sums.groupby(["offer", "group"], sort=True)[["total", "count"]].sum()
    means: dict[str, dict[str, float]] = {}
    for offer, rows in grouped.groupby(level="offer", sort=True):
        rows = rows.droplevel("offer")
        overall = float(rows["total"].sum()) / max(float(rows["count"].sum()), 1.0)
        tiers = rows.groupby([_tier_of(str(g)) for g in rows.index])[["total", "count"]].sum()
        tier_mean = {str(t): (float(r["total"]) / float(r["count"])
                              if r["count"] >= min_group else overall)
                     for t, r in tiers.iterrows()}
        out = {ALL: overall, **{f"{t}|*": m for t, m in tier_mean.items()}}
        for group, r in rows.iterrows():
            out[str(group)] = (float(r["total"]) / float(r["count"]) if r["count"] >= min_group
                               else tier_mean[_tier_of(str(group))])
        means[str(offer)] = out
    return means


def campaign_group_means(table: pd.DataFrame, evidence: dict[str, dict[str, OfferEvidence]],
                         eligible: dict[str, np.ndarray] | None = None
                         ) -> dict[str, dict[str, dict[str, float]]]:
    """outcome -> offer -> effect group -> mean out-of-fold predicted effect over the past
    campaign's customers (``table``: the backtest table, with ``effect_group`` when training
    wrote it, else one group; ``eligible`` as in :func:`group_sums`), for the offers without
    per-customer signal. What a single customer's score uses when there is no scored
    population to average over (the online service)."""
    groups = table[EFFECT_GROUP].to_numpy() if EFFECT_GROUP in table.columns else None
    out = {}
    for outcome, prefix in (("churn", OOF_CHURN), ("value", OOF_VALUE)):
        effects = pd.DataFrame({f"effect_{c.removeprefix(prefix)}": table[c].to_numpy(float)
                                for c in table.columns if c.startswith(prefix)})
        out[outcome] = group_means(group_sums(evidence.get(outcome, {}), effects, groups,
                                              eligible))
    return out


EVIDENCE_FILE = "calibration.json"


def evidence_for_models(folder, value: CustomerValue | None = None
                        ) -> dict[str, dict[str, OfferEvidence]] | None:
    """The tests of the models trained in ``folder`` (a path): ``calibration.json`` when
    training wrote it, else computed from its ``backtest.parquet``; None when it has neither
    (then every offer keeps its per-customer predictions)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    if (folder / EVIDENCE_FILE).exists():
        rows = json.loads((folder / EVIDENCE_FILE).read_text())
        fields = set(OfferEvidence.__dataclass_fields__)
        out: dict[str, dict[str, OfferEvidence]] = {"churn": {}, "value": {}}
        try:
            for r in rows:
                e = OfferEvidence(**{k: (float("nan") if v is None else v)
                                     for k, v in r.items() if k in fields})
                out[e.outcome][e.offer] = e
            return out
        except (KeyError, TypeError):
            pass       # written by another version: test again from the backtest table
    if (folder / "backtest.parquet").exists():
        return all_evidence(pd.read_parquet(folder / "backtest.parquet"), value=value)
    return None
