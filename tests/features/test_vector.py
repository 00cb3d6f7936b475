"""The NumPy evaluator of the registry's SQL gives what DuckDB gives (NULLs included), and
refuses SQL it does not implement. (Every feature against the batch query: the service's
parity test.)"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlglot")

from uplift.features.registry import FEATURES
from uplift.features.vector import Rows, Text, UnsupportedSQL, VectorFeatures, compile_sql

EXPRESSIONS = [
    "sum(CASE WHEN kind = 'a' AND age BETWEEN 1 AND 3 THEN 1 ELSE 0 END)",
    "sum(CASE WHEN kind IN ('a', 'b') THEN amount ELSE 0 END)",
    "sum(amount)",
    "coalesce(min(CASE WHEN kind = 'b' THEN age END), 730)",
    "max(CASE WHEN kind <> 'a' AND age <= 4 THEN age END)",
    "coalesce(avg(CASE WHEN kind = 'c' THEN amount END), 0)",
    "avg(amount)",
    "count(DISTINCT CASE WHEN kind = 'a' THEN age END)",
    "count(*) FILTER (WHERE kind <> 'b')",
    "count(amount)",
    "sum(amount) FILTER (WHERE age < 3)",
    "sum(CASE WHEN flag THEN 1 ELSE 0 END) / greatest(count(*), 1)",
    "ln(1 + greatest(sum(CASE WHEN age <= 2 THEN amount ELSE 0 END), 0)) - "
    "ln(1 + greatest(sum(CASE WHEN age > 2 THEN 1 ELSE 0 END) * 30.0 / 275.0, 0))",
    "sqrt(greatest(sum(amount * amount) / 12 - pow(sum(amount) / 12, 2), 0)) / "
    "(sum(amount) / 12 + 1)",
    "CASE WHEN sum(amount) > 10 THEN sum(amount) / 2 ELSE -1 END",
    "least(5, greatest(1, ceil(abs(sum(CASE WHEN kind = 'a' THEN -amount ELSE 0 END)))))",
]

row = st.fixed_dictionaries({
    "g": st.integers(0, 3),
    "kind": st.sampled_from(["a", "b", "c", None]),
    "age": st.integers(1, 6),
    "amount": st.one_of(st.none(), st.floats(0, 1000, allow_nan=False).map(
        lambda v: round(v, 2))),
    "flag": st.booleans(),
})


def _duckdb(frame: pd.DataFrame, sql: str) -> np.ndarray:
    con = duckdb.connect()
    con.register("t", frame)
    result = con.execute(f"SELECT g, CAST({sql} AS DOUBLE) AS v FROM t GROUP BY g "
                         "ORDER BY g").df()
    out = np.full(4, np.nan)
    out[result["g"].to_numpy(int)] = result["v"].to_numpy(float)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=25), which=st.integers(0, len(EXPRESSIONS) - 1),
       coded=st.booleans())
def test_expressions_equal_duckdb(rows, which, coded):
    """Text columns as the service holds them (codes) or as plain object arrays."""
    frame = pd.DataFrame(rows).astype({"amount": float, "age": int, "flag": bool})
    frame["kind"] = frame["kind"].astype(object)
    sql = EXPRESSIONS[which]
    expected = _duckdb(frame, sql)
    kind = frame["kind"].to_numpy(object)
    columns = {"kind": Text.of(kind) if coded else kind, "age": frame["age"].to_numpy(float),
               "amount": frame["amount"].to_numpy(float), "flag": frame["flag"].to_numpy(bool)}
    present = np.bincount(frame["g"], minlength=4) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        got = np.broadcast_to(compile_sql(sql)(Rows(columns, groups=4,
                                                    group=frame["g"].to_numpy(np.int64))),
                              (4,)).astype(float)
    np.testing.assert_allclose(got[present], expected[present], rtol=1e-12, atol=1e-9,
                               err_msg=sql)


def test_every_registry_feature_compiles():
    engine = VectorFeatures()
    compiled = {c.feature.name for kind in engine.by_kind.values() for c in kind}
    expected = {f.name for f in FEATURES if f.kind not in ("rank", "rank_derived")}
    assert compiled == expected


@pytest.mark.parametrize("sql", [
    "sum(CASE WHEN NOT flag THEN 1 ELSE 0 END)",       # NOT: three-valued logic not kept
    "sum(CASE WHEN kind LIKE 'a%' THEN 1 ELSE 0 END)",
    "median(amount)",
    "CASE kind WHEN 'a' THEN 1 END",
    "CAST(kind AS VARCHAR)",
])
def test_unknown_sql_is_refused(sql):
    with pytest.raises(UnsupportedSQL):
        compile_sql(sql)


def test_a_missing_column_is_named():
    evaluate = compile_sql("sum(CASE WHEN missing_col = 'a' THEN 1 ELSE 0 END)")
    rows = Rows({"kind": np.array(["a"], object)}, groups=1, group=np.zeros(1, np.int64))
    with pytest.raises(UnsupportedSQL, match="missing_col"):
        evaluate(rows)
