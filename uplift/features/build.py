"""Compute the feature table with DuckDB directly over the Parquet/CSV inputs.

The event log is never loaded into pandas: DuckDB scans it (spilling to disk when it must) and
only the per-customer result comes back, or is written straight to Parquet by
:func:`write_features`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from uplift import io
from uplift.errors import InputError, SchemaError
from uplift.features.registry import (
    FEATURES,
    INFLOW,
    MONETARY,
    NIGHT_END_HOUR,
    OUTFLOW,
    Feature,
)
from uplift.ids import CANONICAL_SQL, MAX_EXACT_FLOAT, JoinMatch, check_join, judge, likely_cause
from uplift.schema import (
    EVENT_TYPES,
    EVENT_VOCABULARIES,
    MAX_ABS_VALUE,
    MAX_SHOWN,
    MAX_UNKNOWN_EVENT_TYPES,
    MIN_EVENT_MATCH,
    DataWarning,
    latest_plausible_date,
    spelling_meant,
    validate,
)

EVENT_COLUMNS = ("customer_id", "ts", "event_type", "amount", "channel", "page", "topic")
_MONETARY = "event_type IN (" + ", ".join(f"'{t}'" for t in MONETARY) + ")"
_INFLOW = "event_type IN (" + ", ".join(f"'{t}'" for t in INFLOW) + ")"
_OUTFLOW = "event_type IN (" + ", ".join(f"'{t}'" for t in OUTFLOW) + ")"
#: inner columns of the ``agg`` step the RFM ranks are taken on (aggregates over ``ev``)
RANK_HELPERS = {
    "txn_count_365d_all": f"sum(CASE WHEN {_MONETARY} AND age <= 365 THEN 1 ELSE 0 END)",
    "txn_amount_365d_all": f"sum(CASE WHEN {_MONETARY} AND age <= 365 THEN amount ELSE 0 END)",
}
#: the 30-day buckets ``m = (age - 1) // 30`` (0 = the last 30 days) the ``monthly`` features
#: aggregate over: per customer and bucket, over events of the last MONTHLY_DAYS days
MONTHLY_DAYS = 360
MONTHLY_COLUMNS = {
    "dep": "sum(CASE WHEN event_type = 'deposit' THEN amount ELSE 0 END)",
    "card": "sum(CASE WHEN event_type = 'card_spend' THEN amount ELSE 0 END)",
    "n": f"sum(CASE WHEN {_MONETARY} THEN 1 ELSE 0 END)",
    "net": f"coalesce(sum(CASE WHEN {_INFLOW} THEN amount WHEN {_OUTFLOW} THEN -amount "
           "ELSE 0 END), 0)",
}
OPTIONAL_EVENT_COLUMNS = ("channel", "page", "topic")
CAMPAIGN_HORIZON_DAYS = 30


@dataclass
class FeatureInputs:
    """Where the inputs are. ``external`` maps ``accounts`` / ``enquiries`` to optional files
    with ``customer_id`` and ``opened_at`` (accounts) or ``ts`` (enquiries)."""

    customers: Path
    events: Path
    campaign_log: Path | None = None
    external: dict[str, Path] = field(default_factory=dict)
    rename: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    encoding: str | None = None
    #: canonical ids of the customers to compute for (None: every customer); the inputs are
    #: still checked as a whole (see :meth:`restricted_to`)
    only: frozenset[str] | None = None
    # ids of the customers table as last read (the campaign log is checked against them)
    _customer_ids: pd.Series | None = field(default=None, init=False, repr=False,
                                            compare=False)

    @classmethod
    def from_folder(cls, data: Path, **kwargs: object) -> FeatureInputs:
        from uplift.validation import find_table

        if not data.is_dir():
            raise InputError(f"{data}: data folder not found")
        customers = find_table(data, "customers")
        events = find_table(data, "events")
        if customers is None or events is None:
            raise InputError(f"{data}: needs customers and events tables (.parquet or .csv)")
        external = {name: p for name in ("accounts", "enquiries")
                    if (p := find_table(data, f"external_{name}")) is not None}
        return cls(customers=customers, events=events,
                   campaign_log=find_table(data, "campaign_log"), external=external,
                   **kwargs)  # type: ignore[arg-type]

    def restricted_to(self, ids: pd.Series) -> FeatureInputs:
        """The same inputs, features and labels computed for customers ``ids`` only (a
        training sample): the events are checked as a whole, rank features (RFM quintiles)
        are taken within the subset."""
        from dataclasses import replace

        return replace(self, only=frozenset(ids.astype(str)))

    def read(self, table: str) -> pd.DataFrame:
        """The ``customers`` or ``campaign_log`` table, checked against its contract (column
        map applied, ids read as text and made canonical). A campaign log must name only
        customers of the customers table (all of its rows must match)."""
        from uplift.schema import CONTRACTS

        path = self.customers if table == "customers" else self.campaign_log
        if path is None:
            raise InputError(f"no {table} table given")
        rename = dict(self.rename.get(table, {}))
        frame = io.read_table(path, encoding=self.encoding,
                              ids=(rename.get("customer_id", "customer_id"),))
        checked = validate(frame, CONTRACTS[table], source=str(path), rename=rename)
        if table == "customers":
            self._customer_ids = checked["customer_id"]
        elif self._customer_ids is None:
            self.read("customers")
        if table == "campaign_log":
            check_join(checked["customer_id"], self._customer_ids, what="campaign rows",
                       source=str(path), reference=str(self.customers), min_share=1.0)
        return checked


def source_sql(path: Path, encoding: str | None = None) -> str:
    fmt = io.table_format(path)
    path = io.readable_copy(path)          # sealed tables are decrypted to a private copy
    if fmt == "parquet":
        io.parquet_columns(path)                          # duplicates, damaged file
        return f"read_parquet('{_quote(path)}')"
    io.csv_columns(path, encoding)                        # duplicates, undecodable header
    readable = io.utf8_csv(path, encoding)
    enc = "" if readable != path or not encoding or encoding.lower() in (
        "utf-8", "utf8", "utf-8-sig") else f", encoding = '{encoding}'"
    return f"read_csv('{_quote(readable)}', header = true, all_varchar = true{enc})"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _duckdb_problem(path: Path, exc: Exception) -> InputError:
    """A DuckDB reading error as a planner-readable message."""
    first = str(exc).splitlines()[0]
    if "unicode" in first.lower() or "utf" in first.lower():
        return InputError(f"{path}: is not UTF-8 text; name the file's encoding (for example "
                          f"encoding gbk) ({first})")
    return InputError(f"{path}: cannot be read ({first})")


#: environment variable with DuckDB's memory limit for every feature and label query (e.g.
#: ``4GB``; DuckDB spills to disk beyond it) when a command is not given one
MEMORY_LIMIT_ENV = "UPLIFT_DUCKDB_MEMORY_LIMIT"
#: share of the machine's RAM DuckDB may use when no limit is given (DuckDB's own default is
#: 80%, which left no room for the feature table, the models and the scores of a large bank:
#: a 1,000,000-customer plan peaked at 14.2 GB on a 24 GB machine; with a fifth, 9.3 GB)
DEFAULT_MEMORY_SHARE = 0.15


def default_memory_limit() -> str | None:
    """``DEFAULT_MEMORY_SHARE`` of the physical RAM in MiB (e.g. ``3448MiB`` of 22.4 GiB), at
    least 1 GiB; None where the RAM cannot be read (DuckDB's default then applies)."""
    import os

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return f"{max(1024, int(ram * DEFAULT_MEMORY_SHARE / 1024**2))}MiB"


def duckdb_connection(threads: int = 1, memory_limit: str | None = None):  # -> duckdb connection
    """A DuckDB connection for the feature SQL: UTC, ``threads``, insertion order kept, and
    ``memory_limit`` (else ``UPLIFT_DUCKDB_MEMORY_LIMIT``, else :func:`default_memory_limit`:
    15% of the RAM)."""
    import os

    import duckdb

    memory_limit = (memory_limit or os.environ.get(MEMORY_LIMIT_ENV)
                    or default_memory_limit())
    con = duckdb.connect()
    # times are UTC (the events contract): text with an offset is converted to UTC, text
    # without one is read as UTC, whatever the machine's time zone
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    if memory_limit:
        try:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        except duckdb.Error as exc:
            con.close()
            raise InputError(f"memory limit {memory_limit!r} (--memory-limit or "
                             f"{MEMORY_LIMIT_ENV}) is not a size such as 4GB") from exc
    return con


def _columns_of(con, source: str) -> list[str]:
    if hasattr(con, "columns_of"):                      # the Spark engine
        return con.columns_of(source)
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def _table_source(con, path: Path, encoding: str | None) -> str:
    """What a query reads ``path`` from: DuckDB's table function, or a Spark view over it."""
    if hasattr(con, "table_source"):                    # the Spark engine
        source_sql(path, encoding)                      # the same checks of the file
        return con.table_source(io.readable_copy(path), io.table_format(path), encoding)
    return source_sql(path, encoding)


def _type_of(con, view: str, column: str) -> str | None:
    """The column's type in DuckDB's spelling (``BIGINT``, ``DOUBLE``, ``VARCHAR``)."""
    if hasattr(con, "type_of"):                         # the Spark engine
        return con.type_of(view, column)
    row = con.execute(f"SELECT typeof({column}) FROM {view} LIMIT 1").fetchone()
    return row[0] if row else None


def events_view(con, inputs: FeatureInputs) -> None:
    """Create view ``events_src`` with canonical names and types, after checking the columns."""
    path = inputs.events
    io.check_readable(path)
    source = _table_source(con, path, inputs.encoding)
    try:
        present = _columns_of(con, source)
    except Exception as exc:  # duckdb raises its own error types for damaged files
        raise _duckdb_problem(path, exc) from exc
    rename = dict(inputs.rename.get("events", {}))
    select = []
    missing = []
    for name in EVENT_COLUMNS:
        actual = rename.get(name, name)
        if actual in present:
            select.append(f'"{actual}" AS raw_{name}')
        elif name in OPTIONAL_EVENT_COLUMNS:
            select.append(f"NULL AS raw_{name}")
        else:
            missing.append(name)
    if missing:
        raise SchemaError(str(path), [f"missing required column '{m}'; columns present: "
                                      f"{', '.join(present[:20])}" for m in missing])
    con.execute(f"CREATE OR REPLACE TEMP VIEW events_raw AS SELECT {', '.join(select)} "
                f"FROM {source}")
    id_type = _type_of(con, "events_raw", "raw_customer_id")
    id_expr = CANONICAL_SQL.format(col="raw_customer_id")
    if id_type in ("DOUBLE", "FLOAT"):
        inexact, = con.execute(
            "SELECT count(*) FROM events_raw WHERE raw_customer_id IS NOT NULL AND ("
            "raw_customer_id <> floor(raw_customer_id) OR "
            f"abs(raw_customer_id) >= {MAX_EXACT_FLOAT})").fetchone()
        if inexact:
            raise SchemaError(str(path), [
                f"column 'customer_id': {inexact:,} ids stored as floating point are not exact "
                "whole numbers (fractional, or beyond 2^53 where digits are lost); store ids "
                "as text or integers"])
        id_expr = "CAST(CAST(raw_customer_id AS BIGINT) AS VARCHAR)"
    elif id_type in INTEGER_TYPES:
        id_expr = "CAST(raw_customer_id AS VARCHAR)"      # already canonical: no text rules
    # text columns are trimmed before parsing (which also keeps DuckDB from pushing a strict
    # cast into the CSV reader, so bad values are reported by row instead of aborting)
    text = io.table_format(path) == "csv"
    ts_expr = utc_sql("nullif(trim(raw_ts), '')") if text else \
        "TRY_CAST(raw_ts AS TIMESTAMP)"
    amount_expr = "TRY_CAST(nullif(trim(raw_amount), '') AS DOUBLE)" if text else \
        "TRY_CAST(raw_amount AS DOUBLE)"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW events_src AS SELECT
            {id_expr} AS customer_key,
            {ts_expr} AS ts,
            CAST(raw_event_type AS VARCHAR) AS event_type,
            {amount_expr} AS amount,
            CAST(raw_channel AS VARCHAR) AS channel,
            CAST(raw_page AS VARCHAR) AS page,
            CAST(raw_topic AS VARCHAR) AS topic,
            raw_ts, raw_amount
        FROM events_raw""")


def utc_sql(expr: str) -> str:
    """SQL reading ``expr`` (text or a timestamp) as a UTC time without zone: an offset
    (``+02:00``, ``Z``) is applied (``TIMESTAMP`` alone would drop it), none means UTC; NULL
    when unparseable. Needs the connection's TimeZone at UTC (:func:`duckdb_connection`)."""
    return f"CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP)"


#: positive infinity in SQL both engines read (DuckDB has ``isinf``, Spark has not)
INFINITY = "CAST('Infinity' AS DOUBLE)"
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT")


def _rows_where(con, condition: str) -> tuple[int, str]:
    total, = con.execute(f"SELECT count(*) FROM events_src WHERE {condition}").fetchall()[0]
    if not total:
        return 0, ""
    # slow path, only on error: number the rows in file order (1 = first data row)
    rows = [r[0] for r in con.execute(
        f"SELECT row_no FROM (SELECT row_number() OVER () AS row_no, * FROM events_src) "
        f"WHERE {condition} ORDER BY row_no LIMIT {MAX_SHOWN}").fetchall()]
    shown = ", ".join(map(str, rows)) + (f" (and {total - len(rows)} more)"
                                         if total > len(rows) else "")
    return int(total), f"row{'s' if total > 1 else ''} {shown}"


def check_events(con, path: Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Reject unusable events (all problems at once); warn about suspicious ones."""
    problems: list[str] = []
    checks = {
        "customer_id": ("customer_key IS NULL", "missing customer ids"),
        "ts": ("ts IS NULL", "missing or unparseable timestamps (expected ISO 8601)"),
        "amount": ("amount IS NULL AND raw_amount IS NOT NULL",
                   "amounts that are not numbers"),
    }
    total, = con.execute("SELECT count(*) FROM events_src").fetchall()[0]
    if not total:
        raise SchemaError(str(path), ["the events table has no rows"])
    for column, (condition, what) in checks.items():
        count, rows = _rows_where(con, condition)
        if count:
            problems.append(f"column '{column}': {count:,} {what} in {rows}")
    count, rows = _rows_where(con, "raw_amount IS NULL")
    if count:
        problems.append(f"column 'amount': {count:,} missing amounts in {rows} (0 for events "
                        "that move no money)")
    count, rows = _rows_where(con, f"abs(amount) = {INFINITY} OR amount < 0")
    if count:
        problems.append(f"column 'amount': {count:,} negative or infinite amounts in {rows}")
    count, rows = _rows_where(con, f"abs(amount) < {INFINITY} AND abs(amount) > {MAX_ABS_VALUE}")
    if count:
        problems.append(f"column 'amount': {count:,} implausibly large amounts (beyond "
                        f"{MAX_ABS_VALUE:g}) in {rows}")
    limit = latest_plausible_date()
    count, rows = _rows_where(con, f"ts >= TIMESTAMP '{limit}'")
    if count:
        problems.append(f"column 'ts': {count:,} dates in the future (after "
                        f"{(limit - pd.Timedelta(days=1)).date()}) in {rows}")
    # one scan: the (few) distinct text combinations and their counts
    combos = con.execute(f"SELECT {', '.join(EVENT_VOCABULARIES)}, count(*) AS n "
                         "FROM events_src GROUP BY ALL").df()
    problems += _misspelt_words(con, combos)
    if problems:
        raise SchemaError(str(path), problems)
    outside = combos[~combos["event_type"].isin(EVENT_TYPES)]
    unknown = sorted(outside.groupby("event_type", dropna=False)["n"].sum().items(),
                     key=lambda tn: -tn[1])
    if unknown:
        listing = ", ".join(f"{t!r} x{n:,}" for t, n in unknown[:MAX_SHOWN])
        share = sum(n for _, n in unknown) / total
        if share > MAX_UNKNOWN_EVENT_TYPES:
            raise SchemaError(str(path), [
                f"column 'event_type': {share:.0%} of events have types outside the vocabulary "
                f"({listing}); the features would ignore them. Map the bank's codes to the "
                f"vocabulary ({', '.join(EVENT_TYPES)}) before building features"])
        warnings.warn(f"{path}: column 'event_type': {sum(n for _, n in unknown):,} events of "
                      f"unknown types ({listing}) are ignored by the features", DataWarning,
                      stacklevel=3)
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM events_src").fetchall()[0]
    return pd.Timestamp(lo), pd.Timestamp(hi)


def _misspelt_words(con, combos: pd.DataFrame) -> list[str]:
    """Problems for text values that differ from a vocabulary word only by case, spaces or
    hyphens (``Account_Closing``): as written they would match no feature. ``combos`` holds
    the distinct (event_type, channel, page, topic) values with their counts ``n``."""
    problems = []
    for column, known in EVENT_VOCABULARIES.items():
        counts = combos.groupby(column)["n"].sum()
        wrong = {v: spelling_meant(v, known) for v in counts.index if isinstance(v, str)}
        wrong = {v: m for v, m in wrong.items() if m is not None}
        if not wrong:
            continue
        listed = ", ".join(f"{v!r} x{counts[v]:,} (write {m!r})"
                           for v, m in list(wrong.items())[:MAX_SHOWN])
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in wrong)
        _, rows = _rows_where(con, f"{column} IN ({values})")
        problems.append(f"column '{column}': {listed} in {rows}; the vocabulary is lower case "
                        f"({', '.join(known)}) and as written these match no feature")
    return problems


#: inputs already checked in this process (file identity -> the events' time range), so the
#: snapshots, campaign dates and planning date of one run scan the events for checks once
_CHECKED_EVENTS: dict[tuple, tuple[pd.Timestamp, pd.Timestamp]] = {}
_CHECKED_JOINS: set[tuple] = set()


def _identity(inputs: FeatureInputs, *tables: str) -> tuple:
    """What the checks depend on: each file's path, size and modification time, the column
    map and the encoding."""
    def stamp(path: Path | None) -> tuple:
        if path is None:
            return ()
        stat = path.stat()
        return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)

    files = tuple(stamp(getattr(inputs, t)) for t in tables)
    rename = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in inputs.rename.items()))
    return files + (rename, inputs.encoding)


def checked_events(con, inputs: FeatureInputs) -> tuple[pd.Timestamp, pd.Timestamp]:
    """:func:`check_events` once per events file and process: the time range of the events."""
    key = _identity(inputs, "events")
    if key not in _CHECKED_EVENTS:
        _CHECKED_EVENTS[key] = check_events(con, inputs.events)
    return _CHECKED_EVENTS[key]


def customers_view(con, inputs: FeatureInputs, *, subset: bool = True) -> pd.DataFrame:
    """View ``customers_df`` (the customers, or with ``subset`` those of ``inputs.only``);
    returns the whole checked table."""
    customers = inputs.read("customers")
    keep = ["customer_id", "open_date"] + [c for c in ("close_date", "aum", "products_held")
                                            if c in customers.columns]
    table = customers[keep].copy()
    table["customer_key"] = table["customer_id"]
    for col in ("aum", "products_held"):
        if col not in table.columns:
            table[col] = 0.0
    if "close_date" not in table.columns:
        table["close_date"] = pd.NaT
    if subset and inputs.only is not None:
        table = table[table["customer_id"].isin(inputs.only)]
    con.register("customers_df", table)
    return customers


def subset_sql(inputs: FeatureInputs) -> str:
    """``AND ...`` keeping the events of ``customers_df`` only, when the inputs are restricted
    (DuckDB then aggregates the subset's events only)."""
    return ("" if inputs.only is None else
            " AND customer_key IN (SELECT customer_key FROM customers_df)")


def _check_unknown_customers(con, inputs: FeatureInputs) -> None:
    """Events must name customers of the customers table: below MIN_EVENT_MATCH of them the
    two files do not describe the same bank (or their ids are written differently)."""
    total, unmatched = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE c.customer_key IS NULL) FROM events_src e "
        "LEFT JOIN customers_df c USING (customer_key)").fetchall()[0]
    if not unmatched:
        return
    sample = con.execute(
        "SELECT DISTINCT customer_key FROM events_src e ANTI JOIN customers_df c "
        "USING (customer_key) LIMIT 2000").df()["customer_key"].astype("string")
    known = con.execute("SELECT customer_key FROM customers_df LIMIT 20000"
                        ).df()["customer_key"].astype("string")
    result = JoinMatch(total=int(total), matched=int(total - unmatched),
                       unmatched_ids=[str(v) for v in sample.head(MAX_SHOWN)],
                       unmatched_rows=_unmatched_rows(con), cause=likely_cause(sample, known))
    judge(result, what="events", source=str(inputs.events), reference=str(inputs.customers),
          min_share=MIN_EVENT_MATCH)


def _unmatched_rows(con) -> list[int]:
    return [int(r[0]) for r in con.execute(
        "SELECT row_no FROM (SELECT row_number() OVER () AS row_no, customer_key "
        "FROM events_src) e ANTI JOIN customers_df c USING (customer_key) "
        f"ORDER BY row_no LIMIT {MAX_SHOWN}").fetchall()]


def _campaign_view(con, inputs: FeatureInputs, as_of: str) -> bool:
    if inputs.campaign_log is None:
        return False
    log = inputs.read("campaign_log")
    table = log[["customer_id", "arm", "assigned_at", "churned"]].copy()
    table["customer_key"] = table["customer_id"]
    con.register("campaign_df", table)
    return True


def _external_view(con, inputs: FeatureInputs) -> bool:
    parts = []
    for name, time_col, src in (("accounts", "opened_at", "account"),
                                ("enquiries", "ts", "enquiry")):
        path = inputs.external.get(name)
        if path is None:
            continue
        io.check_readable(path)
        source = _table_source(con, path, inputs.encoding)
        present = _columns_of(con, source)
        missing = [c for c in ("customer_id", time_col) if c not in present]
        if missing:
            raise SchemaError(str(path), [f"missing required column '{m}'" for m in missing])
        parts.append(f"SELECT {CANONICAL_SQL.format(col='customer_id')} AS customer_key, "
                     f"{utc_sql(time_col)} AS ts, '{src}' AS src FROM {source}")
    if not parts:
        return False
    con.execute("CREATE OR REPLACE TEMP VIEW external_src AS " + " UNION ALL ".join(parts))
    return True


def _group_sql(features: list[Feature], source: str, extra: str = "") -> str:
    cols = ",\n    ".join(f"{f.sql} AS {f.name}" for f in features)
    return f"SELECT customer_key,\n    {cols}{extra}\nFROM {source}\nGROUP BY customer_key"


def feature_query(as_of: str, *, with_campaign: bool, with_external: bool,
                  extra: tuple[str, ...] = (), events_filter: str = "") -> str:
    """The whole feature SQL for one as-of date (``YYYY-MM-DD``); ``extra`` names inner
    columns to return as well (the RFM rank inputs, for the online service);
    ``events_filter`` (``AND ...``) restricts the events read (:func:`subset_sql`)."""
    by_kind: dict[str, list[Feature]] = {}
    for f in FEATURES:
        by_kind.setdefault(f.kind, []).append(f)
    helpers = "".join(f",\n    {sql} AS {name}" for name, sql in RANK_HELPERS.items())
    ctes = [
        f"""ev AS (
  SELECT customer_key, event_type, amount, channel, page, topic,
         date_diff('day', CAST(ts AS DATE), DATE '{as_of}') AS age,
         (hour(ts) < {NIGHT_END_HOUR} AND ts > CAST(CAST(ts AS DATE) AS TIMESTAMP)) AS night
  FROM events_src WHERE ts < TIMESTAMP '{as_of}'{events_filter})""",
        f"agg AS (\n{_group_sql(by_kind['agg'], 'ev', helpers)})",
        "monthly_raw AS (\n  SELECT customer_key, (age - 1) // 30 AS m,\n    " + ",\n    ".join(
            f"{sql} AS {name}" for name, sql in MONTHLY_COLUMNS.items()) +
        f"\n  FROM ev WHERE age <= {MONTHLY_DAYS} GROUP BY customer_key, m)",
        f"monthly AS (\n{_group_sql(by_kind['monthly'], 'monthly_raw')})",
    ]
    joins = ["LEFT JOIN agg USING (customer_key)", "LEFT JOIN monthly USING (customer_key)"]
    if with_campaign:
        ctes.append(f"""camp AS (
{_group_sql(by_kind['campaign'], f'''(SELECT *, date_diff('day', CAST(assigned_at AS DATE),
    DATE '{as_of}') AS camp_age FROM campaign_df
    WHERE assigned_at + INTERVAL {CAMPAIGN_HORIZON_DAYS} DAY <= TIMESTAMP '{as_of}')''')})""")
        joins.append("LEFT JOIN camp USING (customer_key)")
    if with_external:
        ctes.append(f"""ext AS (
{_group_sql(by_kind['external'], f'''(SELECT *, date_diff('day', CAST(ts AS DATE),
    DATE '{as_of}') AS age FROM external_src WHERE ts < TIMESTAMP '{as_of}')''')})""")
        joins.append("LEFT JOIN ext USING (customer_key)")

    def filled(f: Feature, table_present: bool) -> str:
        return f"coalesce({f.name}, {f.fill}) AS {f.name}" if table_present else \
            f"CAST({f.fill} AS DOUBLE) AS {f.name}"

    base_cols = [filled(f, True) for f in by_kind["agg"] + by_kind["monthly"]]
    base_cols += [filled(f, with_campaign) for f in by_kind["campaign"]]
    base_cols += [filled(f, with_external) for f in by_kind["external"]]
    ctes.append(f"""base AS (
  SELECT c.customer_id, c.customer_key,
    coalesce(CAST(c.aum AS DOUBLE), 0) AS c_aum,
    coalesce(CAST(c.products_held AS DOUBLE), 0) AS c_products,
    date_diff('day', CAST(c.open_date AS DATE), DATE '{as_of}') AS c_tenure_days,
    CAST(c.open_date < TIMESTAMP '{as_of}' AND (c.close_date IS NULL OR
         c.close_date >= TIMESTAMP '{as_of}') AS INTEGER) AS open_at_as_of,
    coalesce(txn_count_365d_all, 0) AS txn_count_365d_all,
    coalesce(txn_amount_365d_all, 0) AS txn_amount_365d_all,
    {', '.join(base_cols)}
  FROM customers_df c {' '.join(joins)})""")
    derived = ",\n    ".join(f"CAST({f.sql} AS DOUBLE) AS {f.name}" for f in by_kind["derived"])
    ctes.append(f"derived AS (SELECT *,\n    {derived}\n  FROM base)")
    ranks = ",\n    ".join(
        f"least(5, greatest(1, ceil(5 * cume_dist() OVER (ORDER BY {f.sql})))) AS {f.name}"
        for f in by_kind["rank"])
    ctes.append(f"ranked AS (SELECT *,\n    {ranks}\n  FROM derived)")
    finals = [f"CAST({f.sql} AS DOUBLE) AS {f.name}" if f.kind == "rank_derived"
              else f"CAST({f.name} AS DOUBLE) AS {f.name}" for f in FEATURES]
    return ("WITH " + ",\n".join(ctes) + f"\nSELECT customer_id, DATE '{as_of}' AS as_of, "
            "open_at_as_of,\n  " + ",\n  ".join(finals + list(extra)) +
            "\nFROM ranked ORDER BY customer_key")


def _prepare(con, inputs: FeatureInputs, as_of: date | str) -> tuple[str, bool, bool]:
    as_of_ts = pd.Timestamp(as_of)
    if as_of_ts != as_of_ts.normalize():
        raise InputError(f"the as-of date must be a date (YYYY-MM-DD), got {as_of}")
    events_view(con, inputs)
    lo, hi = checked_events(con, inputs)
    if not (lo < as_of_ts <= hi.normalize() + pd.Timedelta(days=1)):
        raise InputError(
            f"the as-of date {as_of_ts.date()} is outside the data range of {inputs.events}: "
            f"events run from {lo} to {hi}; choose a date after {lo.date()} and no later than "
            f"{(hi.normalize() + pd.Timedelta(days=1)).date()}")
    customers_view(con, inputs, subset=False)
    joined = _identity(inputs, "events", "customers")
    if joined not in _CHECKED_JOINS:
        _check_unknown_customers(con, inputs)
        _CHECKED_JOINS.add(joined)
    if inputs.only is not None:
        customers_view(con, inputs)
    with_campaign = _campaign_view(con, inputs, str(as_of_ts.date()))
    with_external = _external_view(con, inputs)
    return str(as_of_ts.date()), with_campaign, with_external


def build_features(inputs: FeatureInputs, as_of: date | str, *, threads: int = 1,
                   memory_limit: str | None = None, spark: object | None = None
                   ) -> pd.DataFrame:
    """Features as of ``as_of`` for every customer of the customers table (one row each).
    With ``spark`` (a SparkSession, :func:`uplift.spark.session.spark_session`) the same SQL
    runs on Spark and the table is collected here."""
    if spark is not None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="uplift-features-") as folder:
            out = Path(folder) / "features.parquet"
            write_features_spark(inputs, as_of, out, spark)
            frame = pd.read_parquet(out).sort_values("customer_id", ignore_index=True)
        return frame.astype({"as_of": "datetime64[us]"})
    from uplift.progress import duckdb_query

    con = duckdb_connection(threads, memory_limit)
    try:
        day, with_campaign, with_external = _prepare(con, inputs, as_of)
        query = feature_query(day, with_campaign=with_campaign, with_external=with_external,
                              events_filter=subset_sql(inputs))
        return duckdb_query(con, lambda: con.execute(query).df())
    finally:
        con.close()


