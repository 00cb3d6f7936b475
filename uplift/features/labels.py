"""Churn labels as of a date, built from the same inputs as the features.

Definition (documented for planners): a customer open at the as-of date T *churned* when

* an account closure (``customers.close_date`` or an ``account_close`` event) falls in the
  label window ``[T + gap, T + gap + horizon)`` (days), or
* with ``drain_share > 0``: the estimated balance (starting AUM + net flows) at the end of the
  window is below ``drain_share`` times the balance at T, for balances at T of at least
  ``min_balance`` (currency).

Customers not open at T are left out (they cannot churn again), and so are customers who close
inside the gap ``[T, T + gap)`` (their label would be known before the window starts). The window
must end within the event data, so that no label is silently zero for lack of data.
"""

from __future__ import annotations

import pandas as pd

from uplift.errors import InputError
from uplift.features.build import (
    FeatureInputs,
    checked_events,
    customers_view,
    duckdb_connection,
    events_view,
    subset_sql,
)
from uplift.features.registry import INFLOW, OUTFLOW


def build_labels(
    inputs: FeatureInputs, as_of: str, *, horizon_days: int = 30, gap_days: int = 0,
    drain_share: float = 0.0, min_balance: float = 1000.0, threads: int = 1,
) -> pd.DataFrame:
    """One row per customer open at ``as_of``: ``customer_id, as_of, churned, churn_reason``."""
    if horizon_days < 1 or gap_days < 0:
        raise InputError("the label horizon must be >= 1 and the gap >= 0 (days)")
    if not 0 <= drain_share < 1:
        raise InputError(f"the drain share must be in [0, 1), got {drain_share}")
    t = pd.Timestamp(as_of)
    start, end = t + pd.Timedelta(days=gap_days), t + pd.Timedelta(days=gap_days + horizon_days)
    con = duckdb_connection(threads)
    try:
        events_view(con, inputs)
        lo, hi = checked_events(con, inputs)
        data_end = hi.normalize() + pd.Timedelta(days=1)
        if not lo < t or end > data_end:
            raise InputError(
                f"label window {start.date()} .. {end.date()} (as-of {t.date()}, gap {gap_days}"
                f", horizon {horizon_days} days) is not covered by {inputs.events}, whose events "
                f"run from {lo} to {hi}; choose an earlier as-of date")
        customers_view(con, inputs)
        inflow = ", ".join(f"'{x}'" for x in INFLOW)
        outflow = ", ".join(f"'{x}'" for x in OUTFLOW)
        query = f"""
        WITH closes AS (
            SELECT customer_key, min(ts) AS closed_at FROM events_src
            WHERE event_type = 'account_close'{subset_sql(inputs)} GROUP BY customer_key),
        flows AS (
            SELECT customer_key,
              sum(CASE WHEN ts < TIMESTAMP '{t}' THEN s ELSE 0 END) AS net_t,
              sum(CASE WHEN ts < TIMESTAMP '{end}' THEN s ELSE 0 END) AS net_end
            FROM (SELECT customer_key, ts, CASE WHEN event_type IN ({inflow}) THEN amount
                         WHEN event_type IN ({outflow}) THEN -amount ELSE 0 END AS s
                  FROM events_src WHERE ts < TIMESTAMP '{end}'{subset_sql(inputs)})
            GROUP BY customer_key),
        pop AS (
            SELECT c.customer_id, c.customer_key,
              least(coalesce(c.close_date, x.closed_at), coalesce(x.closed_at, c.close_date))
                AS closed_at,
              coalesce(CAST(c.aum AS DOUBLE), 0) + coalesce(f.net_t, 0) AS balance_t,
              coalesce(CAST(c.aum AS DOUBLE), 0) + coalesce(f.net_end, 0) AS balance_end
            FROM customers_df c LEFT JOIN closes x USING (customer_key)
                 LEFT JOIN flows f USING (customer_key)
            WHERE c.open_date < TIMESTAMP '{t}')
        SELECT customer_id,
          CASE WHEN closed_at >= TIMESTAMP '{start}' AND closed_at < TIMESTAMP '{end}'
               THEN 'closed'
               WHEN {drain_share} > 0 AND balance_t >= {min_balance}
                    AND balance_end < {drain_share} * balance_t THEN 'drained'
               ELSE '' END AS churn_reason
        FROM pop
        WHERE closed_at IS NULL OR closed_at >= TIMESTAMP '{start}'
        ORDER BY customer_key"""
        labels = con.execute(query).df()
    finally:
        con.close()
    labels.insert(1, "as_of", t.date())
    labels.insert(2, "churned", (labels["churn_reason"] != "").astype("int8"))
    labels["horizon_days"] = horizon_days
    labels["gap_days"] = gap_days
    return labels
