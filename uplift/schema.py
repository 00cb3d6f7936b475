"""Data contracts: the tables the tool reads, their columns, types and rules.

A contract lists canonical column names. A bank's files may use other names: pass a mapping
``{canonical: actual}`` and :func:`validate` renames them. Validation collects *every* problem
(missing columns, unparseable values, duplicates, unknown categories, dates out of order) and
raises one :class:`~uplift.errors.SchemaError` that names the file, the column and the first
rows concerned. Rows are numbered from 1 for the first data row (the header is not counted).

The campaign spec (YAML) contract lives in :mod:`uplift.campaign`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.errors import SchemaError
from uplift.ids import canonical_ids, fractional_ids

#: Event vocabulary of the ``events`` table (``account_close`` marks a closed account).
EVENT_TYPES: tuple[str, ...] = (
    "deposit", "withdrawal", "transfer_out", "transfer_out_competitor", "card_spend",
    "product_buy", "product_redeem", "login", "page_view", "branch_visit", "service_contact",
    "complaint", "campaign_open", "campaign_response", "account_close", "profile_change",
)
#: Event types whose ``amount`` is money (currency units); the others carry amount 0.
MONETARY_EVENTS: tuple[str, ...] = (
    "deposit", "withdrawal", "transfer_out", "transfer_out_competitor", "card_spend",
    "product_buy", "product_redeem",
)
#: Pages a ``page_view`` may name (others are kept but count as ``other``).
PAGES: tuple[str, ...] = (
    "home", "accounts", "cards", "products", "rates", "rate_comparison", "fees",
    "transfer_limit", "account_closing", "other",
)
#: Topics of ``service_contact`` and ``complaint`` events.
#: ``profile_change`` events carry the changed detail as topic: ``phone`` (the bound phone
#: number) or ``address``.
TOPICS: tuple[str, ...] = ("fees", "rates", "card", "service_quality", "closing", "general",
                           "phone", "address")
#: Channels an event may come through.
CHANNELS: tuple[str, ...] = ("app", "web", "branch", "phone", "atm", "pos", "email")
SEGMENTS: tuple[str, ...] = ("private_banking", "mass_affluent", "young_retail", "silent")
#: the events' text fields the features compare with these words (exact text)
EVENT_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "event_type": EVENT_TYPES, "channel": CHANNELS, "page": PAGES, "topic": TOPICS}
CONTROL_ARM = "control"
MAX_SHOWN = 5
#: Share of events that must name a customer of the customers table (0..1).
MIN_EVENT_MATCH = 0.99
#: Share of events whose type may be outside the vocabulary before the table is refused:
#: beyond it the events are in another coding (e.g. numeric codes) and features would be empty.
MAX_UNKNOWN_EVENT_TYPES = 0.5
# No amount, balance or count a bank records comes near 10^15; beyond it a value is corrupt
# (an overflowed export, a misplaced exponent) and would silently dominate sums and models.
MAX_ABS_VALUE = 1e15
# Dates later than this many days after today are refused as corrupt (clock or format errors).
FUTURE_GRACE_DAYS = 1
#: Spellings of "yes" in flag columns (consent, do-not-contact), compared trimmed and in any
#: case: 1, true, t, yes, y, the German j/ja, on, and ``X`` (the tick of many core-banking
#: exports). Anything that is neither here nor in FALSE_TEXT is refused, never read as "no".
TRUE_TEXT = ("1", "1.0", "true", "t", "yes", "y", "j", "ja", "on", "x")
#: Spellings of "no": 0, false, f, no, n, nein, off.
FALSE_TEXT = ("0", "0.0", "false", "f", "no", "n", "nein", "off")


class DataWarning(UserWarning):
    """Something in the data is suspicious but usable (shown to the user, never hidden)."""


@dataclass(frozen=True)
class Column:
    """One column of a contract.

    ``kind`` is one of ``id``, ``string``, ``category``, ``datetime``, ``float``, ``int``,
    ``binary`` (0/1) or ``bool``. ``allowed`` restricts a category; with ``strict=False``
    unknown values only raise a :class:`DataWarning`.
    """

    name: str
    kind: str
    description: str
    required: bool = True
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    strict: bool = True
    min_value: float | None = None
    max_value: float | None = None
    min_exclusive: bool = False


RowCheck = Callable[[pd.DataFrame], list[str]]


@dataclass(frozen=True)
class Contract:
    """A table's contract: its columns, its key and table-level rules."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    checks: tuple[RowCheck, ...] = field(default=())

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def spelling_meant(value: str, known: Sequence[str]) -> str | None:
    """The vocabulary word ``value`` differs from only by case, outer spaces, inner spaces or
    hyphens (``'Account Closing'`` -> ``'account_closing'``); None when ``value`` is itself a
    word of ``known`` or is no such variant. The features compare exact text, so such a
    variant would match no feature."""
    if value in known:
        return None
    meant = value.strip().lower().replace(" ", "_").replace("-", "_")
    return meant if meant in known else None


