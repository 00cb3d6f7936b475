"""From a plan and the bank's data after the campaign window to an outcomes table that
``uplift evaluate`` reads without hand joins.

One row per selected customer (contacted or held out):

* ``arm``: the offer for a contacted customer, ``control`` for a held-out one;
* ``stratum``: the cell the holdout was drawn in (the plan's holdout columns, e.g. segment,
  and the planned offer), so arms are compared within strata;
* ``propensity``: the plan's assignment probability;
* ``churned`` (0/1): an ``account_close`` event (or a ``close_date`` in the customers table) in
  ``[start, end)``, with ``start`` the plan's date and ``end`` the measurement date;
  ``retained`` = 1 - churned;
* ``retained_value``: ``retained x customer_value`` (currency a year; the plan's customer
  value), ``new_business``: the amount of ``product_buy`` events in the window (currency);
* ``cost``: the offer's cost for contacted customers, 0 for held-out ones (currency).

The measurement settings (which columns are the arm, control, metric, strata, propensity,
cost and value) are returned with the table and written in its manifest, where ``evaluate``
picks them up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from uplift.allocate.calllist import check_holdout
from uplift.errors import InputError, SchemaError
from uplift.ids import check_join, parse_ids, repeated_ids
from uplift.schema import CONTROL_ARM, parse_flags

CLOSE_EVENT = "account_close"
NEW_BUSINESS_EVENT = "product_buy"
EVALUATE_SETTINGS = {"arm": "arm", "control": CONTROL_ARM, "metric": "retained",
                     "retention": True, "strata": "stratum", "propensity": "propensity",
                     "cost": "cost", "value": "retained_value"}
#: share of the planned customers that must have at least one event in the events file
MIN_WITH_EVENTS = 0.5


def _plan_columns(plan: pd.DataFrame, source: str) -> pd.DataFrame:
    needed = ["customer_id", "holdout", "assignment_probability"]
    offer = "planned_offer" if "planned_offer" in plan.columns else "offer"
    missing = [c for c in [*needed, offer] if c not in plan.columns]
    if missing:
        raise SchemaError(source, [f"missing column(s) {', '.join(missing)}: not a plan "
                                   "written by `uplift plan` or `uplift allocate`"])
    return plan.rename(columns={offer: "_planned"})


def build_outcomes(plan: pd.DataFrame, events: pd.DataFrame, *, start: str | pd.Timestamp,
                   end: str | pd.Timestamp, customers: pd.DataFrame | None = None,
                   strata: list[str] | None = None, plan_source: str = "plan",
                   events_source: str = "events", customers_source: str = "customers"
                   ) -> pd.DataFrame:
    """The outcomes table (see the module docstring). ``events``: customer_id, ts, event_type,
    amount; ``customers`` (optional): customer_id and close_date, and every planned customer
    must be in it (a join that loses customers is refused). Ids are compared in canonical
    form (``10000004.0`` is ``10000004``); fewer than half of the planned customers with any
    event, or ids that differ by zero padding, are refused."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if not end > start:
        raise InputError(f"the measurement date {end.date()} must be after the plan's date "
                         f"{start.date()}: outcomes are measured after the campaign window")
    plan = _plan_columns(plan, plan_source)
    for col in ("customer_id", "ts", "event_type"):
        if col not in events.columns:
            raise SchemaError(events_source, [f"missing required column '{col}'"])
    ts = pd.to_datetime(events["ts"], errors="coerce")
    if ts.isna().any():
        row = int(ts.isna().to_numpy().argmax()) + 1
        raise SchemaError(events_source, [f"column 'ts': not a date in data row {row}"])
    if len(ts) and ts.max() < end - pd.Timedelta(days=1):
        raise InputError(f"{events_source}: events end on {ts.max().date()}, before the "
                         f"measurement date {end.date()}: export the events up to that date")
    ids = parse_ids(plan["customer_id"], source=plan_source)
    if problems := repeated_ids(ids, each="a plan has one row per customer"):
        raise SchemaError(plan_source, problems)
    event_ids = parse_ids(events["customer_id"], source=events_source)
    # a planned customer without a single event is possible (a silent customer), most of
    # them is a file of another bank or ids written another way (zero padding, pseudonyms)
    check_join(ids, pd.Series(event_ids.unique()), what="planned customers",
               source=plan_source, reference=events_source, min_share=MIN_WITH_EVENTS,
               refuse_diagnosed=True)
    if customers is not None:
        customer_ids = parse_ids(customers["customer_id"], source=customers_source)
        check_join(ids, customer_ids, what="planned customers", source=plan_source,
                   reference=customers_source, min_share=1.0)
    inside_window = ((ts >= start) & (ts < end)).to_numpy()
    window = events[inside_window]
    window_ids = event_ids[inside_window]
    closed = set(window_ids[(window["event_type"].astype(str) == CLOSE_EVENT).to_numpy()])
    if customers is not None and "close_date" in customers.columns:
        close = pd.to_datetime(customers["close_date"], errors="coerce")
        inside = ((close >= start) & (close < end)).to_numpy()
        closed |= set(customer_ids[inside])
    buying = (window["event_type"].astype(str) == NEW_BUSINESS_EVENT).to_numpy()
    buys = window[buying]
    new_business = (pd.to_numeric(buys["amount"], errors="coerce").fillna(0.0)
                    .groupby(window_ids[buying].to_numpy()).sum()
                    if "amount" in buys.columns else pd.Series(dtype=float))
    held = parse_flags(plan["holdout"], "holdout", plan_source)
    check_holdout(plan.rename(columns={"_planned": "planned_offer"}), held, plan_source)
    planned = plan["_planned"].astype(str).to_numpy()
    cells = [c for c in (strata or []) if c in plan.columns]
    stratum = pd.Series(planned)
    for col in cells:
        stratum = plan[col].astype(str).reset_index(drop=True) + "|" + stratum
    churned = ids.isin(closed).to_numpy().astype(int)
    worth = (plan["customer_value"].to_numpy(float) if "customer_value" in plan.columns
             else np.zeros(len(plan)))
    cost = plan["offer_cost"] if "offer_cost" in plan.columns else plan["cost"]
    out = pd.DataFrame({
        "customer_id": ids.to_numpy(dtype=object),
        "arm": np.where(held, CONTROL_ARM, planned),
        "planned_offer": planned,
        "stratum": stratum.to_numpy(),
        "propensity": plan["assignment_probability"].to_numpy(float),
        "churned": churned,
        "retained": 1 - churned,
        "retained_value": np.round((1 - churned) * worth, 2),
        "new_business": np.round(ids.map(new_business).fillna(0.0).to_numpy(float), 2),
        "cost": np.where(held, 0.0, cost.to_numpy(float)),
    })
    for col in ("segment",):
        if col in plan.columns:
            out[col] = plan[col].to_numpy()
    return out


