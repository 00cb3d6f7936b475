"""Online features and scores: the batch feature SQL on one customer's slice of events.

``uplift features --as-of T`` computes every feature with one DuckDB query over all events
(:func:`uplift.features.build.feature_query`). The service runs *the same query* on the
customer's own events, customer row and campaign rows, so every per-customer feature is
identical by construction. The RFM scores are the one exception: they are quintiles *across
customers* (``cume_dist`` over the whole bank). For them the service keeps the population's
rank inputs as of T (computed with the same query over the whole store when the as-of day
starts, and updated for each customer it re-scores) and computes the customer's quintile
exactly as DuckDB's ``cume_dist`` does: (number of customers ordered at or before them) / N.

The as-of date of an online score is the day after the latest event in the store (the
data's "today", as ``uplift plan`` chooses it): features count events with ``ts < as_of``.
"""

from __future__ import annotations

import math
import threading
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
#: the tables the feature SQL reads, with the types the batch reading gives them
SLICE_TABLES = {
    "events_src": "customer_key VARCHAR, ts TIMESTAMP, event_type VARCHAR, amount DOUBLE, "
                  "channel VARCHAR, page VARCHAR, topic VARCHAR",
    "customers_df": "customer_id VARCHAR, open_date TIMESTAMP, close_date TIMESTAMP, "
                    "aum DOUBLE, products_held DOUBLE, customer_key VARCHAR",
    "campaign_df": "customer_id VARCHAR, arm VARCHAR, assigned_at TIMESTAMP, churned BIGINT, "
                   "customer_key VARCHAR",
}


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

    def update(self, customer_id: str, row: pd.Series) -> None:
        """Replace one customer's rank inputs after re-scoring them."""
        i = self.ids.get(customer_id)
        if i is None:
            return
        for col in self.values:
            self.values[col][i] = float(row[col])


class FeatureEngine:
    """Features of one customer (the batch SQL on their slice) or of everyone, as of a day."""

    def __init__(self, *, with_campaign: bool):
        self.with_campaign = with_campaign
        self._local = threading.local()

    def _con(self):
        """This thread's connection for slices: fixed tables the slices are copied into and
        the feature query prepared once per as-of day (planning the ~200-column query costs
        far more than running it on one customer's events; the optimiser is off for the same
        reason: its rewrites do not change results, and the parity test checks that)."""
        con = getattr(self._local, "con", None)
        if con is None:
            from uplift.features.build import duckdb_connection

            con = self._local.con = duckdb_connection(threads=1)
            con.execute("PRAGMA disable_optimizer")
            for name, columns in SLICE_TABLES.items():
                con.execute(f"CREATE TEMP TABLE {name} ({columns})")
            self._local.day = None
        return con

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
                campaign: pd.DataFrame | None, as_of: str, *, con=None) -> pd.DataFrame:
        """The feature table (plus the RFM rank inputs) for ``customers`` as of ``as_of``:
        on ``con`` over the frames as they are (the population), else on this thread's
        prepared connection (slices)."""
        frames = self._frames(customers, events, campaign if self.with_campaign else None)
        if con is not None:
            for name, frame in frames.items():
                con.register(name, frame)
            return con.execute(self.query(as_of)).df()
        con = self._con()
        if self._local.day != as_of:
            if self._local.day is not None:
                con.execute("DEALLOCATE features")
            con.execute("PREPARE features AS " + self.query(as_of))
            self._local.day = as_of
        for name, frame in frames.items():
            con.register("incoming", frame)
            con.execute(f"DELETE FROM {name}")
            con.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            con.unregister("incoming")
        return con.execute("EXECUTE features").df()

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
        rows = self.compute(customers, events, campaign, reference.as_of)
        missing = [c for c in rows["customer_id"].astype(str) if c not in reference.ids]
        if missing:
            raise InputError(f"customers {', '.join(missing[:5])} are not in the population "
                             f"of {reference.as_of}")
        index = np.array([reference.ids[c] for c in rows["customer_id"].astype(str)])
        scores = {}
        for feature, (col, descending) in RANK_INPUTS.items():
            population = reference.values[col].copy()
            own = rows[col].to_numpy(float)
            population[index] = own          # everyone scored now, with their new values
            scores[feature] = np.array([rank_score(population, v, descending=descending)
                                        for v in own])
            rows[feature] = scores[feature]
        rows["rfm_segment"] = (100 * scores["rfm_recency_score"] + 10 *
                               scores["rfm_frequency_score"] + scores["rfm_monetary_score"])
        return rows


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
