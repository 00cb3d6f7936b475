"""API tokens and roles.

A token is ``upl_`` followed by 43 random URL-safe characters (256 bits); the store keeps only
its SHA-256, so a copy of the store does not let anyone call the API. A request names its token
in ``Authorization: Bearer <token>``. No token, or an unknown or revoked one: 401. A known token
whose role is not allowed on the route: 403.

Permission matrix (also served in the OpenAPI description and enforced on every route by
:func:`allowed`; ``tests/service/test_access.py`` checks every route x role):

======================================  ======  =======  =======  ========  =======  =====
route                                   viewer  analyst  planner  approver  officer  admin
======================================  ======  =======  =======  ========  =======  =====
GET  /metrics                           yes     yes      yes      yes       yes      yes
GET  /v1/alerts                         yes     yes      yes      yes       yes      yes
GET  /v1/customers/{id}                 -       yes      yes      yes       yes      yes
POST /v1/events                         -       yes      -        -         -        yes
POST /v1/plans                          -       -        yes      -         -        yes
GET  /v1/plans/{id}                     yes     yes      yes      yes       yes      yes
POST /v1/plans/{id}/approve             -       -        -        yes       -        -
GET  /v1/plans/{id}/export              -       -        -        -         yes      -
GET  /v1/plans                          yes     yes      yes      yes       yes      yes
POST /v1/plans/{id}/reject              -       -        -        yes       -        -
GET  /v1/plans/{id}/curve               yes     yes      yes      yes       yes      yes
GET  /v1/campaigns[/{v}[/yaml|/diff/w]] yes     yes      yes      yes       yes      yes
POST /v1/campaigns[/validate]           -       -        yes      -         -        yes
GET  /v1/tiers, /v1/scenarios           yes     yes      yes      yes       yes      yes
POST /v1/tiers, /v1/scenarios           -       -        yes      -         -        yes
POST /v1/results                        -       yes      yes      yes       yes      yes
GET  console pages (/, /campaign, ...)  yes     yes      yes      yes       yes      yes
======================================  ======  =======  =======  ========  =======  =====

The console (``uplift.console``) signs in with a token through ``POST /v1/session``, which
keeps it in an HttpOnly, SameSite=Strict cookie; a request may name its token by that cookie
instead of the header. A request authenticated by the cookie that changes anything must also
carry ``X-Uplift-Console: 1`` (a header no other site can make a browser send), so a page
elsewhere cannot act with a signed-in planner's cookie.

``/healthz``, ``/readyz``, the sign-in page and the console's static files need no token
(load balancers and orchestrators probe the first two; none of them reveals anything).
Approving and exporting are kept from admin on purpose: the four-eyes rule
(approver differs from proposer) and the release of raw ids belong to named business roles.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from uplift.errors import InputError
from uplift.service import schema as t
from uplift.service.store import Store, utcnow

ROLES = ("viewer", "analyst", "planner", "approver", "officer", "admin")
EVERYONE = frozenset(ROLES)

#: (method, route path) -> roles allowed
PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/metrics"): EVERYONE,
    ("GET", "/v1/alerts"): EVERYONE,
    ("GET", "/v1/customers/{customer_id}"): EVERYONE - {"viewer"},
    ("POST", "/v1/events"): frozenset({"analyst", "admin"}),
    ("POST", "/v1/plans"): frozenset({"planner", "admin"}),
    ("GET", "/v1/plans/{plan_id}"): EVERYONE,
    ("POST", "/v1/plans/{plan_id}/approve"): frozenset({"approver"}),
    ("GET", "/v1/plans/{plan_id}/export"): frozenset({"officer"}),
    # the console's JSON routes (uplift.console.api)
    ("GET", "/v1/plans"): EVERYONE,
    ("POST", "/v1/plans/{plan_id}/reject"): frozenset({"approver"}),
    ("GET", "/v1/plans/{plan_id}/curve"): EVERYONE,
    ("GET", "/v1/campaigns"): EVERYONE,
    ("POST", "/v1/campaigns"): frozenset({"planner", "admin"}),
    ("POST", "/v1/campaigns/validate"): frozenset({"planner", "admin"}),
    ("GET", "/v1/campaigns/{version}"): EVERYONE,
    ("GET", "/v1/campaigns/{version}/yaml"): EVERYONE,
    ("GET", "/v1/campaigns/{version}/diff/{other}"): EVERYONE,
    ("GET", "/v1/tiers"): EVERYONE,
    ("POST", "/v1/tiers"): frozenset({"planner", "admin"}),
    ("GET", "/v1/scenarios"): EVERYONE,
    ("POST", "/v1/scenarios"): frozenset({"planner", "admin"}),
    ("POST", "/v1/results"): EVERYONE - {"viewer"},
    # the console's pages (uplift.console.pages)
    ("GET", "/"): EVERYONE,
    ("GET", "/campaign"): EVERYONE,
    ("GET", "/tiers"): EVERYONE,
    ("GET", "/whatif"): EVERYONE,
    ("GET", "/plans"): EVERYONE,
    ("GET", "/plans/{plan_id}"): EVERYONE,
    ("GET", "/alerts"): EVERYONE,
    ("GET", "/results"): EVERYONE,
}
#: no token needed: health probes, the sign-in page and session, the console's static files
PUBLIC = frozenset({("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/login"),
                    ("POST", "/v1/session"), ("DELETE", "/v1/session"),
                    ("GET", "/static/{name}")})
PREFIX = "upl_"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token's name and role."""

    name: str
    role: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def allowed(method: str, route: str, role: str) -> bool:
    """Whether ``role`` may call ``method route`` (route as declared, with {placeholders})."""
    return role in PERMISSIONS.get((method, route), frozenset())


