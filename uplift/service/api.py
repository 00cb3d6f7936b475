"""The HTTP API (FastAPI): routes only; the work is done by :mod:`uplift.service.scoring`,
:mod:`uplift.service.jobs` and the library."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from uplift.schema import MAX_ABS_VALUE
from uplift.service import auth
from uplift.service import schema as t
from uplift.service.auditing import GroupAudit
from uplift.service.events import request_schema, too_far_ahead
from uplift.service.scoring import EventConflict
from uplift.service.settings import ServiceSettings

DESCRIPTION = ("Events in, churn risk, tier, reasons and the best offer out; tier escalations "
               "as alerts and webhooks; plans with four-eyes approval.\n\n"
               "Every route but /healthz and /readyz needs `Authorization: Bearer <token>` "
               "(`uplift tokens new`). Permission matrix:\n\n" + "\n".join(
                   f"- `{m} {p}`: {', '.join(r for r in auth.ROLES if r in roles)}"
                   for (m, p), roles in auth.PERMISSIONS.items()))


#: how long a request waits for its customers' new scores (seconds)
SCORE_TIMEOUT_S = 60.0


class PlanBody(BaseModel):
    """A plan request: budget (currency of the campaign), optionally the campaign's name and
    a campaign version saved in the console (default: the served spec)."""

    model_config = ConfigDict(extra="forbid")

    budget: float = Field(gt=0, le=MAX_ABS_VALUE)
    campaign: str | None = None
    campaign_version: int | None = Field(None, ge=1)


class ReviewBody(BaseModel):
    """An approval or rejection: the reviewer's comment."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field("", max_length=2000)


SESSION_COOKIE = "uplift_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


#: declares the bearer token in the OpenAPI document (the check itself is :func:`caller`'s)
BEARER = HTTPBearer(auto_error=False, description="`uplift tokens new` prints a token")


