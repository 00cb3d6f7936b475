"""Turn any customer table into model inputs: pick feature columns, type them, check them.

Rules (bring-your-own tables):

* the label must be binary (0/1, or two values such as True/False or "yes"/"no" mapped in order)
  with both classes present;
* id-like columns are excluded with a warning: whole-number or text columns whose values are all
  distinct, and the id column itself;
* free-text columns are excluded with a warning: text columns with more than
  ``max(50, 5% of rows)`` distinct values (names, addresses, comments);
* constant columns carry no information and are dropped with a warning;
* remaining text / boolean columns become categoricals (LightGBM handles them natively);
  numbers stay numbers; dates become "days before the newest date in the column".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.errors import InputError, SchemaError
from uplift.schema import MAX_ABS_VALUE, DataWarning, number_problems, rows_text

TEXT_LEVELS_MIN = 50
#: model inputs keep this many significant bits (about 12 decimal digits), and magnitudes below
#: 2**-40 (about 9e-13) are 0: see :func:`model_inputs`
MODEL_INPUT_BITS = 40
MODEL_INPUT_TINY = 2.0 ** -40
MODEL_INPUT_CHUNK = 1 << 20          # values rounded at a time (8 MB of temporaries)
TEXT_LEVELS_SHARE = 0.05


@dataclass
class TableSpec:
    """What the model learned about its input table (stored with the model)."""

    features: list[str]
    categorical: dict[str, list[str]] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"features": self.features, "categorical": self.categorical,
                "dates": self.dates, "excluded": self.excluded, "medians": self.medians}

    @classmethod
    def from_json(cls, data: dict) -> TableSpec:
        return cls(**data)


def binary_label(values: pd.Series, *, source: str, column: str) -> np.ndarray:
    """0/1 array from a label column; raises with rows when it is not binary."""
    present = values.notna()
    if not present.all():
        raise SchemaError(source, [f"column '{column}': missing labels in {rows_text(~present)}"])
    uniq = pd.unique(values)
    if len(uniq) > 2:
        shown = ", ".join(repr(str(v)) for v in uniq[:5])
        text = values.astype(str).str.strip().str.lower()
        usual = text.isin(["0", "1", "0.0", "1.0", "true", "false", "yes", "no"])
        odd = ~usual if usual.any() else ~values.isin(values.value_counts().index[:2])
        raise SchemaError(source, [f"column '{column}': label must be binary (0/1), found "
                                   f"{len(uniq)} values ({shown}); unexpected values in "
                                   f"{rows_text(odd)}"])
    if len(uniq) < 2:
        raise SchemaError(source, [f"column '{column}': only one class ({uniq[0]!r}) present; "
                                   "a churn model needs churners and stayers"])
    if set(map(str, uniq)) <= {"0", "1", "0.0", "1.0", "True", "False"}:
        return values.astype(float).astype(np.int8).to_numpy()
    ordered = sorted(map(str, uniq))
    positive = next((v for v in ordered if v.lower() in ("yes", "y", "true", "churned",
                                                          "exited", "1")), ordered[1])
    return (values.astype(str) == positive).astype(np.int8).to_numpy()


def _is_text(series: pd.Series) -> bool:
    return (series.dtype == object or pd.api.types.is_string_dtype(series)
            or isinstance(series.dtype, pd.CategoricalDtype))


def _refuse_stray_text(series: pd.Series, column: str, source: str) -> None:
    """A column of numbers with a few text values is damaged data, not a category."""
    present = series.notna() & series.astype(str).str.strip().ne("")
    numbers = pd.to_numeric(series.where(present), errors="coerce")
    stray = present & numbers.isna()
    if present.sum() >= 20 and 0 < stray.sum() <= 0.01 * present.sum():
        raise SchemaError(source, [f"column '{column}': numbers expected, found "
                                   f"{', '.join(map(repr, series[stray].astype(str).unique()[:3]))}"
                                   f" in {rows_text(stray)}"])


def learn_table(frame: pd.DataFrame, *, label: str, id_col: str | None,
                time_col: str | None = None, source: str) -> TableSpec:
    """Decide feature columns and their types from a training table."""
    spec = TableSpec(features=[])
    n = len(frame)
    for col in frame.columns:
        if col in (label, id_col, time_col):
            continue
        series = frame[col]
        nunique = series.nunique(dropna=True)
        if nunique <= 1:
            spec.excluded[col] = "constant"
            continue
        if pd.api.types.is_datetime64_any_dtype(series):
            spec.dates[col] = str(series.max())
            spec.features.append(col)
            continue
        if pd.api.types.is_bool_dtype(series):
            spec.categorical[col] = ["False", "True"]
            spec.features.append(col)
            continue
        if _is_text(series):
            _refuse_stray_text(series, col, source)
            if nunique == n and n > 20:
                spec.excluded[col] = "id-like (every value distinct)"
            elif nunique > max(TEXT_LEVELS_MIN, TEXT_LEVELS_SHARE * n):
                spec.excluded[col] = f"free text ({nunique:,} distinct values)"
            else:
                spec.categorical[col] = sorted(map(str, series.dropna().unique()))
                spec.features.append(col)
            continue
        if pd.api.types.is_numeric_dtype(series):
            values = series.dropna()
            whole = bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
            if whole and nunique == n and n > 20:
                spec.excluded[col] = "id-like (every value distinct)"
                continue
            spec.features.append(col)
            spec.medians[col] = float(values.median())
            continue
        spec.excluded[col] = f"unsupported type {series.dtype}"
    flagged = {c: why for c, why in spec.excluded.items() if why != "constant"}
    if flagged:
        listing = "; ".join(f"{c}: {why}" for c, why in flagged.items())
        warnings.warn(f"{source}: columns excluded from the model: {listing}", DataWarning,
                      stacklevel=2)
    if not spec.features:
        raise InputError(f"{source}: no usable feature columns left after excluding "
                         f"{', '.join(spec.excluded) or 'nothing'}")
    return spec


def id_like_columns(spec: TableSpec) -> list[str]:
    """Columns the training table excluded as id-like (every value distinct): those whose
    name contains "id" first (``CustomerId`` before ``RowNumber``), then in table order."""
    found = [c for c, why in spec.excluded.items() if why.startswith("id-like")]
    return sorted(found, key=lambda c: "id" not in str(c).lower())


def output_ids(frame: pd.DataFrame, *, named: str | None, spec: TableSpec,
               source: str = "table") -> tuple[str, np.ndarray, str]:
    """The id column for a scores/predictions table: (name, values, how it was chosen).

    ``named`` (from ``--id`` or the fit) when given, else the first column the fit detected as
    id-like that the table has, else ``row`` numbered from 1.
    """
    if named is not None:
        if named not in frame.columns:
            raise InputError(f"{source}: id column {named!r} not found")
        return named, frame[named].to_numpy(), f"id column {named!r}"
    for col in id_like_columns(spec):
        if col in frame.columns:
            return col, frame[col].to_numpy(), f"id column {col!r} (detected as id-like at fit)"
    return "row", np.arange(1, len(frame) + 1), "no id column: rows numbered from 1 in 'row'"


def apply_table(frame: pd.DataFrame, spec: TableSpec, *, source: str,
                allowed_extra: tuple[str | None, ...] = ()) -> pd.DataFrame:
    """Model matrix in training order; errors on missing feature columns; columns the model
    does not know are ignored with one warning (a scoring table may carry more)."""
    missing = [c for c in spec.features if c not in frame.columns]
    known = set(spec.features) | set(spec.excluded) | {c for c in allowed_extra if c}
    extra = [c for c in frame.columns if c not in known]
    problems = []
    if missing:
        problems.append(f"missing feature column(s) the model was trained on: "
                        f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    if extra:
        warnings.warn(f"{source}: ignoring {len(extra)} column(s) the model was not trained on: "
                      f"{', '.join(map(str, extra[:10]))}{' ...' if len(extra) > 10 else ''}",
                      DataWarning, stacklevel=2)
    if problems:
        raise SchemaError(source, problems)
    fast = _all_numbers(frame, spec)
    if fast is not None:
        return fast
    columns: dict[str, object] = {}
    for col in spec.features:
        series = frame[col]
        if col in spec.categorical:
            columns[col] = pd.Categorical(series.astype("string").astype(object),
                                          categories=spec.categorical[col])
        elif col in spec.dates:
            newest = pd.Timestamp(spec.dates[col])
            columns[col] = (newest - pd.to_datetime(series, errors="coerce")).dt.days.astype(
                float)
        elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            columns[col] = series.to_numpy(dtype="float64")     # fast path: already numbers
        else:
            values = pd.to_numeric(series, errors="coerce")
            bad = series.notna() & values.isna()
            if bad.any():
                raise SchemaError(source, [f"column '{col}': expected numbers in {rows_text(bad)}"])
            columns[col] = values.to_numpy(dtype="float64")
        if col not in spec.categorical and (found := number_problems(columns[col], col)):
            problems.extend(found)
    if problems:
        raise SchemaError(source, problems)
    for col in spec.features:
        if col not in spec.categorical:
            columns[col] = model_inputs(columns[col])
    return pd.DataFrame(columns, index=frame.index, copy=False)


def model_inputs(values: np.ndarray) -> np.ndarray:
    """Numbers as the models see them: rounded to :data:`MODEL_INPUT_BITS` significant bits,
    magnitudes below :data:`MODEL_INPUT_TINY` set to 0 (NaN and infinities kept).

    The engines that compute features (DuckDB, Spark, the service's NumPy evaluation) agree to
    the last bits only up to the order of floating point additions and their math libraries
    (``ln`` in C and in Java differ by an ulp or two; ``ln(a) - ln(b)`` of two sums that differ
    in the last bit is 1e-16 in one and 0 in the other). A tree split falling between two
    such values would send one customer down different branches on different engines; rounding
    away the last 12 bits makes the model inputs identical but for values that straddle a
    rounding step (about 1 in 1,000 of those that differ at all, and then by 1e-12 relative).
    Trees compare values, so 12 significant digits lose nothing they could use."""
    values = np.asarray(values, dtype="float64")
    out = np.empty_like(values)
    width = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    rows = max(1, MODEL_INPUT_CHUNK // max(width, 1))
    for start in range(0, len(values), rows):          # bounded temporaries, any layout
        part = values[start:start + rows]
        mantissa, exponent = np.frexp(part)
        np.ldexp(mantissa, MODEL_INPUT_BITS, out=mantissa)
        np.round(mantissa, out=mantissa)
        exponent -= MODEL_INPUT_BITS
        rounded = np.ldexp(mantissa, exponent)
        rounded[np.abs(part) < MODEL_INPUT_TINY] = 0.0
        out[start:start + rows] = rounded
    return out


def _all_numbers(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame | None:
    """The model matrix in one step when every feature is a plain float column with no
    infinite or implausibly large value (a feature table, an online score); None otherwise,
    and the column-by-column path names the problem."""
    if spec.categorical or spec.dates:
        return None
    kinds = dict(zip(frame.columns, frame.dtypes, strict=True))
    if not all(kinds[col].kind == "f" for col in spec.features):
        return None
    matrix = frame[spec.features].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        suspect = np.abs(matrix) > MAX_ABS_VALUE      # NaN compares false; inf is caught
    if suspect.any():
        return None
    matrix = model_inputs(matrix)
    return pd.DataFrame(matrix, columns=list(spec.features), index=frame.index, copy=False)
