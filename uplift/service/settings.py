"""What one service instance serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_BODY_BYTES = 1_000_000
#: how far (days) an event may lie after the latest one stored (or the request's earlier ones)
MAX_DAYS_AHEAD = 3.0


@dataclass
class ServiceSettings:
    """``db``: SQLAlchemy URL or SQLite path; ``data``: a bank folder (customers, events,
    campaign log) that seeds an empty store and that plans are made from; ``model``: a model
    folder from `uplift train`; ``campaign``: the campaign spec (default: the packaged demo
    spec); ``webhooks``: URLs that receive escalations, signed with ``webhook_secret``;
    ``state``: folder for plan files; ``max_days_ahead``: an event more than this many days
    after the latest stored one (and the request's earlier ones) is refused, since the
    data's "today", the as-of date of every score, would jump with it (a year mistyped in
    one record)."""

    db: str
    model: Path
    data: Path | None = None
    campaign: Path | None = None
    config: Path | None = None
    webhooks: list[str] = field(default_factory=list)
    webhook_secret: bytes | None = None
    state: Path = Path("uplift-serve")
    max_body_bytes: int = MAX_BODY_BYTES
    max_days_ahead: float = MAX_DAYS_AHEAD
    replay: Path | None = None        # demo: events to replay after start
    docs: bool = False                # the Swagger UI page at /docs (its scripts from a CDN)