def write_features_spark(inputs: FeatureInputs, as_of: date | str, out: Path, spark: object
                         ) -> None:
    """The feature table computed by Spark (the same SQL, transpiled) and written by it as a
    Parquet dataset folder ``out`` (part files; pandas, PyArrow and DuckDB read it as one
    table), atomically: a failed run leaves ``out`` as it was; an earlier table at ``out`` is
    replaced. Protected (pseudonymised or sealed) output is refused for now."""
    import shutil

    from uplift.features.spark import SparkConnection
    from uplift.security.keys import encryption_key, pseudonym_key

    if pseudonym_key() is not None or encryption_key() is not None:
        raise InputError("the Spark engine does not write protected (pseudonymised or "
                         "encrypted) tables yet: unset the keys or use the DuckDB engine")
    con = SparkConnection(spark)
    stage = out.with_name(f".{out.name}.partial")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        day, with_campaign, with_external = _prepare(con, inputs, as_of)
        query = feature_query(day, with_campaign=with_campaign, with_external=with_external,
                              events_filter=subset_sql(inputs))
        con.execute(query).frame.write.parquet(str(stage))
        old = out.with_name(f".{out.name}.replaced")
        if out.exists():
            out.rename(old)
        stage.rename(out)
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        con.close()


def write_features(inputs: FeatureInputs, as_of: date | str, out: Path, *, threads: int = 1,
                   memory_limit: str | None = None) -> int:
    """Compute features and write them to ``out`` (Parquet or CSV) atomically; returns rows.
    With a pseudonym or master key configured the table goes through :func:`io.write_table`
    (ids pseudonymised, file encrypted) like every derived table."""
    from uplift.progress import duckdb_query
    from uplift.security.keys import encryption_key, pseudonym_key

    if pseudonym_key() is not None or encryption_key() is not None:
        frame = build_features(inputs, as_of, threads=threads, memory_limit=memory_limit)
        io.write_table(frame, out)
        return len(frame)
    con = duckdb_connection(threads, memory_limit)
    try:
        day, with_campaign, with_external = _prepare(con, inputs, as_of)
        query = feature_query(day, with_campaign=with_campaign, with_external=with_external,
                              events_filter=subset_sql(inputs))
        fmt = io.table_format(out)
        with io.atomic_path(out) as tmp:
            options = "FORMAT PARQUET, COMPRESSION ZSTD" if fmt == "parquet" else \
                "FORMAT CSV, HEADER"
            target = str(tmp).replace("'", "''")
            rows, = duckdb_query(con, lambda: con.execute(
                f"COPY ({query}) TO '{target}' ({options})").fetchall()[0])
        return int(rows)
    finally:
        con.close()
