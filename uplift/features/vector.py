"""Feature values with NumPy for a few customers at a time: the online service's path.

The batch features are one DuckDB query (:func:`uplift.features.build.feature_query`) whose
per-feature expressions live in the registry as SQL. Planning and setting up that ~200-column
query costs DuckDB 0.1-0.4 s whatever the number of rows, far above an online request's budget.
This module evaluates *the same SQL expressions* -- parsed by sqlglot from the registry's text,
never re-written by hand -- over NumPy arrays of a handful of customers' events: aggregates
become grouped reductions, ``CASE``, comparisons and arithmetic work element-wise, and NULL
follows SQL: NaN in numbers, None in text; a comparison with NULL is false; ``sum``, ``min``,
``max`` and ``avg`` over no non-NULL value are NULL; ``greatest``/``least`` ignore NULLs;
``coalesce`` takes the first non-NULL value.

Only the frame around the expressions is written here, mirroring the query's steps: the age in
days and the night flag of each event (``ev``), the 30-day buckets (``monthly_raw``, whose
columns are again registry SQL), the campaign rows whose outcome window has closed, the
customer columns (``base``) and the fills for customers without rows. The RFM quintiles are
ranks across the whole bank and are left to the caller (:mod:`uplift.service.online` keeps the
population's rank inputs). ``tests/service/test_parity.py`` checks every feature against the
batch query to 1e-9 on random customer-times.

SQL the evaluator does not know is refused when the registry is compiled
(:class:`UnsupportedSQL`), so a new feature can never diverge silently online.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.features.build import (
    CAMPAIGN_HORIZON_DAYS,
    MONTHLY_COLUMNS,
    MONTHLY_DAYS,
    RANK_HELPERS,
)
from uplift.features.registry import FEATURES, NIGHT_END_HOUR, Feature

TEXT_EVENT_COLUMNS = ("event_type", "channel", "page", "topic")


class UnsupportedSQL(ValueError):
    """A feature's SQL uses a construct the NumPy evaluator does not implement."""


@dataclass
class Rows:
    """Columns of one step's rows (row level: ``group`` gives each row's customer index) or of
    the customers themselves (group level: ``group`` is None); ``cache`` holds the values of
    sub-expressions already evaluated on these rows (features share many conditions)."""

    columns: dict[str, np.ndarray]
    groups: int
    group: np.ndarray | None = None
    cache: dict[str, object] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.groups if self.group is None else len(self.group)

    def counts(self) -> np.ndarray:
        """Rows per customer."""
        hit = self.cache.get("#counts")
        if hit is None:
            hit = self.cache["#counts"] = np.bincount(self.group, minlength=self.groups)
        return hit


@dataclass(frozen=True)
class Text:
    """A text column as codes into its own vocabulary (-1 = NULL): comparing it with a
    literal is comparing integers."""

    codes: np.ndarray
    vocabulary: dict[str, int]

    @classmethod
    def of(cls, values) -> Text:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
        return cls(codes, {str(v): i for i, v in enumerate(uniques)})

    def code(self, literal) -> int:
        if not isinstance(literal, str):
            raise UnsupportedSQL(f"a text column is compared with {literal!r}, not text")
        return self.vocabulary.get(literal, -2)          # -2: matches no row, not even NULL

    def __getitem__(self, keep) -> Text:
        return Text(self.codes[keep], self.vocabulary)


Evaluator = Callable[[Rows], object]
#: (customer ids, feature values by name) -> the RFM rank features by name
RankFill = Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]]


# -- NULL-aware element-wise helpers ---------------------------------------------------------
def _notnull(values) -> np.ndarray | bool:
    if isinstance(values, Text):
        return values.codes >= 0
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if kind == "f":
            return ~np.isnan(values)
        if kind == "O":
            return pd.notna(values)
        return True
    return values is not None and not (isinstance(values, float) and np.isnan(values))


def _full(values, size: int) -> np.ndarray:
    """``values`` as an array of ``size`` rows (a scalar repeated)."""
    if isinstance(values, np.ndarray) and values.shape == (size,):
        return values
    return np.full(size, values)


def _number(values) -> np.ndarray | float:
    if isinstance(values, Text):
        raise UnsupportedSQL("a text column is used as a number")
    if isinstance(values, np.ndarray):
        return values.astype(float, copy=False)
    if values is None:
        return np.nan
    return float(values)