def flag_numbers(values: pd.Series) -> pd.Series | None:
    """A 0/1 column written as yes/no flags (TRUE_TEXT / FALSE_TEXT, any case: ``J``/``N``,
    ``yes``/``no``, ``0``/``1``) as 1.0/0.0, blanks as NaN; None when any value is neither
    (then the caller's number check names it)."""
    text = values.astype("string").str.strip().str.lower()
    present = text.notna() & (text != "")
    known = text.isin(TRUE_TEXT) | text.isin(FALSE_TEXT)
    if not bool((known | ~present).all()):
        return None
    return pd.Series(np.where(text.isin(TRUE_TEXT).to_numpy(dtype=bool, na_value=False), 1.0,
                              np.where(present.to_numpy(dtype=bool, na_value=False), 0.0,
                                       np.nan)), index=values.index)


def parse_flags(values: pd.Series, column: str, source: str, *,
                blank: bool | None = None) -> np.ndarray:
    """Boolean array of a yes/no column read against TRUE_TEXT / FALSE_TEXT.

    ``blank`` is the meaning of an empty or missing value (None: refused). Any other value
    raises :class:`SchemaError` naming ``source``, ``column``, the values and rows.
    """
    text = values.astype("string").str.strip().str.lower()
    empty = text.isna() | (text == "")
    truthy = text.isin(TRUE_TEXT).to_numpy(dtype=bool, na_value=False)
    falsy = text.isin(FALSE_TEXT).to_numpy(dtype=bool, na_value=False)
    empty_array = empty.to_numpy(dtype=bool, na_value=True)
    bad = ~(truthy | falsy | empty_array)
    problems = []
    if bad.any():
        problems.append(f"column '{column}': values {_examples(values[bad])} in {rows_text(bad)} "
                        f"are not a yes/no flag; accepted: {', '.join(TRUE_TEXT)} (yes) and "
                        f"{', '.join(FALSE_TEXT)} (no), any case")
    if blank is None and empty_array.any():
        problems.append(f"column '{column}': empty values in {rows_text(empty_array)}")
    if problems:
        raise SchemaError(source, problems)
    return truthy | (empty_array & bool(blank))


def rows_text(mask: np.ndarray | pd.Series, limit: int = MAX_SHOWN) -> str:
    """Human row list for a boolean mask: 'rows 3, 9, 12 (and 40 more)', 1-based."""
    positions = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(p) for p in positions[:limit])
    more = f" (and {len(positions) - limit} more)" if len(positions) > limit else ""
    noun = "row" if len(positions) == 1 else "rows"
    return f"{noun} {shown}{more}"


def _id_examples(values: pd.Series, limit: int = 3) -> str:
    """Example ids for a message, or nothing when ids are being pseudonymised (then the rows
    alone locate them; no raw id reaches a terminal or a log)."""
    from uplift.security.keys import pseudonym_key

    return "(ids not shown: pseudonymisation is on)" if pseudonym_key() else \
        _examples(values, limit)


