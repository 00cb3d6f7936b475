"""Apache Spark as a feature engine: the same SQL as DuckDB, transpiled by sqlglot.

There is one definition of every feature (the registry's SQL, DuckDB dialect, assembled by
:func:`uplift.features.build.feature_query`) and of every input check. :class:`SparkConnection`
offers the few methods of a DuckDB connection that :mod:`uplift.features.build` uses
(``execute(...).fetchall() / .fetchone() / .df()``, ``register``, ``close``) and runs each
statement as Spark SQL after ``sqlglot.transpile(sql, read="duckdb", write="spark")``, so the
feature table is computed by the same code path on either engine.

Spark differs from DuckDB in ways the adapter settles explicitly:

* the session time zone is UTC (the events contract), as in :func:`duckdb_connection`;
* ANSI mode is on (Spark 4's default): a bad cast is an error, never a silent NULL; the
  feature SQL never divides by zero (its denominators are guarded);
* ``row_number() OVER ()`` (file order, only used to name bad rows in an error) becomes
  ``row_number() OVER (ORDER BY monotonically_increasing_id())``, which is file order for
  one file read in order;
* Parquet timestamps in nanoseconds are read as microseconds (pandas writes nanoseconds);
* a group in a ``regexp_replace`` replacement is ``$1`` in Spark, ``\\1`` in DuckDB
  (:func:`java_groups`; the canonical id rule turns ``"123.0"`` into ``"123"`` on both).

Sums of floating point amounts are added in another order than DuckDB's, so a sum may differ
from DuckDB's in its last bits (relative 1e-15); counts, minima and ranks are identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_ROW_NUMBER_IN_FILE_ORDER = re.compile(r"ROW_NUMBER\(\)\s+OVER\s*\(\s*\)", re.IGNORECASE)
_SPARK_TYPES = {"INT": "INTEGER", "LONG": "BIGINT", "SHORT": "SMALLINT", "BYTE": "TINYINT",
                "STRING": "VARCHAR"}


def java_groups(replacement: str) -> str:
    """A ``regexp_replace`` replacement in Java's syntax: DuckDB (RE2) names a group ``\\1``,
    Spark (Java) ``$1`` and reads ``\\1`` as a literal ``1`` (float ids ``"123.0"`` became
    ``"1"``); a literal ``$`` is escaped."""
    return re.sub(r"\\(\d)", r"$\1", replacement.replace("$", r"\$"))


def to_spark_sql(sql: str) -> str:
    """DuckDB SQL as Spark SQL (one statement). Literals with a decimal point are doubles:
    Spark computes with DECIMAL literals at a fixed scale (``x / 143.0`` rounded to 6
    decimals), DuckDB turns such a quotient into a DOUBLE."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")

    def doubles(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and not node.is_string and "." in node.this:
            return exp.cast(node.copy(), exp.DataType.build("DOUBLE"))
        if isinstance(node, exp.RegexpReplace):
            replacement = node.args.get("replacement")
            if isinstance(replacement, exp.Literal) and replacement.is_string:
                node.set("replacement", exp.Literal.string(java_groups(replacement.this)))
        return node

    spark_sql = tree.transform(doubles).sql(dialect="spark")
    return _ROW_NUMBER_IN_FILE_ORDER.sub(
        "ROW_NUMBER() OVER (ORDER BY MONOTONICALLY_INCREASING_ID())", spark_sql)


def csv_delimiter(path: Path) -> str:
    """The delimiter of a CSV file as DuckDB's sniffer (which the DuckDB engine reads with)
    finds it: the two engines split the same file the same way."""
    import duckdb

    quoted = str(path).replace("'", "''")
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT delimiter FROM sniff_csv('{quoted}')").fetchone()
    finally:
        con.close()
    return row[0] if row and row[0] else ","


@dataclass
class _Result:
    """The answer of one statement, read like DuckDB's (``fetchall``, ``fetchone``, ``df``)."""

    frame: object | None            # pyspark DataFrame, None for a statement without rows

    def fetchall(self) -> list[tuple]:
        if self.frame is None:
            return []
        return [tuple(row) for row in self.frame.collect()]

    def fetchone(self) -> tuple | None:
        if self.frame is None:
            return None
        rows = self.frame.limit(1).collect()
        return tuple(rows[0]) if rows else None

    def df(self) -> pd.DataFrame:
        if self.frame is None:
            return pd.DataFrame()
        return self.frame.toPandas()


@dataclass
class SparkConnection:
    """DuckDB-connection look-alike over a SparkSession (see the module docstring)."""

    session: object
    _views: list[str] = field(default_factory=list)

    def execute(self, sql: str) -> _Result:
        spark_sql = to_spark_sql(sql)
        frame = self.session.sql(spark_sql)
        if re.match(r"\s*(CREATE|DROP|SET)\b", spark_sql, re.IGNORECASE):
            name = re.search(r"VIEW\s+(\w+)", spark_sql, re.IGNORECASE)
            if name:
                self._views.append(name.group(1))
            return _Result(None)
        return _Result(frame)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """``frame`` as temporary view ``name`` (pandas categoricals and nullable types as plain
        columns, times without zone)."""
        plain = frame.copy()
        for column in plain.columns:
            values = plain[column]
            if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == "string" \
                    or pd.api.types.is_object_dtype(values.dtype):
                plain[column] = values.astype(object).where(values.notna(), None)
            elif pd.api.types.is_datetime64_any_dtype(values.dtype):
                plain[column] = values.dt.tz_localize(None) if getattr(
                    values.dt, "tz", None) is not None else values
                plain[column] = plain[column].astype("datetime64[us]")
            elif pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_extension_array_dtype(
                    values.dtype):
                plain[column] = values.astype(object).where(values.notna(), None)
        self.session.createDataFrame(plain).createOrReplaceTempView(name)
        self._views.append(name)

    def table_source(self, path: Path, fmt: str, encoding: str | None = None) -> str:
        """A temporary view over a Parquet file or folder, or a CSV file read as text; its
        name, to be used where DuckDB takes ``read_parquet('...')``."""
        name = f"src_{len(self._views)}"
        reader = self.session.read
        if fmt == "parquet":
            frame = reader.parquet(str(path))
        else:
            frame = (reader.option("header", "true").option("inferSchema", "false")
                     .option("sep", csv_delimiter(path))
                     .option("encoding", encoding or "UTF-8").csv(str(path)))
        frame.createOrReplaceTempView(name)
        self._views.append(name)
        return name

    def columns_of(self, source: str) -> list[str]:
        return list(self.session.table(source).columns)

    def type_of(self, source: str, column: str) -> str:
        """The column's type in DuckDB's spelling (``BIGINT``, ``DOUBLE``, ``VARCHAR``)."""
        simple = self.session.table(source).schema[column].dataType.simpleString().upper()
        return _SPARK_TYPES.get(simple, simple)

    def close(self) -> None:
        for name in self._views:
            self.session.catalog.dropTempView(name)
        self._views.clear()
