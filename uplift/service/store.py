"""The service's store: SQLAlchemy 2 over SQLite (WAL, the embedded default) or PostgreSQL,
the same code for both. The schema is migrated with Alembic when the store opens.

Durability: SQLite runs in WAL mode with ``synchronous=FULL`` so a committed transaction
survives a crash of the process or the machine; PostgreSQL commits are durable by default.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, String, create_engine, event, func, select, type_coerce

from uplift.errors import InputError
from uplift.service import schema as t

HEAD_REVISION = "0002"


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (the store keeps naive UTC times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_url(url: str) -> str:
    """``postgresql://`` is served by psycopg 3; a bare path means a SQLite file."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - driver hook
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite file or PostgreSQL)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        # connections kept open for every request thread (a new SQLite connection sets
        # its pragmas: milliseconds each)
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               pool_size=48, max_overflow=16)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    raise InputError(f"--db {url}: only sqlite:///FILE and postgresql://... are supported")


def migrate(engine: Engine) -> str:
    """Bring the schema to the newest revision (Alembic); returns the revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location",
                           str(resources.files("uplift.service").joinpath("migrations")))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return HEAD_REVISION


class Store:
    """Typed access to the service's tables. Writers that must not interleave (event
    ingestion, which reads a customer's previous tier and writes the next) hold
    :attr:`write_lock`."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.revision = migrate(self.engine)
        self.write_lock = threading.RLock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(1)).scalar() == 1

    # -- bulk loading (seeding from a bank's files) ----------------------------------------
    def count(self, table: str) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(
                select(func.count()).select_from(t.metadata.tables[table])).scalar_one())

    def load_customers(self, frame: pd.DataFrame) -> int:
        """Insert the customers table (contract-checked frame); returns rows."""
        core = {"customer_id", "segment", "open_date", "close_date", "aum", "products_held"}
        rows = []
        for rec in frame.to_dict("records"):
            attrs = {k: _plain(v) for k, v in rec.items() if k not in core}
            rows.append({"customer_id": str(rec["customer_id"]), "segment": str(rec["segment"]),
                         "open_date": _dt(rec["open_date"]),
                         "close_date": _dt(rec.get("close_date")),
                         "aum": _num(rec.get("aum")), "products_held": _num(rec.get(
                             "products_held")), "attrs": attrs})
        self._insert_chunks(t.customers, rows)
        return len(rows)

    def load_events(self, frame: pd.DataFrame) -> int:
        """Insert historic events (columns of the events contract); keys are content hashes."""
        from uplift.service.events import content_key

        now = utcnow()
        frame = frame.reset_index(drop=True)
        cols = {c: frame[c].to_numpy() if c in frame.columns else [None] * len(frame)
                for c in ("channel", "page", "topic")}
        ts = pd.to_datetime(frame["ts"]).dt.to_pydatetime()
        ids = frame["customer_id"].astype(str).to_numpy()
        types = frame["event_type"].astype(str).to_numpy()
        amounts = frame["amount"].astype(float).to_numpy()
        rows = []
        for i in range(len(frame)):
            rec = {"customer_id": ids[i], "ts": ts[i], "event_type": types[i],
                   "amount": float(amounts[i]),
                   **{c: _text(cols[c][i]) for c in ("channel", "page", "topic")}}
            # the row number keeps identical rows of a history file apart
            rec["event_key"] = "h" + content_key({**rec, "row": i})
            rec["received_at"] = now
            rows.append(rec)
        self._insert_chunks(t.events, rows)
        return len(rows)

    def load_campaign_log(self, frame: pd.DataFrame) -> int:
        rows = [{"customer_id": str(r["customer_id"]), "campaign_id": str(r["campaign_id"]),
                 "arm": str(r["arm"]), "assigned_at": _dt(r["assigned_at"]),
                 "churned": int(r["churned"])} for r in frame.to_dict("records")]
        self._insert_chunks(t.campaign_log, rows)
        return len(rows)

    def _insert_chunks(self, table, rows: list[dict], chunk: int = 20_000) -> None:
        with self.begin() as connection:
            for start in range(0, len(rows), chunk):
                connection.execute(table.insert(), rows[start:start + chunk])

    # -- frames for the feature SQL --------------------------------------------------------
    def customers_frame(self, ids: Iterable[str] | None = None) -> pd.DataFrame:
        query = select(t.customers)
        if ids is not None:
            query = query.where(t.customers.c.customer_id.in_(list(ids)))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        out = pd.DataFrame([{**{k: v for k, v in r.items() if k != "attrs"}, **r["attrs"]}
                            for r in rows])
        if out.empty:
            out = pd.DataFrame(columns=[c.name for c in t.customers.columns
                                        if c.name != "attrs"])
        for col in ("open_date", "close_date"):
            out[col] = pd.to_datetime(out[col])
        return out

    def events_frame(self, customer_id: str | None = None, *,
                     connection: Connection | None = None) -> pd.DataFrame:
        """Events (all, or one customer's) as the feature SQL reads them."""
        # ts read as the stored text on SQLite and parsed in one call (SQLAlchemy's per-row
        # datetime parsing takes seconds on a million events)
        ts = type_coerce(t.events.c.ts, String).label("ts") if self.dialect == "sqlite" \
            else t.events.c.ts
        cols = [t.events.c.customer_id, ts, t.events.c.event_type,
                t.events.c.amount, t.events.c.channel, t.events.c.page, t.events.c.topic]
        query = select(*cols).order_by(t.events.c.seq)
        if customer_id is not None:
            query = query.where(t.events.c.customer_id == customer_id)
        if connection is None:
            with self.engine.connect() as own:
                rows = own.execute(query).all()
        else:
            rows = connection.execute(query).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in cols])
        frame["ts"] = stored_times(frame["ts"].tolist())
        frame["amount"] = frame["amount"].astype(float)
        return frame

    def campaign_frame(self, customer_id: str | None = None) -> pd.DataFrame:
        cols = [t.campaign_log.c.customer_id, t.campaign_log.c.arm,
                t.campaign_log.c.assigned_at, t.campaign_log.c.churned]
        query = select(*cols)
        if customer_id is not None:
            query = query.where(t.campaign_log.c.customer_id == customer_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in cols])
        frame["assigned_at"] = pd.to_datetime(frame["assigned_at"]).astype("datetime64[us]")
        frame["churned"] = frame["churned"].astype("int64")
        return frame

    def last_event_ts(self) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.execute(select(func.max(t.events.c.ts))).scalar()


def stored_times(values) -> np.ndarray:
    """Event times as the store returns them (ISO text on SQLite, read as text because
    SQLAlchemy parses each with a regex; datetimes on PostgreSQL) as datetime64[us]."""
    values = list(values)
    if values and isinstance(values[0], str):
        return np.array([v.replace(" ", "T") for v in values], dtype="datetime64[us]")
    return pd.to_datetime(pd.Series(values, dtype=object)).to_numpy("datetime64[us]")


def _dt(value) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _text(value) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) \
        else str(value)


def _plain(value):
    """A JSON-storable scalar."""
    if value is None or (not isinstance(value, str | bool) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