def _examples(values: pd.Series, limit: int = 3) -> str:
    uniq = pd.unique(values.astype(str))[:limit]
    return ", ".join(repr(v) for v in uniq)


def number_problems(values: np.ndarray | pd.Series, column: str) -> list[str]:
    """Infinite and implausibly large (beyond +-1e15) values of a number column, with rows."""
    array = np.asarray(values, dtype="float64")
    problems = []
    infinite = np.isinf(array)
    if infinite.any():
        problems.append(f"column '{column}': infinite values in {rows_text(infinite)}")
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(array) & (np.abs(array) > MAX_ABS_VALUE)
    if huge.any():
        problems.append(f"column '{column}': implausibly large values (beyond +-{MAX_ABS_VALUE:g})"
                        f" in {rows_text(huge)}")
    return problems


def latest_plausible_date() -> pd.Timestamp:
    """Dates after this are in the future and refused."""
    return pd.Timestamp.now().normalize() + pd.Timedelta(days=FUTURE_GRACE_DAYS + 1)


def date_problems(parsed: pd.Series, column: str) -> list[str]:
    """Dates in the future (after tomorrow), with rows."""
    limit = latest_plausible_date()
    future = (parsed >= limit).fillna(False).to_numpy(dtype=bool)
    if future.any():
        return [f"column '{column}': dates in the future (after "
                f"{(limit - pd.Timedelta(days=1)).date()}) in {rows_text(future)}"]
    return []


