"""The console's pages: each is rendered on the server from the store and the library, and
its actions call the JSON API from the page's script (``static/console.js``)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from sqlalchemy import select

from uplift.console import store as cs
from uplift.service import auth
from uplift.service import schema as t
from uplift.service.api import SESSION_COOKIE

router = APIRouter(include_in_schema=False)
HERE = Path(str(resources.files("uplift.console")))
STATIC = HERE / "static"
_env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                   autoescape=select_autoescape(["html"]))


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


_env.filters["money"] = lambda v: "—" if _missing(v) else f"{float(v):,.0f}"
_env.filters["pct"] = lambda v: "—" if _missing(v) else f"{100 * float(v):.1f}%"
NAV = [("/", "Overview"), ("/campaign", "Campaign"), ("/tiers", "Alert tiers"),
       ("/whatif", "What-if"), ("/plans", "Plans"), ("/alerts", "Alerts"),
       ("/results", "Results")]


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(nav=NAV, **context),
                        status_code=status)


def signed_in(request: Request) -> auth.Caller | None:
    """The caller of a page (session cookie or bearer token); the page's 401/403 otherwise."""
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else \
        request.cookies.get(SESSION_COOKIE)
    who = auth.identify(request.app.state.store, secret)
    if who is None:
        raise HTTPException(401, "sign in")
    request.state.caller = who
    route = request.scope["route"].path
    if not auth.allowed("GET", route, who.role):
        raise HTTPException(403, f"role {who.role!r} may not open {route}")
    return who


def can(who: auth.Caller, method: str, route: str) -> bool:
    return auth.allowed(method, route, who.role)


def gate(request: Request) -> HTMLResponse | None:
    """None for a signed-in caller allowed on the page (checked before the page reads
    anything); the sign-in page (401) or a refusal (403) otherwise."""
    try:
        signed_in(request)
    except HTTPException as exc:
        if exc.status_code == 401:
            return render("login.html", 401, title="Sign in", who=None, path="/login")
        return render("error.html", exc.status_code, title="Not allowed", who=None,
                      path=request.url.path, message=exc.detail)
    return None


def page(request: Request, name: str, title: str, **context: Any) -> HTMLResponse:
    """Render a page for the caller :func:`gate` let in."""
    who = request.state.caller
    return render(name, who=who, title=title, path=request.url.path,
                  can=lambda m, r: can(who, m, r), **context)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """The console's own CSS and script (shipped in the package)."""
    path = STATIC / name
    if not re.fullmatch(r"[a-z0-9_-]+\.(css|js|svg)", name) or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.get("/login")
def login(request: Request) -> HTMLResponse:
    return render("login.html", title="Sign in", who=None, path="/login")


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    state = request.app.state
    scores, closed = state.service.open_scores("tier")
    with state.store.engine.connect() as connection:
        alerts = connection.execute(select(_count()).select_from(t.alerts)).scalar()
    tiers: dict[str, int] = {}
    for _, tier in scores:
        tiers[tier] = tiers.get(tier, 0) + 1
    return page(request, "overview.html", "Overview", tiers=tiers, alerts=alerts,
                closed=closed,
                plans=cs.plans(state.store, 5), campaign=cs.campaigns(state.store)[0])


def _count():
    from sqlalchemy import func

    return func.count()


@router.get("/campaign")
def campaign_page(request: Request, version: int | None = None,
                  diff: int | None = None) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    store = request.app.state.store
    versions = cs.campaigns(store)
    current = cs.campaign(store, version or versions[0]["version"])
    if current is None:
        raise HTTPException(404, f"campaign version {version} not found")
    changes = None
    if diff is not None:
        changes = cs.campaign_diff(store, diff, current["version"])
    from uplift.campaign import Offer

    channels = Offer.model_fields["channel"].annotation.__args__
    return page(request, "campaign.html", "Campaign", versions=versions, current=current,
                spec=current["spec"], diff=diff, changes=changes, channels=channels)


@router.get("/tiers")
def tiers_page(request: Request) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    from uplift.console.api import tier_evidence

    versions = cs.tier_versions(request.app.state.store)
    evidence = tier_evidence(request, dict(versions[0]["thresholds"]))
    return page(request, "tiers.html", "Alert tiers", versions=versions, evidence=evidence)


