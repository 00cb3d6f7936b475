"""Each customer's events in memory, read from the store once and then only what is new.

Re-scoring a customer needs all of their events (features look back up to two years). Reading
them from the store on every event costs milliseconds and grows with the history; this cache
keeps the events of recently scored customers as NumPy columns and, on each use, reads only the
rows stored since (``seq`` greater than the last one it holds). The store stays the truth: a
customer not in the cache (new, or evicted) is read in full. Memory is bounded by the number
of events held (least recently used customers are dropped first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import and_, or_, select

from uplift.service import schema as t

#: events held in memory at most (about 120 bytes each: 2,000,000 ~ 240 MB)
DEFAULT_MAX_EVENTS = 2_000_000
TEXT = ("event_type", "channel", "page", "topic")


class EventHistory:
    """Per-customer event columns (``ts``, ``event_type``, ``amount``, ``channel``, ``page``,
    ``topic``, ``seq``), in store order, kept in step with the store."""

    def __init__(self, store, *, max_events: int = DEFAULT_MAX_EVENTS):
        self.store = store
        self.max_events = max_events
        self._held: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return len(self._held)

    def last_seq(self, customer_id: str) -> int:
        """The newest event sequence number held for the customer (0: none held)."""
        held = self._held.get(customer_id)
        return int(held["seq"][-1]) if held is not None and len(held["seq"]) else 0

    def events(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The events of ``ids`` (brought up to date with the store) as columns, with
        ``customer_id``; rows grouped by customer in the order of ``ids``, each in store
        order."""
        ids = list(dict.fromkeys(ids))
        self._refresh(ids)
        parts = [self._held[c] for c in ids]
        out = {name: np.concatenate([p[name] for p in parts]) if parts else
               np.empty(0, dtype=_DTYPES[name]) for name in _DTYPES}
        out["customer_id"] = np.repeat(np.array(ids, dtype=object),
                                       [len(p["seq"]) for p in parts])
        return out

    def frame(self, ids: Iterable[str]) -> pd.DataFrame:
        """:meth:`events` as a DataFrame."""
        columns = self.events(ids)
        return pd.DataFrame({"customer_id": columns["customer_id"], "ts": columns["ts"],
                             **{n: columns[n] for n in ("event_type", "amount", "channel",
                                                        "page", "topic")}})

    def _refresh(self, ids: list[str]) -> None:
        ev = t.events
        known = {c: self.last_seq(c) for c in ids if c in self._held}
        fresh = [c for c in ids if c not in self._held]
        clauses = []
        if fresh:
            clauses.append(ev.c.customer_id.in_(fresh))
        clauses += [and_(ev.c.customer_id == c, ev.c.seq > seq) for c, seq in known.items()]
        if not clauses:
            return
        cols = [ev.c.customer_id, ev.c.seq, ev.c.ts, ev.c.event_type, ev.c.amount,
                ev.c.channel, ev.c.page, ev.c.topic]
        with self.store.engine.connect() as connection:
            rows = connection.execute(select(*cols).where(or_(*clauses))
                                      .order_by(ev.c.seq)).all()
        new = _columns(rows)
        owner = new.pop("customer_id")
        for c in ids:
            mine = owner == c
            addition = {name: values[mine] for name, values in new.items()}
            held = self._held.pop(c, None)
            if held is None:
                held = addition
            elif len(addition["seq"]):
                held = {name: np.concatenate([held[name], addition[name]]) for name in held}
            self._size += len(addition["seq"])
            self._held[c] = held                 # most recently used last
        while self._size > self.max_events and len(self._held) > len(ids):
            _, dropped = self._held.popitem(last=False)
            self._size -= len(dropped["seq"])


_DTYPES = {"seq": np.int64, "ts": "datetime64[us]", "event_type": object, "amount": float,
           "channel": object, "page": object, "topic": object}


def _columns(rows: list) -> dict[str, np.ndarray]:
    """Store rows (customer_id, seq, ts, event_type, amount, channel, page, topic) as columns."""
    if not rows:
        empty = {name: np.empty(0, dtype=dtype) for name, dtype in _DTYPES.items()}
        return {"customer_id": np.empty(0, dtype=object), **empty}
    customer, seq, ts, event_type, amount, channel, page, topic = zip(*rows, strict=True)
    return {"customer_id": np.array(customer, dtype=object),
            "seq": np.array(seq, dtype=np.int64),
            "ts": pd.to_datetime(pd.Series(ts)).to_numpy("datetime64[us]"),
            "event_type": np.array(event_type, dtype=object),
            "amount": np.array(amount, dtype=float),
            "channel": np.array(channel, dtype=object),
            "page": np.array(page, dtype=object),
            "topic": np.array(topic, dtype=object)}