def _compare(op: Callable) -> Callable:
    def compare(left, right):
        if isinstance(left, Text) or isinstance(right, Text):
            return _compare_text(op, left, right)
        result = op(left, right)
        return np.logical_and(result, np.logical_and(_notnull(left), _notnull(right)))
    return compare


def _compare_text(op: Callable, left, right) -> np.ndarray:
    """``text = 'literal'`` or ``<>``: integer codes; NULL (code -1) never matches."""
    if op not in (np.equal, np.not_equal) or (isinstance(left, Text) and
                                               isinstance(right, Text)):
        raise UnsupportedSQL("text columns are only compared (= or <>) with text literals")
    column, literal = (left, right) if isinstance(left, Text) else (right, left)
    if literal is None:
        return np.zeros(len(column.codes), bool)
    return op(column.codes, column.code(literal)) & (column.codes >= 0)


def _arith(op: Callable) -> Callable:
    def arith(left, right):
        return op(_number(left), _number(right))
    return arith


def _truthy(values, size: int) -> np.ndarray:
    """A condition as a boolean row mask (NULL counts as false)."""
    out = _full(values, size)
    if out.dtype != bool:
        out = np.logical_and(_notnull(out), out.astype(bool))
    return out


# -- grouped aggregates ----------------------------------------------------------------------
def _rows_of(rows: Rows, values, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The group index and values of the rows where ``mask`` holds (None: all rows) and the
    value is not NULL."""
    values = _full(values, rows.size)
    keep = _notnull(values)
    if mask is not None:
        keep = mask & keep
    if keep is True:
        return rows.group, values
    return rows.group[keep], values[keep]


def _agg_sum(rows: Rows, values, mask: np.ndarray) -> np.ndarray:
    group, values = _rows_of(rows, _number(values), mask)
    total = np.bincount(group, weights=values, minlength=rows.groups).astype(float)
    total[np.bincount(group, minlength=rows.groups) == 0] = np.nan
    return total


def _agg_extreme(ufunc: np.ufunc, start: float) -> Callable:
    def extreme(rows: Rows, values, mask: np.ndarray) -> np.ndarray:
        group, values = _rows_of(rows, _number(values), mask)
        out = np.full(rows.groups, start)
        ufunc.at(out, group, values)
        out[np.bincount(group, minlength=rows.groups) == 0] = np.nan
        return out
    return extreme


def _agg_avg(rows: Rows, values, mask: np.ndarray) -> np.ndarray:
    group, values = _rows_of(rows, _number(values), mask)
    seen = np.bincount(group, minlength=rows.groups).astype(float)
    out = np.bincount(group, weights=values, minlength=rows.groups) / seen
    out[seen == 0] = np.nan
    return out


def _agg_count(rows: Rows, values, mask: np.ndarray) -> np.ndarray:
    group, _ = _rows_of(rows, values, mask)
    return np.bincount(group, minlength=rows.groups).astype(float)


def _agg_count_distinct(rows: Rows, values, mask: np.ndarray) -> np.ndarray:
    group, values = _rows_of(rows, _number(values), mask)
    if not len(group):
        return np.zeros(rows.groups)
    pairs = np.unique(np.stack([group.astype(float), values]), axis=1)
    return np.bincount(pairs[0].astype(np.int64), minlength=rows.groups).astype(float)


# -- compiling sqlglot expressions -----------------------------------------------------------
def compile_sql(sql: str) -> Evaluator:
    """One SQL expression (DuckDB dialect) as a function of :class:`Rows`."""
    import sqlglot

    try:
        node = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise UnsupportedSQL(f"cannot parse {sql!r}: {exc}") from exc
    return _compile(node)


def _compile(node) -> Evaluator:
    from sqlglot import exp

    if isinstance(node, exp.Literal | exp.Column | exp.Boolean | exp.Null):
        return _leaf(node)
    build = _build(node)
    key = node.sql(dialect="duckdb")

    def cached(rows: Rows):
        hit = rows.cache.get(key)
        if hit is None:
            hit = rows.cache[key] = build(rows)
        return hit
    return cached


def _leaf(node) -> Evaluator:
    from sqlglot import exp

    if isinstance(node, exp.Literal):
        value = node.this if node.is_string else float(node.this)
        return lambda rows: value
    if isinstance(node, exp.Boolean):
        value = bool(node.this)
        return lambda rows: value
    if isinstance(node, exp.Null):
        return lambda rows: np.nan
    name = node.name

    def column(rows: Rows):
        try:
            return rows.columns[name]
        except KeyError:
            raise UnsupportedSQL(f"column {name!r} is not available at this step "
                                 f"(have {', '.join(sorted(rows.columns))})") from None
    return column


_COMPARISONS = {"EQ": np.equal, "NEQ": np.not_equal, "GT": np.greater,
                "GTE": np.greater_equal, "LT": np.less, "LTE": np.less_equal}
_ARITHMETIC = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
_UNARY = {"Ln": np.log, "Sqrt": np.sqrt, "Abs": np.abs, "Ceil": np.ceil}
_AGGREGATES = {"Sum": _agg_sum, "Min": _agg_extreme(np.minimum, np.inf),
               "Max": _agg_extreme(np.maximum, -np.inf), "Avg": _agg_avg}


def _size_of(node) -> Callable[[Rows], int]:
    """Rows of a node's value: one per customer above an aggregate, else one per row."""
    from sqlglot import exp

    if node.find(exp.AggFunc) is not None:
        return lambda rows: rows.groups
    return lambda rows: rows.size


def _build(node) -> Evaluator:
    from sqlglot import exp

    kind = type(node).__name__
    size = _size_of(node)
    if isinstance(node, exp.Paren):
        return _compile(node.this)
    if isinstance(node, exp.Alias):
        return _compile(node.this)
    if kind in _COMPARISONS:
        op, left, right = _compare(_COMPARISONS[kind]), _compile(node.this), \
            _compile(node.expression)
        return lambda rows: op(left(rows), right(rows))
    if kind in _ARITHMETIC:
        op, left, right = _arith(_ARITHMETIC[kind]), _compile(node.this), \
            _compile(node.expression)
        return lambda rows: op(left(rows), right(rows))
    if isinstance(node, exp.Neg):
        inner = _compile(node.this)
        return lambda rows: -_number(inner(rows))
    if isinstance(node, exp.And | exp.Or):
        op = np.logical_and if isinstance(node, exp.And) else np.logical_or
        left, right = _compile(node.this), _compile(node.expression)
        return lambda rows: op(_truthy(left(rows), size(rows)), _truthy(right(rows), size(rows)))
    if isinstance(node, exp.Between):
        value, low, high = _compile(node.this), _compile(node.args["low"]), \
            _compile(node.args["high"])
        ge, le = _compare(np.greater_equal), _compare(np.less_equal)

        def between(rows: Rows):
            v = value(rows)
            return np.logical_and(ge(v, low(rows)), le(v, high(rows)))
        return between
    if isinstance(node, exp.In):
        if node.args.get("query") is not None or not node.expressions:
            raise UnsupportedSQL(f"IN needs a list of values: {node.sql()}")
        value = _compile(node.this)
        options = [_compile(e) for e in node.expressions]
        equal = _compare(np.equal)

        def within(rows: Rows):
            v = value(rows)
            out = np.zeros(size(rows), bool)
            for option in options:
                out |= equal(v, option(rows))
            return out
        return within
    if isinstance(node, exp.Case):
        if node.this is not None:
            raise UnsupportedSQL(f"only searched CASE WHEN is supported: {node.sql()}")
        branches = [(_compile(b.this), _compile(b.args["true"])) for b in node.args["ifs"]]
        default = _compile(node.args["default"]) if node.args.get("default") else None

        def case(rows: Rows):
            out = _number(default(rows)) if default else np.nan
            for condition, value in reversed(branches):
                out = np.where(_truthy(condition(rows), size(rows)), _number(value(rows)), out)
            return out
        return case
    if isinstance(node, exp.Coalesce):
        parts = [_compile(node.this)] + [_compile(e) for e in node.expressions]

        def coalesce(rows: Rows):
            out = _number(parts[-1](rows))
            for part in reversed(parts[:-1]):
                v = _number(part(rows))
                out = np.where(np.isnan(v), out, v)
            return out
        return coalesce
    if isinstance(node, exp.Greatest | exp.Least):
        op = np.fmax if isinstance(node, exp.Greatest) else np.fmin
        parts = [_compile(node.this)] + [_compile(e) for e in node.expressions]

        def extreme(rows: Rows):
            out = _number(parts[0](rows))
            for part in parts[1:]:
                out = op(out, _number(part(rows)))
            return out
        return extreme
    if kind in _UNARY:
        op, inner = _UNARY[kind], _compile(node.this)

        return lambda rows: op(_number(inner(rows)))
    if isinstance(node, exp.Pow):
        base, power = _compile(node.this), _compile(node.expression)
        return lambda rows: np.power(_number(base(rows)), _number(power(rows)))
    if isinstance(node, exp.Cast):
        if node.to.this.name not in ("DOUBLE", "FLOAT", "BIGINT", "INT"):
            raise UnsupportedSQL(f"only numeric casts are supported: {node.sql()}")
        inner = _compile(node.this)
        if node.to.this.name in ("DOUBLE", "FLOAT"):
            return lambda rows: _number(inner(rows))
        return lambda rows: np.trunc(_number(inner(rows)))
    if isinstance(node, exp.Filter):
        return _aggregate(node.this, node.expression.this)
    if isinstance(node, exp.AggFunc):
        return _aggregate(node, None)
    raise UnsupportedSQL(f"{kind} is not supported online: {node.sql()}")


def _aggregate(node, where) -> Evaluator:
    from sqlglot import exp

    condition = _compile(where) if where is not None else None
    kind = type(node).__name__
    if isinstance(node, exp.Count):
        target = node.this
        if isinstance(target, exp.Star):
            reduce, value = _agg_count, (lambda rows: True)
        elif isinstance(target, exp.Distinct):
            if len(target.expressions) != 1:
                raise UnsupportedSQL(f"count(DISTINCT ...) of one value only: {node.sql()}")
            reduce, value = _agg_count_distinct, _compile(target.expressions[0])
        else:
            reduce, value = _agg_count, _compile(target)
    elif kind == "Sum" and _is_else_zero(node.this):
        return _sum_where(node, node.this, condition)
    elif kind in _AGGREGATES:
        reduce, value = _AGGREGATES[kind], _compile(node.this)
    else:
        raise UnsupportedSQL(f"aggregate {kind} is not supported online: {node.sql()}")

    def aggregate(rows: Rows):
        if rows.group is None:
            raise UnsupportedSQL(f"an aggregate at the customer level: {node.sql()}")
        mask = None if condition is None else _truthy(condition(rows), rows.size)
        return reduce(rows, value(rows), mask)
    return aggregate


def _is_else_zero(node) -> bool:
    from sqlglot import exp

    default = node.args.get("default") if isinstance(node, exp.Case) else None
    return (isinstance(node, exp.Case) and node.this is None and len(node.args["ifs"]) == 1
            and isinstance(default, exp.Literal) and not default.is_string
            and float(default.this) == 0.0)


def _sum_where(node, case, where: Evaluator | None) -> Evaluator:
    """``sum(CASE WHEN c THEN v ELSE 0 END)``, the registry's commonest form, as one masked
    sum: rows where ``c`` fails add 0 (so the sum is NULL only without any row)."""
    from sqlglot import exp

    branch = case.args["ifs"][0]
    condition, value = _compile(branch.this), _compile(branch.args["true"])
    constant = isinstance(branch.args["true"], exp.Literal)

    def sum_where(rows: Rows):
        if rows.group is None:
            raise UnsupportedSQL(f"an aggregate at the customer level: {node.sql()}")
        hit = _truthy(condition(rows), rows.size)
        v = value(rows)
        if where is None and constant:                 # the commonest: a count
            total = np.bincount(rows.group[hit], minlength=rows.groups) * float(v)
            return np.where(rows.counts() > 0, total, np.nan)
        scope = None if where is None else _truthy(where(rows), rows.size)
        if constant:
            counted = hit if scope is None else hit & scope
            total = np.bincount(rows.group[counted], minlength=rows.groups) * float(v)
            valued = scope                      # every row in scope has a value (v or 0)
        else:
            v = _full(_number(v), rows.size)
            missing = hit & np.isnan(v)         # CASE gives NULL there: not summed
            counted = hit & ~missing if scope is None else hit & ~missing & scope
            total = np.bincount(rows.group[counted], weights=v[counted],
                                minlength=rows.groups)
            valued = ~missing if scope is None else ~missing & scope
        seen = rows.counts() if valued is None else \
            np.bincount(rows.group[valued], minlength=rows.groups)
        return np.where(seen > 0, total, np.nan)
    return sum_where


# -- the frame of the feature query ----------------------------------------------------------
@dataclass(frozen=True)
class _Compiled:
    feature: Feature
    evaluate: Evaluator


class VectorFeatures:
    """The registry's features for given customers as of a day, computed with NumPy.

    ``compute`` returns the columns the batch query returns (``customer_id``, ``as_of``,
    ``open_at_as_of``, every feature, then the RFM rank inputs), rows ordered by customer id;
    the RFM quintiles and segment are NaN (ranks need the whole bank)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[_Compiled]] = {}
        for f in FEATURES:
            if f.kind in ("rank", "rank_derived"):
                continue
            compiled = _Compiled(f, compile_sql(f.sql) if f.kind != "external" else None)
            self.by_kind.setdefault(f.kind, []).append(compiled)
        self.helpers = {name: compile_sql(sql) for name, sql in RANK_HELPERS.items()}
        self.monthly_columns = {name: compile_sql(sql) for name, sql in MONTHLY_COLUMNS.items()}

    def compute(self, customers: pd.DataFrame, events: pd.DataFrame,
                campaign: pd.DataFrame | None, as_of: str, *, ranks: RankFill | None = None
                ) -> pd.DataFrame:
        """``customers``: customer_id, open_date, close_date, aum, products_held;
        ``events`` (a DataFrame or a mapping of column -> array): customer_id, ts,
        event_type, amount, channel, page, topic, every customer among ``customers``;
        ``campaign`` (None: no campaign log): customer_id, arm, assigned_at, churned;
        ``ranks``: the RFM quintiles and segment from the customers' ids and feature values
        (their rank inputs among them), e.g. against a population kept elsewhere; without it
        they are NaN."""
        customers = customers.sort_values("customer_id", kind="stable")
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._compute(customers, np.datetime64(as_of, "D"), events, campaign,
                                 ranks)

    def _compute(self, customers: pd.DataFrame, day: np.datetime64, events: pd.DataFrame,
                 campaign: pd.DataFrame | None, ranks: RankFill | None) -> pd.DataFrame:
        ids = customers["customer_id"].astype(str).to_numpy()
        index = {c: i for i, c in enumerate(ids)}
        values: dict[str, np.ndarray] = {}

        ev = _event_rows(events, index, day)
        values.update(_stage(self.by_kind.get("agg", []), ev))
        helpers = _stage([_Compiled(Feature(n, "", "", ""), fn) for n, fn in
                          self.helpers.items()], ev)
        values.update(_stage(self.by_kind.get("monthly", []),
                             _monthly_rows(ev, self.monthly_columns)))
        camp = _campaign_rows(campaign, index, day) if campaign is not None else None
        for c in self.by_kind.get("campaign", []):
            if camp is None:
                values[c.feature.name] = np.full(len(ids), float(c.feature.fill))
        if camp is not None:
            values.update(_stage(self.by_kind.get("campaign", []), camp))
        for c in self.by_kind.get("external", []):
            values[c.feature.name] = np.full(len(ids), float(c.feature.fill))

        base = _customer_columns(customers, day)
        level = Rows({**values, **base}, groups=len(ids))
        for c in self.by_kind.get("derived", []):
            values[c.feature.name] = _full(_number(c.evaluate(level)), len(ids))
        if ranks is not None:
            values.update(ranks(ids, {**values, **helpers}))
        out = pd.DataFrame({"customer_id": customers["customer_id"].to_numpy(),
                            "as_of": pd.Timestamp(day),
                            "open_at_as_of": base["open_at_as_of"].astype(np.int32)})
        empty = np.full(len(ids), np.nan)
        names = [f.name for f in FEATURES] + list(helpers)
        block = np.column_stack([values.get(f.name, empty) for f in FEATURES]
                                + list(helpers.values())) if len(ids) else \
            np.empty((0, len(names)))
        return pd.concat([out, pd.DataFrame(block, columns=names, index=out.index)], axis=1)


def _stage(compiled: list[_Compiled], rows: Rows) -> dict[str, np.ndarray]:
    """The features of one step, each ``coalesce(step.feature, fill)`` as after the query's
    LEFT JOIN: ``fill`` for customers without rows at this step and where it is NULL."""
    if not compiled:
        return {}
    block = np.vstack([_full(_number(c.evaluate(rows)), rows.groups) for c in compiled])
    fills = np.array([float(c.feature.fill) for c in compiled])[:, None]
    present = (rows.counts() > 0)[None, :]
    block = np.where(present & ~np.isnan(block), block, fills)
    return {c.feature.name: block[i] for i, c in enumerate(compiled)}


def _event_rows(events, index: dict[str, int], day: np.datetime64) -> Rows:
    """The ``ev`` step: events before the as-of day with their age in days (1 = yesterday) and
    the night flag (after midnight and before NIGHT_END_HOUR; a midnight-exact ts is a date).
    ``events``: a DataFrame or a mapping of column -> array."""
    ts = np.asarray(events["ts"], dtype="datetime64[us]")
    keep = ts < day
    ts = ts[keep]
    event_day = ts.astype("datetime64[D]")
    since_midnight = ts - event_day
    columns: dict[str, np.ndarray] = {
        "age": (day - event_day).astype(np.int64).astype(float),
        "night": (since_midnight < np.timedelta64(NIGHT_END_HOUR, "h"))
        & (since_midnight > np.timedelta64(0, "us")),
        "amount": np.asarray(events["amount"], dtype=float)[keep],
    }
    for name in TEXT_EVENT_COLUMNS:
        raw = events[name]
        columns[name] = raw[keep] if isinstance(raw, Text) else \
            Text.of(np.asarray(raw, dtype=object)[keep])
    owners = np.asarray(events["customer_id"], dtype=object)[keep]
    group = np.fromiter((index[str(c)] for c in owners), np.int64, count=len(owners))
    return Rows(columns, groups=len(index), group=group)


def _monthly_rows(ev: Rows, columns: dict[str, Evaluator]) -> Rows:
    """The ``monthly_raw`` step: one row per customer and 30-day bucket m = (age - 1) // 30
    (0 = the last 30 days) over events of the last MONTHLY_DAYS days."""
    age = ev.columns["age"]
    keep = age <= MONTHLY_DAYS
    bucket = (age[keep].astype(np.int64) - 1) // 30
    width = int(MONTHLY_DAYS // 30 + 1)
    cell = ev.group[keep] * width + bucket
    cells, inverse = np.unique(cell, return_inverse=True)
    inner = Rows({k: v[keep] for k, v in ev.columns.items()}, groups=len(cells),
                 group=inverse.reshape(-1))
    month = {name: _number(fn(inner)) for name, fn in columns.items()}
    month["m"] = (cells % width).astype(float)
    return Rows(month, groups=ev.groups, group=(cells // width).astype(np.int64))


def _campaign_rows(campaign: pd.DataFrame, index: dict[str, int], day: np.datetime64) -> Rows:
    """Past campaign rows whose outcome window has closed, with their age in days."""
    assigned = campaign["assigned_at"].to_numpy("datetime64[us]")
    ids = campaign["customer_id"].astype(str).to_numpy()
    keep = (assigned + np.timedelta64(CAMPAIGN_HORIZON_DAYS, "D") <= day) & \
        np.array([c in index for c in ids], bool)
    columns = {
        "arm": Text.of(campaign["arm"].to_numpy(object)[keep]),
        "churned": pd.to_numeric(campaign["churned"], errors="coerce").to_numpy(float)[keep],
        "camp_age": (day - assigned[keep].astype("datetime64[D]")).astype(np.int64)
        .astype(float),
    }
    group = np.array([index[c] for c in ids[keep]], np.int64)
    return Rows(columns, groups=len(index), group=group)


def _customer_columns(customers: pd.DataFrame, day: np.datetime64) -> dict[str, np.ndarray]:
    """The ``base`` step's customer columns: AUM and products (0 when missing), tenure in days
    and whether the account is open at the as-of day."""
    opened = customers["open_date"].to_numpy("datetime64[us]")
    closed = customers["close_date"].to_numpy("datetime64[us]") \
        if "close_date" in customers.columns else np.full(len(customers), np.datetime64("NaT"))
    start = day.astype("datetime64[us]")
    return {
        "c_aum": np.nan_to_num(pd.to_numeric(customers["aum"], errors="coerce")
                               .to_numpy(float), nan=0.0),
        "c_products": np.nan_to_num(pd.to_numeric(customers["products_held"],
                                                  errors="coerce").to_numpy(float), nan=0.0),
        "c_tenure_days": (day - opened.astype("datetime64[D]")).astype(np.int64).astype(float),
        "open_at_as_of": ((opened < start) & (np.isnat(closed) | (closed >= start))),
    }
