"""Online features and scores: the batch feature definitions on one customer's own rows.

``uplift features --as-of T`` computes every feature with one DuckDB query over all events
(:func:`uplift.features.build.feature_query`). The service evaluates *the same SQL
expressions* of the registry on the customer's own events, customer row and campaign rows with
NumPy (:mod:`uplift.features.vector`: DuckDB's fixed cost of planning the ~200-column query,
0.1-0.4 s, does not fit an online request), so every per-customer feature equals the batch one;
the parity test checks it to 1e-9. The RFM scores are the one exception: they are quintiles *across
customers* (``cume_dist`` over the whole bank). For them the service keeps the population's
rank inputs as of T (computed with the same query over the whole store when the as-of day
starts, and updated for each customer it re-scores) and computes the customer's quintile
exactly as DuckDB's ``cume_dist`` does: (number of customers ordered at or before them) / N.

The as-of date of an online score is the day after the latest event in the store (the
data's "today", as ``uplift plan`` chooses it): features count events with ``ts < as_of``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.errors import InputError

RANK_INPUTS = {           # rank feature -> (inner column, descending order)
    "rfm_recency_score": ("txn_days_since_last", True),
    "rfm_frequency_score": ("txn_count_365d_all", False),
    "rfm_monetary_score": ("txn_amount_365d_all", False),
}
HELPERS = ("txn_count_365d_all", "txn_amount_365d_all")


def rank_score(values: np.ndarray, own: float, *, descending: bool) -> float:
    """DuckDB's ``least(5, greatest(1, ceil(5 * cume_dist() OVER (ORDER BY x))))`` for one
    customer whose value is ``own`` among the population ``values`` (which includes it)."""
    at_or_before = np.count_nonzero(values >= own) if descending else \
        np.count_nonzero(values <= own)
    cume = at_or_before / len(values)
    return float(min(5.0, max(1.0, math.ceil(5 * cume))))


@dataclass
class Reference:
    """The population's rank inputs as of one day (one entry per customer)."""

    as_of: str
    ids: dict[str, int]
    values: dict[str, np.ndarray]      # inner column -> values aligned with ids

    def update_many(self, rows: pd.DataFrame) -> None:
        """Replace the rank inputs of the customers of ``rows`` after re-scoring them."""
        index = [self.ids.get(str(c), -1) for c in rows["customer_id"]]
        keep = np.array([i >= 0 for i in index], bool)
        at = np.array(index, np.int64)[keep]
        for col in self.values:
            self.values[col][at] = rows[col].to_numpy(float)[keep]


class FeatureEngine:
    """Features of a few customers (the registry's SQL evaluated with NumPy on their own rows,
    :mod:`uplift.features.vector`) or of everyone (the batch DuckDB query), as of a day."""

    def __init__(self, *, with_campaign: bool):
        from uplift.features.vector import VectorFeatures

        self.with_campaign = with_campaign
        self.vector = VectorFeatures()

    def query(self, as_of: str) -> str:
        from uplift.features.build import feature_query

        return feature_query(as_of, with_campaign=self.with_campaign, with_external=False,
                             extra=HELPERS)

    @staticmethod
    def _frames(customers: pd.DataFrame, events: pd.DataFrame,
                campaign: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
        table = customers[["customer_id", "open_date", "close_date", "aum",
                           "products_held"]].copy()
        table["customer_key"] = table["customer_id"]
        frames = {"customers_df": table,
                  "events_src": events.rename(columns={"customer_id": "customer_key"})[
                      ["customer_key", "ts", "event_type", "amount", "channel", "page",
                       "topic"]]}
        if campaign is not None:
            camp = campaign[["customer_id", "arm", "assigned_at", "churned"]].copy()
            camp["customer_key"] = camp["customer_id"]
            frames["campaign_df"] = camp
        return frames

    def compute(self, customers: pd.DataFrame, events: pd.DataFrame,
                campaign: pd.DataFrame | None, as_of: str, *, con=None,
                ranks=None) -> pd.DataFrame:
        """The feature table (plus the RFM rank inputs) for ``customers`` as of ``as_of``:
        with the batch query on ``con`` over the frames as they are (the population), else
        with NumPy (a few customers; RFM quintiles NaN unless ``ranks`` fills them, see
        :meth:`many`)."""
        campaign = campaign if self.with_campaign else None
        if con is None:
            return self.vector.compute(customers, events, campaign, as_of, ranks=ranks)
        for name, frame in self._frames(customers, events, campaign).items():
            con.register(name, frame)
        return con.execute(self.query(as_of)).df()

    def reference(self, customers: pd.DataFrame, events: pd.DataFrame,
                  campaign: pd.DataFrame | None, as_of: str) -> tuple[Reference, pd.DataFrame]:
        """Everyone's features as of ``as_of`` and the rank reference taken from them."""
        from uplift.features.build import duckdb_connection

        con = duckdb_connection(threads=1)
        try:
            full = self.compute(customers, events, campaign, as_of, con=con)
        finally:
            con.close()
        ids = {str(c): i for i, c in enumerate(full["customer_id"])}
        values = {col: full[col].to_numpy(float).copy() for col, _ in RANK_INPUTS.values()}
        return Reference(as_of, ids, values), full

    def many(self, customers: pd.DataFrame, events: pd.DataFrame,
             campaign: pd.DataFrame | None, reference: Reference) -> pd.DataFrame:
        """Features of ``customers`` (their own events and campaign rows) as of
        ``reference.as_of``, the RFM quintiles taken against the population; every customer
        must be in the reference."""
        return self.compute(customers, events, campaign, reference.as_of,
                            ranks=lambda ids, values: _rank_features(reference, ids, values))


def _rank_features(reference: Reference, ids: np.ndarray, values: dict[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """The RFM quintiles and segment of customers ``ids`` (rank inputs in ``values``) among
    the population of ``reference``, everyone scored now counted with their new values."""
    missing = [c for c in ids if c not in reference.ids]
    if missing:
        raise InputError(f"customers {', '.join(missing[:5])} are not in the population "
                         f"of {reference.as_of}")
    index = np.array([reference.ids[c] for c in ids], dtype=np.int64)
    scores = {}
    for feature, (col, descending) in RANK_INPUTS.items():
        population = reference.values[col].copy()
        own = np.asarray(values[col], dtype=float)
        population[index] = own          # everyone scored now, with their new values
        scores[feature] = np.array([rank_score(population, v, descending=descending)
                                    for v in own])
    scores["rfm_segment"] = (100 * scores["rfm_recency_score"] + 10 *
                             scores["rfm_frequency_score"] + scores["rfm_monetary_score"])
    return scores


def model_version(folder: Path) -> str:
    """The model folder's training fingerprint, else a hash of the churn model's files."""
    import hashlib

    from uplift.pipeline import trained_fingerprint

    stamp = trained_fingerprint(folder)
    if stamp:
        return stamp
    digest = hashlib.sha256()
    for path in sorted((folder / "churn").glob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def feature_columns() -> list[str]:
    from uplift.features import FEATURES

    return [f.name for f in FEATURES]