async def caller(request: Request, _: Any = Security(BEARER)) -> auth.Caller:
    """The authenticated caller allowed on this route (401 / 403 otherwise). The token comes
    from ``Authorization: Bearer`` or from the console's session cookie; a cookie alone does
    not authorise a change without the console's ``X-Uplift-Console`` header (403)."""
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else None
    by_cookie = secret is None and SESSION_COOKIE in request.cookies
    if by_cookie:
        secret = request.cookies[SESSION_COOKIE]
    who = auth.identify(request.app.state.store, secret)
    if who is None:
        raise HTTPException(401, "a valid API token is required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})
    if by_cookie and request.method not in SAFE_METHODS and \
            request.headers.get("x-uplift-console") != "1":
        raise HTTPException(403, "a change made with the console's cookie needs the "
                            "X-Uplift-Console: 1 header")
    request.state.caller = who
    route = request.scope["route"].path
    if not auth.allowed(request.method, route, who.role):
        raise HTTPException(403, f"role {who.role!r} may not {request.method} {route}")
    return who


def create_app(settings: ServiceSettings, *, start: bool = True) -> FastAPI:
    """Open (and migrate) the store, seed it from ``settings.data`` when empty, load the
    models and start scoring and webhook workers; returns the app."""
    from uplift.campaign import load_campaign_spec
    from uplift.config import load_settings
    from uplift.pipeline import load_models
    from uplift.planner import default_campaign
    from uplift.service.identity import StoreIds
    from uplift.service.jobs import PlanJobs, PlanSources
    from uplift.service.metrics import Metrics
    from uplift.service.scoring import OnlineService
    from uplift.service.seeding import check_same_bank, seed
    from uplift.service.store import Store
    from uplift.service.webhooks import Deliverer

    store = Store(settings.db)
    ids = StoreIds.configured()
    fresh = store.count("customers") == 0
    if fresh:
        if settings.data is None:
            from uplift.errors import InputError

            raise InputError(f"{settings.db}: the store is empty; pass --data with the bank's "
                             "customers and events to seed it")
        seed(store, settings.data, ids=ids)
    ids.check(store)                      # pseudonyms against raw ids: its own message
    if settings.data is not None and not fresh:
        check_same_bank(store, settings.data, ids=ids)
    models = load_models(settings.model)
    spec_path = settings.campaign or default_campaign()
    spec = load_campaign_spec(spec_path)
    config = load_settings(settings.config)
    service = OnlineService(store, models, spec, config, webhooks=settings.webhooks)
    service.check_do_not_contact()
    metrics = Metrics.create(service.version)
    deliverer = None
    if settings.webhooks:
        if not settings.webhook_secret:
            from uplift.errors import InputError

            raise InputError("--webhook needs a signing secret (UPLIFT_WEBHOOK_SECRET)")
        deliverer = Deliverer(store, settings.webhook_secret, on_result=lambda ok: metrics
                              .webhooks.labels(outcome="delivered" if ok else "failed").inc())

    def on_alert(escalations) -> None:
        for e in escalations:
            metrics.alerts.labels(tier=e.payload["tier"]).inc()
        if deliverer is not None:
            deliverer.notify()

    service.on_alert = on_alert
    jobs = PlanJobs(store, PlanSources(settings.data, settings.model, spec_path,
                                       settings.state / "plans"))

    audit_log = GroupAudit()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        audit_log.stop()
        service.stop()
        if deliverer is not None:
            deliverer.stop()
        jobs.stop()

    # Swagger UI loads its scripts from a CDN, which would run on the console's origin:
    # only with --docs (the schema itself is always at /openapi.json)
    app = FastAPI(title="uplift", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs" if settings.docs else None, redoc_url=None)
    app.state.store, app.state.service, app.state.jobs = store, service, jobs
    app.state.metrics, app.state.settings, app.state.deliverer = metrics, settings, deliverer
    app.state.ids = ids
    app.state.ready = False
    if start:
        service.start()
        if deliverer is not None:
            deliverer.start()
        app.state.ready = True

    async def _account(request: Request, status: int, seconds: float) -> None:
        route = request.scope.get("route")
        path = route.path if route is not None else "unmatched"
        metrics.requests.labels(request.method, path, str(status)).inc()
        metrics.latency.labels(request.method, path).observe(seconds)
        if (request.method, path) not in auth.PUBLIC:
            who = getattr(request.state, "caller", None)
            entry = _audit_entry(request, path, status, seconds, who)
            await asyncio.wrap_future(audit_log.record(entry))   # on disk before the response

    app.add_middleware(RequestAccounting, account=_account)

    # -- health ----------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Store reachable, models loaded, scoring worker running."""
        try:
            ok = store.ping() and app.state.ready
        except Exception:
            ok = False
        return JSONResponse({"ready": bool(ok), "model_version": service.version},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"])
    def metrics_text(_: auth.Caller = Depends(caller)) -> Response:
        """Prometheus text format."""
        return Response(metrics.text(), media_type="text/plain; version=0.0.4")

    # -- events ------------------------------------------------------------------------------
    @app.post("/v1/events", tags=["events"], openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": request_schema()}}}})
    async def post_events(request: Request, _: auth.Caller = Depends(caller)) -> JSONResponse:
        """Store one or many events (all or nothing), re-score the customers they name and
        return their new scores. Retried events (same ``event_id``, or same content when no
        id is given) are not stored twice."""
        from uplift.service.events import parse_batch

        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            raise HTTPException(413, f"body of {int(length):,} bytes; at most "
                                f"{settings.max_body_bytes:,}")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise HTTPException(413, f"body of {len(body):,} bytes; at most "
                                f"{settings.max_body_bytes:,}")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"detail": [{"loc": ["body"], "msg": f"not JSON: {exc}"}]},
                                status_code=422)
        records, errors = parse_batch(payload)
        raw_of: dict[str, str] = {}             # store id -> the id the caller wrote
        if not errors:
            for record, stored_as in zip(records, ids.to_store(
                    [r["customer_id"] for r in records]), strict=True):
                raw_of[stored_as] = record["customer_id"]
                record["customer_id"] = stored_as
            known = service.known({r["customer_id"] for r in records})
            errors = [{"loc": ["events", i, "customer_id"],
                       "msg": f"unknown customer {raw_of[r['customer_id']]!r}"
                              f"{padding_hint(raw_of[r['customer_id']])}; nothing was stored"}
                      for i, r in enumerate(records) if r["customer_id"] not in known]
            errors += too_far_ahead(records, service.latest_event_ts(),
                                    settings.max_days_ahead)
        if errors:
            metrics.events.labels(outcome="rejected").inc(
                len(payload) if isinstance(payload, list) else 1)
            return JSONResponse({"detail": errors}, status_code=422)
        try:
            # stored (with the events other requests posted meanwhile, in one commit) and
            # scored by the worker; awaited, so no request thread waits on it
            stored, duplicates, scores = await asyncio.wait_for(
                asyncio.wrap_future(service.ingest(records)), SCORE_TIMEOUT_S)
        except EventConflict as exc:
            metrics.events.labels(outcome="rejected").inc(len(records))
            return JSONResponse({"detail": [
                {"loc": ["events", i, "event_id"],
                 "msg": f"event_id {records[i]['event_key'][3:]!r} was already used for a "
                        "different event; a retry must repeat its event exactly; nothing "
                        "was stored"} for i in exc.positions]}, status_code=409)
        metrics.events.labels(outcome="stored").inc(stored)
        metrics.events.labels(outcome="duplicate").inc(duplicates)
        failed = {c for c, r in scores.items() if "error" in r}
        unscored = [{"customer_id": raw_of[c], "error": scores.pop(c)["error"]}
                    for c in sorted(failed, key=lambda c: raw_of[c])]
        if unscored:
            metrics.events.labels(outcome="unscored").inc(len(unscored))
        named = sorted({r["customer_id"] for r in records} - failed, key=lambda c: raw_of[c])
        missing = [c for c in named if c not in scores]
        if missing:                         # retried events: the scores already stored
            scores.update(await run_in_threadpool(_stored_scores, missing))
        out = {"stored": stored, "duplicates": duplicates,
               "customers": [{**_score_json(scores[c]), "customer_id": raw_of[c]}
                             for c in named if c in scores]}
        if unscored:
            out["unscored"] = unscored
        return JSONResponse(out)

    def padding_hint(written: str) -> str:
        """'; '0010000004' is known: ...' when ``written`` is an unknown id whose zero
        padding differs from a known customer's (else "")."""
        if not written.isdigit():
            return ""
        variants = [v for v in [written.lstrip("0"), *(written.zfill(n) for n in
                    range(len(written) + 1, 21))] if v and v != written]
        stored = ids.to_store(variants)
        known = service.known(set(stored))
        found = [v for v, k in zip(variants, stored, strict=True) if k in known]
        return (f"; {found[0]!r} is known: ids are compared as text with their leading zeros"
                if found else "")

    def _stored_scores(ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored scores of ``ids`` as a fresh score is answered (``open`` included)."""
        with store.engine.connect() as connection:
            rows = connection.execute(select(t.scores).where(
                t.scores.c.customer_id.in_(ids))).mappings().all()
        return {row["customer_id"]: {
            **{k: v for k, v in row.items() if k not in ("features", "last_seq")},
            "open": service.closed_before(row["customer_id"], row["as_of"]) is None}
            for row in rows}

    # -- customers and alerts ----------------------------------------------------------------
    @app.get("/v1/customers/{customer_id}", tags=["customers"])
    def get_customer(customer_id: str, _: auth.Caller = Depends(caller)) -> dict[str, Any]:
        """Current risk, tier, reasons, the best offer under the campaign spec (expected net
        gain and its 95% interval, currency), model version and scoring time."""
        from uplift.service.events import canonical_id

        written = canonical_id(customer_id)
        view = service.customer_view(ids.to_store([written])[0]) if written else None
        if view is None:
            raise HTTPException(404, f"customer {customer_id!r} is not known to the service"
                                + padding_hint(written or ""))
        return {**view, "customer_id": written}          # as POST answers: canonical

    @app.get("/v1/alerts", tags=["alerts"])
    def get_alerts(request: Request, tier: str | None = None, since: datetime | None = None,
                   segment: str | None = None, after: int = Query(0, ge=0),
                   limit: int = Query(100, ge=1, le=1000),
                   _: auth.Caller = Depends(caller)) -> dict[str, Any]:
        """Tier escalations, oldest first; page with ``after`` = the last id seen. An unknown
        tier, segment or parameter is a 422 (a typo never reads as "no alerts")."""
        problems = [{"loc": ["query", name], "msg": "unknown parameter; parameters are tier, "
                     "since, segment, after, limit"} for name in request.query_params
                    if name not in ("tier", "since", "segment", "after", "limit")]
        if tier is not None and tier not in service.tier_rank:
            problems.append({"loc": ["query", "tier"], "msg": f"{tier!r}: tiers are "
                             f"{', '.join(service.tier_rank)}"})
        segments = set(service.segments())
        if segment is not None and segment not in segments:
            problems.append({"loc": ["query", "segment"], "msg": f"{segment!r}: segments are "
                             f"{', '.join(sorted(segments))}"})
        if problems:
            raise HTTPException(422, problems)
        query = select(t.alerts).where(t.alerts.c.id > after).order_by(t.alerts.c.id)
        if tier is not None:
            query = query.where(t.alerts.c.tier == tier)
        if segment is not None:
            query = query.where(t.alerts.c.segment == segment)
        if since is not None:
            if since.tzinfo is not None:
                from datetime import UTC

                since = since.astimezone(UTC).replace(tzinfo=None)
            query = query.where(t.alerts.c.created_at >= since)
        from uplift.service.webhooks import alert_json

        with store.engine.connect() as connection:
            rows = connection.execute(query.limit(limit + 1)).mappings().all()
        page = [alert_json(r) for r in rows[:limit]]
        return {"alerts": page, "next_after": page[-1]["id"] if len(rows) > limit else None}

    # -- plans -------------------------------------------------------------------------------
    @app.post("/v1/plans", tags=["plans"], status_code=202)
    def post_plan(body: PlanBody, who: auth.Caller = Depends(caller)) -> dict[str, Any]:
        """Queue a plan (budget in the campaign's currency) on the served campaign spec."""
        if body.campaign is not None and body.campaign != spec.name:
            raise HTTPException(422, [{"loc": ["body", "campaign"], "msg": f"this service "
                                       f"plans campaign {spec.name!r} only"}])
        path = None
        if body.campaign_version is not None:
            from uplift.console.store import campaign_file

            path = campaign_file(store, settings.state, body.campaign_version)
            if path is None:
                raise HTTPException(422, [{"loc": ["body", "campaign_version"], "msg":
                                           f"campaign version {body.campaign_version} not "
                                           "found"}])
        plan_id = jobs.submit(who.name, body.budget, str(path) if path else None)
        return {"id": plan_id, "status": "queued"}

    @app.get("/v1/plans/{plan_id}", tags=["plans"])
    def get_plan(plan_id: int, _: auth.Caller = Depends(caller)) -> dict[str, Any]:
        plan = jobs.get(plan_id)
        if plan is None:
            raise HTTPException(404, f"plan {plan_id} not found")
        return plan

    @app.post("/v1/plans/{plan_id}/approve", tags=["plans"])
    def approve_plan(plan_id: int, body: ReviewBody | None = None,
                     who: auth.Caller = Depends(caller)) -> dict[str, Any]:
        """Approve a finished plan, optionally with a comment; the approver must not be its
        proposer (four eyes)."""
        from uplift.console.store import record_review, reviews

        if any(r["decision"] == "rejected" for r in reviews(store, plan_id)):
            raise HTTPException(409, f"plan {plan_id} was rejected; propose a new plan")
        code, message = jobs.approve(plan_id, who.name)
        if code:
            raise HTTPException(code, message)

        record_review(store, plan_id, who.name, "approved", body.comment if body else "")
        return {"id": plan_id, "approved_by": who.name}

    @app.get("/v1/plans/{plan_id}/export", tags=["plans"])
    def export_plan(plan_id: int, who: auth.Caller = Depends(caller)) -> PlainTextResponse:
        """The approved plan's call list with raw customer ids (CSV); the release is written
        to the audit log before any id is sent."""
        from uplift.security import audit
        from uplift.security.export import export_call_list

        code, message, path = jobs.export_path(plan_id)
        if code:
            raise HTTPException(code, message)
        out = path.with_name(f"export-{int(time.time() * 1000)}.csv")
        data = settings.data
        rows, _ = export_call_list(path, out, customers=lambda: _customers_file(data))
        audit.append("serve export (release)", [f"plan={plan_id}", f"rows={rows}"],
                     audit.Recorder(inputs={str(path): None}, outputs={}), exit_code=0,
                     message=f"releasing {rows:,} raw customer ids to {who.name}",
                     seconds=0.0, who=who.name)
        text = out.read_text()
        out.unlink()
        return PlainTextResponse(text, media_type="text/csv")

    from uplift.console import mount

    mount(app)
    return app


def _customers_file(data):
    from uplift.features import FeatureInputs

    return FeatureInputs.from_folder(data).customers


def _score_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if hasattr(out.get("scored_at"), "isoformat"):
        out["scored_at"] = out["scored_at"].isoformat() + "Z"
    return out


class RequestAccounting:
    """Counts, times and audits every request before its response leaves (a plain ASGI
    middleware: Starlette's ``@app.middleware("http")`` passes each request through an extra
    task and stream, a measurable share of a request's time at hundreds a second).
    ``account(request, status, seconds)`` is awaited before the response starts; a request
    the app fails on is accounted as a 500 and the failure passed on."""

    def __init__(self, app, account):
        self.app, self.account = app, account

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def sending(message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await self.account(Request(scope), message["status"],
                                   time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:          # the server's own failure: counted and audited as a 500
            if not answered:
                await self.account(Request(scope), 500, time.perf_counter() - started)
            raise


def _audit_entry(request: Request, path: str, status: int, seconds: float, who
                 ) -> dict[str, Any]:
    from uplift.security import audit

    return audit.new_entry("serve", [request.method, path, request.url.path], audit.Recorder(),
                           exit_code=0 if status < 400 else status, message=f"HTTP {status}",
                           seconds=seconds,
                           who=f"{who.name} ({who.role})" if who else "anonymous")

