"""Keyed pseudonyms: ``p-`` + the first 24 hex characters (96 bits) of HMAC-SHA256(key, id).

The same id and key always give the same pseudonym, so tables pseudonymised separately still
join; without the key a pseudonym cannot be turned back into the id (``uplift export`` maps
pseudonyms back by recomputing them from the customers table). Ids are pseudonymised in their
canonical text form (:mod:`uplift.ids`): ``10000123`` (an integer column), ``10000123.0`` (a
float column) and ``"10000123"`` (read from CSV) give the same pseudonym; ``"0010000123"`` does
not.
96 bits keep the chance of any collision among 100 million customers below 1e-12; a collision
is still checked and refused.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from uplift.errors import InputError
from uplift.ids import canonical_ids

PREFIX = "p-"
HEX_CHARS = 24
PATTERN = re.compile(rf"{PREFIX}[0-9a-f]{{{HEX_CHARS}}}")


def is_pseudonym(values: pd.Series) -> pd.Series:
    """True where a value already is a pseudonym."""
    return values.astype(str).str.fullmatch(PATTERN.pattern).fillna(False).astype(bool)


def pseudonymise(values: pd.Series, key: bytes) -> pd.Series:
    """Pseudonyms of ``values`` (computed once per distinct id)."""
    text = canonical_ids(values).fillna("")
    codes, distinct = pd.factorize(text.to_numpy(dtype=object))
    digest = hmac.digest
    mapped = np.array([PREFIX + digest(key, v.encode("utf-8"), "sha256").hex()[:HEX_CHARS]
                       for v in distinct], dtype=object)
    if len(pd.unique(mapped)) != len(mapped):
        raise InputError("two different customer ids share a pseudonym; use another key")
    return pd.Series(mapped[codes], index=values.index, name=values.name)


def protect_ids(frame: pd.DataFrame, columns: Iterable[str] = ("customer_id",),
                key: bytes | None = None, *, source: str = "table") -> pd.DataFrame:
    """Replace raw ids in ``columns`` by pseudonyms when a pseudonym key is configured.

    Columns that already hold pseudonyms are left alone, so applying this twice is harmless;
    a column mixing pseudonyms and raw ids is refused. Returns ``frame`` itself when nothing
    changes.
    """
    if key is None:
        from uplift.security.keys import pseudonym_key

        key = pseudonym_key()
    present = [c for c in columns if c in frame.columns]
    if key is None or not present:
        return frame
    out = frame
    for column in present:
        done = is_pseudonym(frame[column])
        if done.all():
            continue
        if done.any():
            first = int(np.flatnonzero(~done.to_numpy())[0]) + 1
            raise InputError(f"{source}: column {column!r} mixes pseudonyms and raw ids "
                             f"(first raw id in data row {first})")
        if out is frame:
            out = frame.copy()
        out[column] = pseudonymise(frame[column], key)
    return out
