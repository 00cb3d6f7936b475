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
from sqlalchemy import String, func, select, type_coerce, union_all

from uplift.features.vector import Text
from uplift.service import schema as t
from uplift.service.store import stored_times

#: events held in memory at most (about 120 bytes each: 2,000,000 ~ 240 MB)
DEFAULT_MAX_EVENTS = 2_000_000
TEXT = ("event_type", "channel", "page", "topic")
#: per-customer lookups joined in one statement at most (SQLite allows 500)
COMPOUND_LIMIT = 200


class EventHistory:
    """Per-customer event columns (``ts``, ``event_type``, ``amount``, ``channel``, ``page``,
    ``topic``, ``seq``), in store order, kept in step with the store."""

    def __init__(self, store, *, max_events: int = DEFAULT_MAX_EVENTS):
        self.store = store
        self.max_events = max_events
        self._held: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._size = 0
        # text columns are held as codes into one growing vocabulary per column: no Python
        # string object per event (millions of them would make each full garbage collection
        # pause the service for hundreds of milliseconds)
        self.vocabulary: dict[str, dict[str, int]] = {name: {} for name in TEXT}

    def __len__(self) -> int:
        return len(self._held)

    def last_seq(self, customer_id: str) -> int:
        """The newest event sequence number held for the customer (0: none held)."""
        held = self._held.get(customer_id)
        return int(held["seq"][-1]) if held is not None and len(held["seq"]) else 0

    def preload(self) -> int:
        """Read the newest customers' histories up to the memory bound (at start: the first
        event of a customer then costs no store read); returns the customers held."""
        ev = t.events
        with self.store.engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(ev)).scalar() or 0
            if total > self.max_events:
                return 0
            rows = connection.execute(select(*_read_columns()).order_by(ev.c.seq)).all()
        columns = self._columns(rows)
        owner = columns.pop("customer_id")
        order = np.argsort(owner, kind="stable")
        owner = owner[order]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else \
            np.array([], int)
        bounds = np.r_[starts, len(owner)]
        for k, start in enumerate(starts):
            rows_of = order[start:bounds[k + 1]]
            self._held[str(owner[start])] = {name: values[rows_of]
                                             for name, values in columns.items()}
        self._size = len(owner)
        return len(self._held)

    def events(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The events of ``ids`` (brought up to date with the store) as columns, with
        ``customer_id``; rows grouped by customer in the order of ``ids``, each in store
        order."""
        ids = list(dict.fromkeys(ids))
        self._refresh(ids)
        parts = [self._held[c] for c in ids]
        out: dict = {name: np.concatenate([p[name] for p in parts]) if parts else
                     np.empty(0, dtype=_DTYPES[name]) for name in _DTYPES}
        out["customer_id"] = np.repeat(np.array(ids, dtype=object),
                                       [len(p["seq"]) for p in parts])
        for name in TEXT:
            out[name] = Text(out[name], self.vocabulary[name])
        return out

    def frame(self, ids: Iterable[str]) -> pd.DataFrame:
        """:meth:`events` as a DataFrame."""
        columns = self.events(ids)
        for name in TEXT:
            words = np.array(list(self.vocabulary[name]) + [None], dtype=object)
            columns[name] = words[columns[name].codes]          # code -1: the None at the end
        return pd.DataFrame({"customer_id": columns["customer_id"], "ts": columns["ts"],
                             **{n: columns[n] for n in ("event_type", "amount", "channel",
                                                        "page", "topic")}})

    def _columns(self, rows: list) -> dict[str, np.ndarray]:
        """Store rows (customer_id, seq, ts, event_type, amount, channel, page, topic) as
        columns, text as codes (-1: NULL)."""
        if not rows:
            empty = {name: np.empty(0, dtype=dtype) for name, dtype in _DTYPES.items()}
            return {"customer_id": np.empty(0, dtype=object), **empty}
        customer, seq, ts, event_type, amount, channel, page, topic = zip(*rows, strict=True)
        out = {"customer_id": np.array(customer, dtype=object),
               "seq": np.array(seq, dtype=np.int64), "ts": stored_times(ts),
               "amount": np.array(amount, dtype=float)}
        for name, values in zip(TEXT, (event_type, channel, page, topic), strict=True):
            codes, uniques = pd.factorize(np.array(values, dtype=object),
                                          use_na_sentinel=True)
            vocabulary = self.vocabulary[name]
            known = np.array([vocabulary.setdefault(str(u), len(vocabulary))
                              for u in uniques] + [-1], dtype=np.int32)
            out[name] = known[codes]                            # code -1 stays -1
        return out

    def _refresh(self, ids: list[str]) -> None:
        ev = t.events
        known = {c: self.last_seq(c) for c in ids if c in self._held}
        fresh = [c for c in ids if c not in self._held]
        cols = _read_columns()
        # index lookups on customer_id: everything of customers not held, and per held
        # customer the rows after the newest one held (customer_id = ? AND seq > ? is one
        # range of the customer_id index; an OR of such conditions, or one lower bound for
        # all, lets the database scan the table by seq instead)
        queries = []
        if fresh:
            queries.append(select(*cols).where(ev.c.customer_id.in_(fresh)))
        pending = list(known.items())
        for start in range(0, len(pending), COMPOUND_LIMIT):
            parts = [select(*cols).where(ev.c.customer_id == c, ev.c.seq > seq)
                     for c, seq in pending[start:start + COMPOUND_LIMIT]]
            queries.append(parts[0] if len(parts) == 1 else union_all(*parts))
        rows = []
        with self.store.engine.connect() as connection:
            for query in queries:
                rows += connection.execute(query).all()
        rows = [r for r in rows if r[1] > known.get(r[0], 0)]
        rows.sort(key=lambda r: r[1])
        new = self._columns(rows)
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


def _read_columns() -> list:
    """The columns read, ``ts`` as the stored text on SQLite (NumPy parses ISO text in one
    call; SQLAlchemy's per-row datetime parsing is most of a cold read's time)."""
    ev = t.events
    return [ev.c.customer_id, ev.c.seq, type_coerce(ev.c.ts, String).label("ts"),
            ev.c.event_type, ev.c.amount, ev.c.channel, ev.c.page, ev.c.topic]


_DTYPES = {"seq": np.int64, "ts": "datetime64[us]", "event_type": np.int32, "amount": float,
           "channel": np.int32, "page": np.int32, "topic": np.int32}