def new_token(store: Store, *, name: str, role: str) -> str:
    """Create a token; returns the secret (shown once, never stored)."""
    if role not in ROLES:
        raise InputError(f"--role {role!r}: roles are {', '.join(ROLES)}")
    if not name.strip():
        raise InputError("--name: a token needs a name (the person or system using it)")
    with store.engine.connect() as connection:
        taken = [n for (n,) in connection.execute(select(t.tokens.c.name))
                 if n.strip().casefold() == name.strip().casefold()]
    if taken:
        raise InputError(f"--name {name!r}: the token {taken[0]!r} exists, and names that "
                         "differ only in case name one person (four eyes); choose another "
                         "name")
    secret = PREFIX + secrets.token_urlsafe(32)
    try:
        with store.begin() as connection:
            connection.execute(t.tokens.insert().values(
                name=name.strip(), role=role, secret_sha256=digest(secret),
                created_at=utcnow()))
    except IntegrityError as exc:
        raise InputError(f"--name {name!r}: a token with this name exists; choose another "
                         "name") from exc
    return secret


def revoke(store: Store, name: str) -> None:
    """Revoke the token named ``name``: every later request with it gets 401 (console
    sessions made with it end too)."""
    with store.begin() as connection:
        done = connection.execute(t.tokens.update().where(
            t.tokens.c.name == name, t.tokens.c.revoked_at.is_(None)).values(
            revoked_at=utcnow())).rowcount
    if not done:
        raise InputError(f"--name {name!r}: no active token has this name (`uplift tokens "
                         "list` shows them)")


def listing(store: Store) -> list[dict[str, str]]:
    """Every token's name, role, creation and revocation time (never the secret)."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.tokens.c.name, t.tokens.c.role,
                                         t.tokens.c.created_at, t.tokens.c.revoked_at)
                                  .order_by(t.tokens.c.name)).all()
    return [{"name": r[0], "role": r[1], "created": f"{r[2]:%Y-%m-%d %H:%M}",
             "revoked": f"{r[3]:%Y-%m-%d %H:%M}" if r[3] else ""} for r in rows]


def identify(store: Store, secret: str | None) -> Caller | None:
    """The caller a bearer secret belongs to; None for a missing, unknown or revoked one."""
    if not secret or not secret.startswith(PREFIX):
        return None
    with store.engine.connect() as connection:
        row = connection.execute(select(t.tokens.c.name, t.tokens.c.role).where(
            t.tokens.c.secret_sha256 == digest(secret), t.tokens.c.revoked_at.is_(None))).first()
    return Caller(row[0], row[1]) if row else None
