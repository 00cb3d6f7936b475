"""Incoming events: the events contract as request fields, checked all at once.

A batch is stored whole or not at all: every problem is reported with its place
(``events[3].amount``) and nothing is stored when there is one.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from uplift.schema import (
    EVENT_TYPES,
    EVENT_VOCABULARIES,
    MAX_ABS_VALUE,
    latest_plausible_date,
    spelling_meant,
)

MAX_EVENTS_PER_REQUEST = 1000
TEXT_FIELDS = ("channel", "page", "topic")
#: what the features compare these fields with; other values are kept (as in the events
#: files) and match no feature's condition, so a value that differs from a known one only by
#: case or spaces (``Account_Closing``) is refused, naming the value meant, instead of being
#: stored and silently ignored
VOCABULARIES = {name: EVENT_VOCABULARIES[name] for name in TEXT_FIELDS}
#: characters a text field may hold (the store's column width)
MAX_TEXT_LENGTH = 64


def request_schema() -> dict[str, Any]:
    """The JSON schema of a ``POST /v1/events`` body, for the OpenAPI document (the checks
    themselves are :func:`parse_batch`'s, which name every problem by field)."""
    text = {"type": ["string", "null"], "maxLength": MAX_TEXT_LENGTH}
    event = {
        "type": "object", "title": "Event", "additionalProperties": False,
        "required": ["customer_id", "ts", "event_type", "amount"],
        "properties": {
            "event_id": {"type": "string", "minLength": 1, "maxLength": 120,
                         "description": "the sender's id of the event (exact text): a retry "
                         "with the same id is a no-op; without it the SHA-256 of the fields "
                         "is the key"},
            "customer_id": {"type": ["string", "integer"], "description": "as the bank "
                            "writes it: 10000004, 10000004.0 and ' 10000004 ' are one "
                            "customer; zero-padded text keeps its zeros"},
            "ts": {"type": "string", "format": "date-time", "description": "ISO 8601; an "
                   "offset is converted to UTC, none means UTC"},
            "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
            "amount": {"type": "number", "minimum": 0, "maximum": MAX_ABS_VALUE,
                       "description": "money moved (currency); 0 for other events"},
            **{name: {**text, "description": f"one of {', '.join(VOCABULARIES[name])}; "
                      "other values are kept and count as other"
                      + ("; a page_view names its page" if name == "page" else "")}
               for name in TEXT_FIELDS},
        },
    }
    batch = {"type": "array", "items": event, "minItems": 1,
             "maxItems": MAX_EVENTS_PER_REQUEST}
    return {"oneOf": [event, batch, {"type": "object", "required": ["events"],
                                     "properties": {"events": batch}}]}


def content_key(record: dict[str, Any]) -> str:
    """SHA-256 (hex, 64 chars) of the canonical JSON of an event's fields: the idempotency
    key of an event sent without ``event_id``."""
    body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_id(value: Any) -> str | None:
    """An id as the store writes it (the canonical text of :mod:`uplift.ids`, as ids read
    from files): ``10000004``, ``10000004.0`` and ``" 10000004 "`` are ``"10000004"``;
    zero-padded text keeps its zeros. None for a missing, empty, true/false or fractional
    value."""
    from uplift.ids import MAX_EXACT_FLOAT, canonical_ids

    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        if not value.is_integer() or abs(value) >= MAX_EXACT_FLOAT:
            return None
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    if value.strip().isdigit():
        return value.strip()                         # the common case, without pandas
    text = canonical_ids(pd.Series([value], dtype="string")).iloc[0]
    return None if pd.isna(text) else str(text)


def _id_problem(value: Any) -> str:
    """Why ``value`` is not a customer id."""
    from uplift.ids import MAX_EXACT_FLOAT

    if isinstance(value, float) and value.is_integer() and abs(value) >= MAX_EXACT_FLOAT:
        return (f"{value!r}: a number this large is not exact in JSON (beyond 2^53); send "
                "the id as text")
    return f"{value!r}: an id is required: text, or a whole number"


def _error(index: int, field: str, message: str) -> dict[str, Any]:
    return {"loc": ["events", index, field], "msg": message}


def _text_problem(value: str, field: str) -> str | None:
    """Why a channel, page or topic text is refused (None: accepted)."""
    if len(value) > MAX_TEXT_LENGTH:
        return f"{len(value):,} characters; at most {MAX_TEXT_LENGTH}"
    known = VOCABULARIES[field]
    meant = spelling_meant(value, known) if value.strip() else None
    if meant is not None:
        return (f"{value!r}: write {meant!r} (the {field} vocabulary, lower case: "
                f"{', '.join(known)}); as written it would match no feature")
    return None


def _ts(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time text")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_batch(body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, errors) from a request body: one event object, a list of them, or
    ``{"events": [...]}``. Events are normalised (UTC naive ``ts``, float ``amount``, a
    ``event_key``); errors are field-level and cover the whole batch."""
    if isinstance(body, dict) and "events" in body:
        extra = sorted(set(body) - {"events"})
        if extra:
            return [], [{"loc": [extra[0]], "msg": "unknown field beside 'events' (check the "
                         "spelling)"}]
        items = body["events"]
    elif isinstance(body, dict):
        items = [body]
    else:
        items = body
    if not isinstance(items, list) or not items:
        return [], [{"loc": ["events"], "msg": "expected one event object, a non-empty list "
                     "of events, or {\"events\": [...]}"}]
    if len(items) > MAX_EVENTS_PER_REQUEST:
        return [], [{"loc": ["events"], "msg": f"{len(items)} events in one request; at most "
                     f"{MAX_EVENTS_PER_REQUEST}"}]
    limit = latest_plausible_date().to_pydatetime()
    known = {"event_id", "customer_id", "ts", "event_type", "amount", *TEXT_FIELDS}
    out: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"loc": ["events", i], "msg": "expected an object"})
            continue
        for name in sorted(set(item) - known):
            errors.append(_error(i, name, f"unknown field; fields are {', '.join(sorted(known))}"))
        rec: dict[str, Any] = {}
        cid = canonical_id(item.get("customer_id"))
        if cid is None:
            errors.append(_error(i, "customer_id", _id_problem(item.get("customer_id"))))
        else:
            rec["customer_id"] = cid
        try:
            rec["ts"] = _ts(item.get("ts"))
            if rec["ts"] >= limit:
                errors.append(_error(i, "ts", f"{item['ts']} is in the future"))
        except ValueError as exc:
            errors.append(_error(i, "ts", f"{item.get('ts')!r}: {exc}"))
        etype = item.get("event_type")
        if etype not in EVENT_TYPES:
            errors.append(_error(i, "event_type", f"{etype!r} is not in the vocabulary "
                                 f"({', '.join(EVENT_TYPES)})"))
        else:
            rec["event_type"] = etype
        amount = item.get("amount", None)
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            errors.append(_error(i, "amount", f"{amount!r}: a number is required (0 for "
                                 "events that move no money)"))
        elif not math.isfinite(amount) or amount < 0 or amount > MAX_ABS_VALUE:
            errors.append(_error(i, "amount", f"{amount!r}: must be finite, >= 0 and <= "
                                 f"{MAX_ABS_VALUE:g}"))
        else:
            rec["amount"] = float(amount)
        for name in TEXT_FIELDS:
            value = item.get(name)
            if value is not None and not isinstance(value, str):
                errors.append(_error(i, name, "must be text or null"))
            elif isinstance(value, str) and (problem := _text_problem(value, name)):
                errors.append(_error(i, name, problem))
            rec[name] = value if isinstance(value, str) and value.strip() else None
        if rec.get("event_type") == "page_view" and rec.get("page") is None:
            errors.append(_error(i, "page", "a page_view names its page (as in the events "
                                 "files' contract)"))
        key = item.get("event_id")
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 120):
            errors.append(_error(i, "event_id", "must be text of 1 to 120 characters"))
        if errors and errors[-1]["loc"][1] == i:
            continue
        rec["event_key"] = f"id:{key}" if key is not None else "h" + content_key(rec)
        out.append(rec)
    return (out, errors) if not errors else ([], errors)


def too_far_ahead(records: list[dict[str, Any]], latest: datetime | None, days: float
                  ) -> list[dict[str, Any]]:
    """Errors for events (from :func:`parse_batch`) more than ``days`` after ``latest``, the
    latest stored event, and the request's earlier events (taken in time order): each would
    move every score's as-of date."""
    if latest is None:
        return []
    latest = pd.Timestamp(latest).to_pydatetime()          # the store's text or datetime
    allowed, reach, out = timedelta(days=days), latest, []
    for i in sorted(range(len(records)), key=lambda k: records[k]["ts"]):
        ts = records[i]["ts"]
        if ts > reach + allowed:
            out.append(_error(i, "ts", (
                f"{ts.isoformat()} is {(ts - latest) / timedelta(days=1):.1f} days after the "
                f"latest stored event ({latest.isoformat()}): every score's as-of date would "
                "move with it; post events in time order, or start the service with a larger "
                f"--max-days-ahead (now {days:g}) after a longer pause of the feed; nothing "
                "was stored")))
        else:
            reach = max(reach, ts)
    return sorted(out, key=lambda e: e["loc"][1])


def as_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Events as a frame with the feature SQL's columns."""
    frame = pd.DataFrame(records, columns=["customer_id", "ts", "event_type", "amount",
                                           "channel", "page", "topic"])
    frame["ts"] = pd.to_datetime(frame["ts"]).astype("datetime64[us]")
    return frame