def _parse_datetime(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[us]")


def parse_date_column(raw: pd.Series, column: str, source: str) -> pd.Series:
    """Parse an ISO 8601 date column strictly; unparseable or future dates raise with rows."""
    problems: list[str] = []
    parsed = _coerce(raw, Column(column, "datetime", "", nullable=True), problems)
    if problems:
        raise SchemaError(source, problems)
    return parsed


def _coerce(raw: pd.Series, col: Column, problems: list[str]) -> pd.Series:
    """Convert one column to its contract type, appending problems for bad rows."""
    present = raw.notna()
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        present &= raw.astype(str).str.strip().ne("")
    if not col.nullable and (~present).any():
        problems.append(f"column '{col.name}': missing values in {rows_text(~present)}")
    kind = col.kind
    if kind in ("float", "int", "binary"):
        if pd.api.types.is_bool_dtype(raw):
            raw = raw.astype("int64")
        if kind == "binary" and not pd.api.types.is_numeric_dtype(raw):
            flags = flag_numbers(raw)
            raw = raw if flags is None else flags
        values = pd.to_numeric(raw, errors="coerce")
        bad = present & values.isna()
        if bad.any():
            problems.append(
                f"column '{col.name}': expected numbers, found {_examples(raw[bad])} "
                f"in {rows_text(bad)}"
            )
        finite = values.notna()
        nonfinite = finite & ~np.isfinite(values.astype("float64"))
        problems.extend(number_problems(values, col.name))
        if kind == "int":
            frac = finite & ~nonfinite & (values.astype("float64") % 1 != 0)
            if frac.any():
                problems.append(f"column '{col.name}': expected whole numbers in {rows_text(frac)}")
        if kind == "binary":
            notbin = finite & ~values.isin([0, 1])
            if notbin.any():
                problems.append(
                    f"column '{col.name}': expected 0 or 1, found "
                    f"{_examples(raw[notbin])} in {rows_text(notbin)}"
                )
        if col.min_value is not None:
            low = finite & ((values <= col.min_value) if col.min_exclusive
                            else (values < col.min_value))
            if low.any():
                op = ">" if col.min_exclusive else ">="
                problems.append(
                    f"column '{col.name}': values must be {op} {col.min_value}, found "
                    f"{_examples(raw[low])} in {rows_text(low)}"
                )
        if col.max_value is not None:
            high = finite & (values > col.max_value)
            if high.any():
                problems.append(
                    f"column '{col.name}': values must be <= {col.max_value}, found "
                    f"{_examples(raw[high])} in {rows_text(high)}"
                )
        if kind == "float":
            return values.astype("float64")
        if values.isna().any():
            return values.astype("Int64")
        return values.astype("int64")
    if kind == "datetime":
        parsed = _parse_datetime(raw)
        bad = present & parsed.isna()
        if bad.any():
            problems.append(
                f"column '{col.name}': unparseable dates {_examples(raw[bad])} in {rows_text(bad)} "
                "(expected ISO 8601, e.g. 2025-03-31 or 2025-03-31T14:05:00)"
            )
        problems.extend(date_problems(parsed, col.name))
        return parsed
    if kind == "bool":
        try:
            return pd.Series(parse_flags(raw, col.name, "", blank=False), index=raw.index)
        except SchemaError as exc:
            problems.extend(exc.problems)
            return pd.Series(np.zeros(len(raw), dtype=bool), index=raw.index)
    if kind == "id":
        frac = fractional_ids(raw)
        if frac.any():
            problems.append(f"column '{col.name}': ids stored as floats that are not exact "
                            f"whole numbers (fractional, or beyond 2^53 where digits are lost), "
                            f"found {_id_examples(raw[frac])} in {rows_text(frac)}; store ids as "
                            "text or integers")
            return raw.astype("string")
        if pd.api.types.is_bool_dtype(raw):
            problems.append(f"column '{col.name}': ids must be whole numbers or text, "
                            "found true/false values")
            return raw.astype("string")
        return canonical_ids(raw)
    # string, category
    text = raw.astype("string").str.strip()
    if col.allowed is not None:
        unknown = present & ~text.isin(col.allowed)
        if unknown.any():
            counts = text[unknown].value_counts()
            listing = ", ".join(f"{v!r} x{n}" for v, n in counts.head(MAX_SHOWN).items())
            message = (f"column '{col.name}': unknown values {listing} in {rows_text(unknown)}; "
                       f"allowed: {', '.join(col.allowed)}")
            if col.strict:
                problems.append(message)
            else:
                warnings.warn(message, DataWarning, stacklevel=4)
    return text


def validate(
    frame: pd.DataFrame,
    contract: Contract,
    *,
    source: str,
    rename: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``contract`` and return it with canonical names and types.

    ``rename`` maps canonical column names to the names used in the file. Columns not in the
    contract are kept unchanged. Raises :class:`SchemaError` listing every problem found.
    """
    rename = dict(rename or {})
    problems: list[str] = []
    if len(frame) == 0:
        raise SchemaError(source, [f"the {contract.name} table has no rows"])
    actual_to_canonical = {actual: canon for canon, actual in rename.items()}
    frame = frame.rename(columns=actual_to_canonical)
    missing = [c for c in contract.required if c not in frame.columns]
    for name in missing:
        alias = f" (mapped from '{rename[name]}')" if name in rename else ""
        problems.append(
            f"missing required column '{name}'{alias}; columns present: "
            f"{', '.join(map(str, frame.columns[:20]))}"
        )
    out = frame.copy()
    for col in contract.columns:
        if col.name in frame.columns:
            out[col.name] = _coerce(frame[col.name], col, problems)
    key = [k for k in contract.key if k in out.columns]
    if key and len(key) == len(contract.key):
        dup = out.duplicated(subset=key, keep=False) & out[key].notna().all(axis=1)
        if dup.any():
            problems.append(
                f"duplicate {' + '.join(key)} values {_id_examples(out.loc[dup, key[0]])} "
                f"in {rows_text(dup)}; each must appear once"
            )
    if not missing:
        for check in contract.checks:
            problems.extend(check(out))
    if problems:
        raise SchemaError(source, problems)
    return out


# --- table-level rules ---------------------------------------------------------------------

def _close_after_open(frame: pd.DataFrame) -> list[str]:
    if "close_date" not in frame.columns:
        return []
    bad = frame["close_date"].notna() & (frame["close_date"] < frame["open_date"])
    if not bad.any():
        return []
    return [f"dates out of order: close_date before open_date in {rows_text(bad)}"]


def _control_present(frame: pd.DataFrame) -> list[str]:
    problems = []
    for campaign, arms in frame.groupby("campaign_id", sort=True)["arm"]:
        if not (arms == CONTROL_ARM).any():
            problems.append(
                f"campaign {campaign!r} has no '{CONTROL_ARM}' rows; a holdout is needed to "
                "learn effects"
            )
    return problems


def _event_types_known(frame: pd.DataFrame) -> list[str]:
    unknown = ~frame["event_type"].isin(EVENT_TYPES).to_numpy(dtype=bool, na_value=True)
    if unknown.mean() <= MAX_UNKNOWN_EVENT_TYPES:
        return []
    return [f"column 'event_type': {unknown.mean():.0%} of events have types outside the "
            f"vocabulary (e.g. {_examples(frame['event_type'][unknown])}); map the bank's codes "
            f"to the vocabulary ({', '.join(EVENT_TYPES)})"]


def _words_as_the_vocabulary(frame: pd.DataFrame) -> list[str]:
    """Text values that differ from a vocabulary word only by case, spaces or hyphens."""
    problems = []
    for column, known in EVENT_VOCABULARIES.items():
        if column not in frame.columns:
            continue
        text = frame[column].astype("string")
        meant = {v: spelling_meant(v, known) for v in text.dropna().unique()}
        meant = {v: m for v, m in meant.items() if m is not None}
        if meant:
            bad = text.isin(list(meant)).to_numpy(dtype=bool, na_value=False)
            listed = ", ".join(f"{v!r} (write {m!r})" for v, m in list(meant.items())[:MAX_SHOWN])
            problems.append(f"column '{column}': {listed} in {rows_text(bad)}; the vocabulary "
                            f"is lower case ({', '.join(known)}) and as written these match "
                            "no feature")
    return problems


def _page_only_on_page_views(frame: pd.DataFrame) -> list[str]:
    if "page" not in frame.columns:
        return []
    views = frame["event_type"] == "page_view"
    bad = views & frame["page"].isna()
    if not bad.any():
        return []
    return [f"column 'page': page_view events without a page in {rows_text(bad)}"]


def arm_not_planned(frame: pd.DataFrame, arm: str = "arm",
                    control: str = CONTROL_ARM) -> list[str]:
    """In a table from `uplift outcomes` (it has ``planned_offer``), a contacted customer's
    arm is the offer the plan gave them: a problem naming the rows where it is not."""
    if "planned_offer" not in frame.columns:
        return []
    given = frame[arm].astype(str).to_numpy()
    planned = frame["planned_offer"].astype(str).to_numpy()
    other = (given != str(control)) & (given != planned)
    if not other.any():
        return []
    return [f"column '{arm}': an offer other than the customer's planned_offer in "
            f"{rows_text(other)} (e.g. {given[other][0]!r} for {planned[other][0]!r}); a "
            "contacted customer's arm is the offer the plan gave them"]


CUSTOMERS = Contract(
    name="customers",
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", "customer identifier (text or whole number), unique"),
        Column("segment", "category", "customer segment (free labels allowed)"),
        Column("open_date", "datetime", "date the relationship started"),
        Column("close_date", "datetime", "date the last account was closed, empty if open",
               required=False, nullable=True),
        Column("aum", "float", "assets under management at the start of the history (currency)",
               required=False, min_value=0.0),
        Column("products_held", "int", "number of products held", required=False, min_value=0),
        Column("age_band", "category", "age band label", required=False, nullable=True),
        Column("marketing_consent", "bool", "customer agreed to marketing contact (blank: no)",
               required=False, nullable=True),
        Column("do_not_contact", "bool", "customer must not be contacted (X/yes/1; blank: "
               "not flagged)", required=False, nullable=True),
    ),
    checks=(_close_after_open,),
)

EVENTS = Contract(
    name="events",
    columns=(
        Column("customer_id", "id", "customer identifier"),
        Column("ts", "datetime", "event time (UTC, no later than the data's end)"),
        Column("event_type", "category", "one of the event vocabulary", allowed=EVENT_TYPES,
               strict=False),
        Column("amount", "float", "money moved (currency, >= 0; 0 for non-monetary events)",
               min_value=0.0),
        Column("channel", "category", f"channel: {', '.join(CHANNELS)}",
               nullable=True),
        Column("page", "category", "page of a page_view", required=False, nullable=True),
        Column("topic", "category", "topic of a service_contact or complaint; "
               "detail changed by a profile_change (phone, address)", required=False,
               nullable=True),
    ),
    checks=(_words_as_the_vocabulary, _page_only_on_page_views, _event_types_known),
)

CAMPAIGN_LOG = Contract(
    name="campaign_log",
    key=("customer_id", "campaign_id"),
    columns=(
        Column("customer_id", "id", "customer identifier"),
        Column("campaign_id", "string", "past campaign identifier"),
        Column("arm", "string", f"offer name or '{CONTROL_ARM}'"),
        Column("assigned_at", "datetime", "assignment date"),
        Column("propensity", "float", "probability of the assigned arm at assignment (0, 1]",
               min_value=0.0, min_exclusive=True, max_value=1.0),
        Column("churned", "binary", "churned within the horizon after assignment (0/1)"),
        Column("value_after", "float", "value in the period after assignment (currency)"),
    ),
    checks=(_control_present,),
)

OUTCOMES = Contract(
    name="outcomes",
    key=("customer_id",),
    columns=(
        Column("customer_id", "id", "customer identifier"),
        Column("arm", "string", f"offer received or '{CONTROL_ARM}' (holdout)"),
        Column("churned", "binary", "churned within the horizon (0/1)", required=False),
        Column("value_after", "float", "value after the campaign (currency)", required=False),
        Column("cost", "float", "money spent on this customer (currency)", required=False,
               min_value=0.0),
        Column("propensity", "float", "assignment probability of the received arm",
               required=False, min_value=0.0, min_exclusive=True, max_value=1.0),
    ),
    checks=(arm_not_planned,),
)

DO_NOT_CONTACT = Contract(
    name="do_not_contact",
    columns=(Column("customer_id", "id", "customer who must not be contacted"),),
)

CONTRACTS: dict[str, Contract] = {
    c.name: c for c in (CUSTOMERS, EVENTS, CAMPAIGN_LOG, OUTCOMES)
}


def check_arms(arms: pd.Series, offers: Sequence[str], *, source: str) -> list[str]:
    """Raise if a campaign's offer never appears in the past campaign log's arms (its effect
    cannot be learned) or the log has no control rows; the log's other arms are fine (learned
    from, not planned): returns a note naming them."""
    present = set(arms.dropna().astype(str))
    missing = [o for o in offers if o not in present]
    problems = []
    if missing:
        problems.append(f"column 'arm': the campaign's offer(s) {', '.join(missing)} never "
                        f"appear, so their effect cannot be learned; the arms are "
                        f"{', '.join(sorted(present))}")
    if CONTROL_ARM not in present:
        problems.append(f"column 'arm': no '{CONTROL_ARM}' rows, so no effect can be measured")
    if problems:
        raise SchemaError(source, problems)
    extra = sorted(present - set(offers) - {CONTROL_ARM})
    return ([f"{source}: arm(s) {', '.join(extra)} of the past campaign are not offered by "
             "this campaign (their rows still inform the models)"] if extra else [])
