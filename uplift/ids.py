"""Customer identifiers: one canonical text form, and joins that report how well they match.

The rule, applied to every table before ids are compared, joined or pseudonymised:

* ids are text; a whole number is written without decimals, whatever its storage: the integer
  ``123``, the float ``123.0`` (a Parquet column that held a missing value) and the text
  ``"123.0"`` (a CSV exported from such a column) are all the customer ``"123"``;
* spaces around an id are removed; an empty id is missing;
* leading zeros are kept: ``"00123"`` and ``"123"`` are different customers, as in a bank's core
  system. A join that fails because one file pads and the other does not is reported as such.

Every join between two tables goes through :func:`check_join`, which counts how many ids of one
table are found in the other and refuses the join below a threshold, naming both files, a sample
of unmatched ids (row numbers instead when ids are pseudonymised) and the likely cause.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.errors import SchemaError

_WHOLE_TEXT = re.compile(r"^([+-]?\d+)\.0*$")
#: DuckDB expression turning the column expression ``{col}`` into the canonical id text.
CANONICAL_SQL = ("nullif(regexp_replace(trim(CAST({col} AS VARCHAR)), "
                 "'^([+-]?[0-9]+)\\.0*$', '\\1'), '')")
SAMPLE = 5
PSEUDONYM_MISMATCH = ("one table holds pseudonyms and the other raw ids (configure the same "
                      "pseudonym key for both, or export raw ids)")
PADDING_MISMATCH = ("the ids differ only in leading zeros (one file pads ids with zeros, the "
                    "other does not); ids are compared as text with zeros kept, so pad or "
                    "strip them the same way in both files")
#: Causes under which an unmatched id is most likely a known customer written another way.
SAME_CUSTOMER_CAUSES = (PSEUDONYM_MISMATCH, PADDING_MISMATCH)


def canonical_ids(values: pd.Series) -> pd.Series:
    """Ids as canonical text (pandas string dtype; missing ids stay missing).

    Raises ``ValueError`` for floats that cannot be exact ids (a fractional part, or beyond
    2^53 where digits are lost); callers check :func:`fractional_ids` first to report rows.
    """
    if pd.api.types.is_bool_dtype(values):
        raise ValueError("ids cannot be true/false values")
    if pd.api.types.is_integer_dtype(values):
        text = values.astype("string")
    elif pd.api.types.is_float_dtype(values):
        if fractional_ids(values).any():
            raise ValueError("float ids that are not exact whole numbers")
        whole = values.astype("Int64")
        text = whole.astype("string")
    else:
        text = values.astype("string").str.strip()
        text = text.str.replace(_WHOLE_TEXT, r"\1", regex=True)
        text = text.mask(text == "")
    return text.rename(values.name)


def parse_ids(values: pd.Series, *, source: str, column: str = "customer_id",
              allow_missing: bool = False) -> pd.Series:
    """``values`` as canonical id text (:func:`canonical_ids`), or :class:`SchemaError` naming
    ``source``, ``column`` and the rows of ids that cannot be exact (fractional or huge floats,
    true/false) or are missing (unless ``allow_missing``)."""
    from uplift.schema import rows_text

    if pd.api.types.is_bool_dtype(values):
        raise SchemaError(source, [f"column '{column}': ids must be whole numbers or text, "
                                   "found true/false values"])
    inexact = fractional_ids(values)
    if inexact.any():
        raise SchemaError(source, [f"column '{column}': ids stored as floats that are not "
                                   "exact whole numbers (fractional, or beyond 2^53 where "
                                   f"digits are lost) in {rows_text(inexact)}; store ids as "
                                   "text or integers"])
    ids = canonical_ids(values)
    missing = ids.isna().to_numpy()
    if missing.any() and not allow_missing:
        raise SchemaError(source, [f"column '{column}': missing ids in {rows_text(missing)}"])
    return ids


def repeated_ids(ids: pd.Series, *, each: str) -> list[str]:
    """A problem naming the rows of canonical ``ids`` that name a customer already named
    (none when every customer is named once; missing ids are not compared); ``each`` says
    why once is the rule."""
    from uplift.schema import rows_text

    repeated = (ids.duplicated(keep=False) & ids.notna()).to_numpy(dtype=bool,
                                                                   na_value=False)
    if not repeated.any():
        return []
    return [f"column 'customer_id': the same customer in {rows_text(repeated)}; {each}"]


#: Beyond 2^53 a float cannot hold every whole number: such ids have lost digits.
MAX_EXACT_FLOAT = 2**53


def fractional_ids(values: pd.Series) -> np.ndarray:
    """Rows of a float id column that cannot be an exact id: not a whole number, infinite, or
    beyond 2^53 (where floats round neighbouring ids onto each other)."""
    if not pd.api.types.is_float_dtype(values):
        return np.zeros(len(values), dtype=bool)
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return ((np.isfinite(array) & ((array % 1 != 0) | (np.abs(array) >= MAX_EXACT_FLOAT)))
                | np.isinf(array))


@dataclass(frozen=True)
class JoinMatch:
    """How many ids of one table were found in another."""

    total: int
    matched: int
    unmatched_ids: list[str]
    unmatched_rows: list[int]          # 1-based data rows of the first unmatched ids
    cause: str | None

    @property
    def share(self) -> float:
        return self.matched / self.total if self.total else 1.0


def _numeric_core(values: pd.Series) -> pd.Series:
    """Ids with leading zeros removed, for diagnosing a padding mismatch."""
    return values.str.replace(r"^0+(?=\d)", "", regex=True)


def likely_cause(unmatched: pd.Series, known: pd.Series) -> str | None:
    """A short diagnosis of why ``unmatched`` ids are not in ``known``."""
    if not len(unmatched) or not len(known):
        return None
    from uplift.security.pseudonym import is_pseudonym

    some_known = known.iloc[: min(len(known), 10_000)]
    if is_pseudonym(some_known).all() != is_pseudonym(unmatched.iloc[:1]).all():
        return PSEUDONYM_MISMATCH
    core_known = set(_numeric_core(known.dropna()).unique())
    core_hits = _numeric_core(unmatched.dropna()).isin(core_known)
    if core_hits.mean() >= 0.5 or (core_hits.any() and len(unmatched) <= SAMPLE):
        return PADDING_MISMATCH
    known_numeric = known.str.fullmatch(r"[+-]?\d+").mean()
    unmatched_numeric = unmatched.str.fullmatch(r"[+-]?\d+").mean()
    if abs(known_numeric - unmatched_numeric) > 0.5:
        return ("ids look like numbers in one table and like text codes in the other "
                "(a different id column, or a column map pointing at the wrong column?)")
    return None


def match(ids: pd.Series, known: pd.Series) -> JoinMatch:
    """Count the canonical ``ids`` present in the canonical ``known`` ids."""
    present = ids.isin(known).to_numpy(dtype=bool, na_value=False)
    missing = np.flatnonzero(~present)
    unmatched = ids.iloc[missing]
    return JoinMatch(total=len(ids), matched=int(present.sum()),
                     unmatched_ids=[str(v) for v in pd.unique(unmatched.dropna())[:SAMPLE]],
                     unmatched_rows=[int(r) + 1 for r in missing[:SAMPLE]],
                     cause=likely_cause(unmatched, known))


def describe(result: JoinMatch, *, what: str, reference: str, show_ids: bool) -> str:
    """One sentence: how many rows of ``what`` match ``reference``, with a sample and cause."""
    unmatched = result.total - result.matched
    if show_ids:
        sample = "e.g. " + ", ".join(repr(v) for v in result.unmatched_ids)
    else:
        sample = "data rows " + ", ".join(map(str, result.unmatched_rows))
    text = (f"{unmatched:,} of {result.total:,} {what} ({1 - result.share:.1%}) name customers "
            f"not in {reference} ({sample})")
    if result.cause:
        text += f"; likely cause: {result.cause}"
    return text


def check_join(ids: pd.Series, known: pd.Series, *, what: str, source: str, reference: str,
               min_share: float, column: str = "customer_id",
               refuse_diagnosed: bool = False) -> JoinMatch:
    """Match the canonical ``ids`` (:func:`canonical_ids`) against ``known`` and :func:`judge`
    the result."""
    return judge(match(ids, known), what=what, source=source, reference=reference,
                 min_share=min_share, column=column, refuse_diagnosed=refuse_diagnosed)


def judge(result: JoinMatch, *, what: str, source: str, reference: str, min_share: float,
          column: str = "customer_id", refuse_diagnosed: bool = False) -> JoinMatch:
    """Refuse (:class:`SchemaError` naming ``source``) a join whose match share is below
    ``min_share`` (0..1) or that matches nothing; warn when some ids are unmatched but the
    share is enough. With ``refuse_diagnosed`` (contact rules), unmatched ids that are most
    likely known customers written another way (zero padding, pseudonyms against raw ids) are
    refused too: a contact rule must not silently miss them. Ids are shown in the message
    unless a pseudonym key is configured (then data rows are shown instead).
    """
    from uplift.schema import DataWarning
    from uplift.security.keys import pseudonym_key

    if result.matched == result.total:
        return result
    message = describe(result, what=what, reference=reference,
                       show_ids=pseudonym_key() is None)
    if result.matched == 0:
        raise SchemaError(source, [f"column '{column}': {message}; none match"])
    if result.share < min_share:
        raise SchemaError(source, [f"column '{column}': {message}; at least "
                                   f"{min_share:.0%} must match"])
    if refuse_diagnosed and result.cause in SAME_CUSTOMER_CAUSES:
        raise SchemaError(source, [f"column '{column}': {message}; a contact rule is never "
                                   "applied to a list whose ids are written another way"])
    warnings.warn(f"{source}: column '{column}': {message}; they are ignored", DataWarning,
                  stacklevel=3)
    return result