def plan_context(plan_path: Path, rows: int, start: str | None = None) -> dict:
    """The plan's date and holdout columns from its manifest (``<plan>.manifest.json``).
    ``start`` (the campaign's start date), when given, is used instead of the manifest's
    date and makes the manifest optional (the holdout columns are then the default,
    segment). A manifest that records another number of plan rows than ``rows`` belongs to
    another plan (or the plan was edited) and is refused unless ``start`` is given."""
    import json

    from uplift.io import manifest_path_for

    manifest = manifest_path_for(plan_path)
    default = {"start": start, "strata": ["segment"]}
    if not manifest.exists():
        if start is None:
            raise InputError(f"{plan_path}: no manifest beside it ({manifest.name}); give the "
                             "campaign's start date (--start)")
        return default
    data = json.loads(manifest.read_text(encoding="utf-8"))
    outputs = data.get("outputs") or {}
    written = Path(str((data.get("arguments") or {}).get("out") or "")).name
    # the plan's own row count, also when the plan file was renamed since
    recorded = outputs.get(plan_path.name, outputs.get(written))
    if recorded is not None and int(recorded) != rows:
        if start is None:
            raise InputError(f"{plan_path}: its manifest ({manifest.name}) records "
                             f"{int(recorded):,} plan rows, the plan has {rows:,}: the manifest "
                             "belongs to another plan, or the plan was edited; give the "
                             "campaign's start date (--start) to measure it without the "
                             "manifest")
        return default
    summary = data.get("summary", {})
    measurement = data.get("measurement", {})
    return {"start": start or summary.get("as_of") or data.get("arguments", {}).get("as_of"),
            "strata": measurement.get("holdout_stratify", ["segment"])}


def recorded_settings(outcomes_path: Path) -> dict:
    """The evaluate settings recorded by ``uplift outcomes`` in the table's manifest ({} when
    the table has no such manifest)."""
    import json

    from uplift.io import manifest_path_for

    manifest = manifest_path_for(outcomes_path)
    if not manifest.exists():
        return {}
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data.get("evaluate") or {})


def join_customers(frame: pd.DataFrame, customers: pd.DataFrame, *, source: str,
                   customers_source: str) -> pd.DataFrame:
    """``frame`` with the customers table's columns it lacks (e.g. ``segment`` for --strata),
    joined on canonical customer ids; every row must find its customer (refused otherwise,
    naming rows and the likely cause, e.g. zero padding)."""
    if "customer_id" not in frame.columns:
        raise SchemaError(source, ["missing column 'customer_id' to join the customers table"])
    key = parse_ids(frame["customer_id"], source=source)
    known = parse_ids(customers["customer_id"], source=customers_source)
    check_join(key, known, what="rows", source=source, reference=customers_source,
               min_share=1.0)
    table = customers.assign(_key=known.to_numpy()).drop_duplicates("_key")
    extra = [c for c in table.columns if c not in frame.columns and c != "_key"]
    lookup = table.set_index("_key")[extra]
    joined = lookup.reindex(key.to_numpy()).reset_index(drop=True)
    return pd.concat([frame.reset_index(drop=True), joined], axis=1)