@router.get("/whatif")
def whatif_page(request: Request, plan: int | None = None) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    store = request.app.state.store
    done = [p for p in cs.plans(store) if p["status"] in ("done",)]
    chosen = plan or (done[0]["id"] if done else None)
    return page(request, "whatif.html", "What-if", plans=done, chosen=chosen,
                scenarios=cs.scenarios(store))


@router.get("/plans")
def plans_page(request: Request) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    store = request.app.state.store
    return page(request, "plans.html", "Plans", plans=cs.plans(store),
                versions=cs.campaigns(store))


@router.get("/plans/{plan_id}")
def plan_page(plan_id: int, request: Request) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    plan = request.app.state.jobs.get(plan_id)
    if plan is None:
        raise HTTPException(404, f"plan {plan_id} not found")
    reviews = cs.reviews(request.app.state.store, plan_id)
    rejected = any(r["decision"] == "rejected" for r in reviews)
    return page(request, "plan.html", f"Plan {plan_id}", plan=plan, s=plan["summary"] or {},
                reviews=reviews, rejected=rejected)


@router.get("/alerts")
def alerts_page(request: Request, tier: str | None = None, segment: str | None = None,
                reason: str | None = None) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    from uplift.service.webhooks import alert_json

    store = request.app.state.store
    query = select(t.alerts).order_by(t.alerts.c.id.desc()).limit(500)
    if tier:
        query = query.where(t.alerts.c.tier == tier)
    if segment:
        query = query.where(t.alerts.c.segment == segment)
    with store.engine.connect() as connection:
        rows = [alert_json(r) for r in connection.execute(query).mappings()]
        segments = sorted(r[0] for r in connection.execute(
            select(t.customers.c.segment).distinct()))
    reasons = sorted({_reason(x) for r in rows for x in r["reasons"] or []})
    tiers = list(request.app.state.service.tier_rank)
    unknown = [f"{name} {value!r} is not one of {', '.join(known) or 'none'}"
               for name, value, known in (("tier", tier, tiers), ("segment", segment, segments))
               if value and value not in known]
    if reason and reason not in reasons:
        unknown.append(f"reason {reason!r} is not a reason of the latest 500 alerts")
    if reason:
        rows = [r for r in rows if reason in {_reason(x) for x in r["reasons"] or []}]
    if unknown:
        rows = []
    if rows:
        # pseudonyms when a pseudonym key is set (as the plans carry them), raw ids otherwise
        import pandas as pd

        from uplift.security.pseudonym import protect_ids

        shown = protect_ids(pd.DataFrame({"customer_id": [r["customer_id"] for r in rows]}),
                            source="alerts")["customer_id"]
        for row, name in zip(rows, shown, strict=True):
            row["shown_id"] = str(name)
    plan_id, offers = latest_offers(request)
    return page(request, "alerts.html", "Alerts", alerts=rows[:200], segments=segments,
                reasons=reasons, tiers=tiers, unknown=unknown,
                chosen={"tier": tier, "segment": segment, "reason": reason},
                plan_id=plan_id, offers=offers)


def latest_offers(request: Request) -> tuple[int | None, dict[str, str]]:
    """The offer each contacted customer gets in the latest approved plan, by id."""
    from uplift import io

    with request.app.state.store.engine.connect() as connection:
        row = connection.execute(select(t.plans.c.id, t.plans.c.folder).join(
            t.approvals, t.approvals.c.plan_id == t.plans.c.id).order_by(
            t.plans.c.id.desc()).limit(1)).first()
    if row is None or not (Path(row[1]) / "plan.csv").exists():
        return None, {}
    plan = io.read_table(Path(row[1]) / "plan.csv", derived=True)
    if "offer" not in plan.columns:
        return row[0], {}
    contacted = plan[plan["holdout"] == 0] if "holdout" in plan.columns else plan
    return row[0], dict(zip(contacted["customer_id"].astype(str),
                            contacted["offer"].astype(str), strict=True))


def _reason(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("reason") or value.get("name") or value)
    return str(value)


@router.get("/results")
def results_page(request: Request) -> HTMLResponse:
    if (refused := gate(request)) is not None:
        return refused
    return page(request, "results.html", "Results")
