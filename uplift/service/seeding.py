"""Fill an empty store from a bank's files (customers, events, campaign log), with the same
reading and checks as `uplift features` (ids made canonical, bad events refused by row)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from uplift.features import FeatureInputs
from uplift.service.store import Store


def read_bank(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(customers, events, campaign log or None) of a bank folder, checked."""
    from uplift.errors import InputError
    from uplift.features.build import check_events, duckdb_connection, events_view

    inputs = FeatureInputs.from_folder(data)
    if inputs.external:
        raise InputError(f"{data}: external tables ({', '.join(inputs.external)}) are not "
                         "served online yet; serve a folder without them")
    customers = inputs.read("customers")
    con = duckdb_connection()
    try:
        events_view(con, inputs)
        check_events(con, inputs.events)
        events = con.execute(
            "SELECT customer_key AS customer_id, ts, event_type, amount, channel, page, topic "
            "FROM events_src").df()
    finally:
        con.close()
    campaign = inputs.read("campaign_log") if inputs.campaign_log is not None else None
    return customers, events, campaign


def seed(store: Store, data: Path, *, customers: set[str] | None = None,
         before: pd.Timestamp | None = None, ids=None) -> dict[str, int]:
    """Load ``data`` into an empty store; ``customers`` keeps only those ids, ``before`` only
    events earlier than that time (the rest can be replayed); ids are written as ``ids`` (a
    :class:`~uplift.service.identity.StoreIds`; default: pseudonyms when a pseudonym key is
    configured). Returns rows per table."""
    from uplift.service.identity import StoreIds

    ids = ids or StoreIds.configured()
    table, events, campaign = read_bank(data)
    known = set(table["customer_id"].astype(str))
    events = events[events["customer_id"].astype(str).isin(known)]
    if customers is not None:
        table = table[table["customer_id"].isin(customers)]
        events = events[events["customer_id"].isin(customers)]
        if campaign is not None:
            campaign = campaign[campaign["customer_id"].isin(customers)]
    if before is not None:
        events = events[events["ts"] < before]
    table = ids.protect(table, source=f"{data}: customers")
    events = ids.protect(events, source=f"{data}: events")
    campaign = ids.protect(campaign, source=f"{data}: campaign log")
    rows = {"customers": store.load_customers(table), "events": store.load_events(events)}
    if campaign is not None:
        rows["campaign_log"] = store.load_campaign_log(campaign)
    return rows


#: customers of the data folder looked up in a store started again with it
SAME_BANK_SAMPLE = 1000


def check_same_bank(store: Store, data: Path, *, ids=None) -> None:
    """Refuse to serve a store seeded from another bank than ``data`` (or from ids written
    another way, e.g. zero-padded): plans are made from ``data`` while scores, alerts and
    offers come from the store, so their ids would not meet. Every one of a sample of the
    folder's customers must be in the store."""
    from sqlalchemy import select

    from uplift.errors import InputError
    from uplift.ids import likely_cause
    from uplift.service import schema as t
    from uplift.service.identity import StoreIds

    ids = ids or StoreIds.configured()
    customers = ids.protect(FeatureInputs.from_folder(data).read("customers"),
                            source=f"{data}: customers")
    wanted = customers["customer_id"].astype(str).iloc[:SAME_BANK_SAMPLE].tolist()
    with store.engine.connect() as connection:
        found = set(connection.execute(select(t.customers.c.customer_id).where(
            t.customers.c.customer_id.in_(wanted))).scalars())
        stored = pd.Series(list(connection.execute(select(t.customers.c.customer_id)
                                                   .limit(SAME_BANK_SAMPLE)).scalars()))
    missing = [c for c in wanted if c not in found]
    if missing:
        cause = likely_cause(pd.Series(missing, dtype="string"), stored.astype("string"))
        where = store.engine.url.render_as_string(hide_password=True)
        raise InputError(
            f"{where}: this store was seeded from another bank than {data}: "
            f"{len(missing):,} of the first {len(wanted):,} customers of the folder are not "
            "in it" + (f" ({cause})" if cause else "") + "; serve the store with the folder "
            "it was seeded from, or start a new store (--db)")
