"""The console's JSON routes: everything a console page does is one of these calls (or a
route of :mod:`uplift.service.api`), so it can be scripted with a token as well."""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from uplift.campaign import CampaignSpec
from uplift.console import store as cs
from uplift.errors import UpliftError
from uplift.schema import MAX_ABS_VALUE
from uplift.service import auth
from uplift.service import schema as t
from uplift.service.api import SESSION_COOKIE, ReviewBody, caller

router = APIRouter()


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class TiersBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, float]


class ScenarioBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    plan_id: int
    budget: float = Field(gt=0, le=MAX_ABS_VALUE)


class ResultsBody(BaseModel):
    """An outcomes table (CSV text) and the columns the A/B evaluation reads. ``retention``:
    the metric is 1 for a customer who stayed (then customers kept are counted); a metric
    named ``churned`` counts leavers and is refused with it. ``propensity`` (default: the
    table's ``propensity`` column when it has one) is checked to be uniform within each arm
    (and stratum): a design that varies needs ``strata``."""

    model_config = ConfigDict(extra="forbid")

    csv: str = Field(min_length=1, max_length=50_000_000)
    arm: str = "arm"
    control: str = "control"
    metric: str = "churned"
    retention: bool = False
    cost: str | None = None
    value: str | None = None
    segment: str | None = None
    strata: str | None = None
    propensity: str | None = None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``{"loc": "offers.0.cost.fixed", "msg": ...}`` (the form's field
    names), the form-level ones with loc ""."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        if not loc:                    # the spec's cross-field rules name their field
            if m := re.match(r"capacities\[(\d+)\]", msg):
                loc = f"capacities.{m[1]}.offer"
            elif m := re.match(r"min_roi: unknown offer '([^']+)'", msg):
                loc = f"min_roi.{m[1]}"
            elif msg.startswith("offer name(s) listed twice"):
                loc = "offers"
        out.append({"loc": loc, "msg": msg})
    return out


def _invalid(errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"detail": errors, "saved": False}, status_code=422)


# -- session --------------------------------------------------------------------------------
@router.post("/v1/session", tags=["console"])
def open_session(body: SessionBody, request: Request) -> JSONResponse:
    """Sign in with a token: the console keeps it in an HttpOnly, SameSite=Strict cookie."""
    who = auth.identify(request.app.state.store, body.token.strip())
    if who is None:
        return JSONResponse({"detail": [{"loc": "token", "msg": "unknown or revoked token"}]},
                            status_code=401)
    response = JSONResponse({"name": who.name, "role": who.role})
    response.set_cookie(SESSION_COOKIE, body.token.strip(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.delete("/v1/session", tags=["console"])
def close_session() -> JSONResponse:
    """Sign out (forget the cookie)."""
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- plans ----------------------------------------------------------------------------------
@router.get("/v1/plans", tags=["plans"])
def list_plans(request: Request, _: auth.Caller = Depends(caller)) -> dict[str, Any]:
    """The latest 50 plans, newest first."""
    return {"plans": cs.plans(request.app.state.store)}


@router.post("/v1/plans/{plan_id}/reject", tags=["plans"])
def reject_plan(plan_id: int, body: ReviewBody, request: Request,
                who: auth.Caller = Depends(caller)) -> dict[str, Any]:
    """Reject a finished, unapproved plan with a comment (the comment is required)."""
    store = request.app.state.store
    if not body.comment.strip():
        raise HTTPException(422, [{"loc": ["body", "comment"],
                                   "msg": "say why the plan is rejected"}])
    plan = request.app.state.jobs.get(plan_id)
    if plan is None:
        raise HTTPException(404, f"plan {plan_id} not found")
    if plan["status"] != "done" or plan["approved_by"]:
        raise HTTPException(409, f"plan {plan_id} is {plan['status']}"
                            f"{', approved' if plan['approved_by'] else ''}; only a finished, "
                            "unapproved plan can be rejected")
    if plan["proposer"] == who.name:
        raise HTTPException(409, "the proposer cannot review their own plan (four eyes)")
    cs.record_review(store, plan_id, who.name, "rejected", body.comment.strip())
    return {"id": plan_id, "rejected_by": who.name}


def plan_folder(request: Request, plan_id: int) -> Path:
    with request.app.state.store.engine.connect() as connection:
        row = connection.execute(select(t.plans.c.status, t.plans.c.folder).where(
            t.plans.c.id == plan_id)).first()
    if row is None:
        raise HTTPException(404, f"plan {plan_id} not found")
    if row[0] != "done":
        raise HTTPException(409, f"plan {plan_id} is {row[0]}; the what-if curve comes with "
                            "a finished plan")
    return Path(row[1])


def plan_spec(request: Request, plan_id: int) -> CampaignSpec:
    from uplift.campaign import load_campaign_spec

    with request.app.state.store.engine.connect() as connection:
        path = connection.execute(select(t.plans.c.campaign).where(
            t.plans.c.id == plan_id)).scalar()
    return load_campaign_spec(path) if path else request.app.state.service.spec


def solved_points(request: Request, plan_id: int) -> list[dict[str, Any]]:
    """The plan's what-if points as the plan job solved them."""
    import json

    from uplift.service.jobs import WHATIF_FILE

    path = plan_folder(request, plan_id) / WHATIF_FILE
    if not path.exists():
        raise HTTPException(404, f"plan {plan_id} has no what-if curve")
    return json.loads(path.read_text(encoding="utf-8"))


def curve_for(request: Request, plan_id: int) -> dict[str, Any]:
    """The plan's what-if curve, read once and kept in memory."""
    cache = request.app.state.console_curves
    if plan_id not in cache:
        from uplift.console.whatif import curve

        solved = solved_points(request, plan_id)
        data = curve(solved["points"], plan_spec(request, plan_id))
        plan = request.app.state.jobs.get(plan_id)
        summary = plan.get("summary") or {}
        data.update({"plan_id": plan_id, "plan_budget": plan["budget"],
                     "candidates": solved.get("customers"),
                     "excluded": summary.get("excluded") or {},
                     "solved": [{k: _finite(p.get(k)) for k in ("budget", "spend",
                                                               "expected_gain", "rules")}
                                for p in summary.get("curve") or []]})
        cache[plan_id] = data
    return cache[plan_id]


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


@router.get("/v1/plans/{plan_id}/curve", tags=["plans"])
def get_curve(plan_id: int, request: Request, _: auth.Caller = Depends(caller)
              ) -> dict[str, Any]:
    """The precomputed what-if curve of a finished plan: gain, spend, marginal ROI, offer mix
    and binding rules with shadow prices on a grid of budgets up to twice the plan's."""
    return curve_for(request, plan_id)


# -- campaign versions ----------------------------------------------------------------------
def _spec_or_errors(raw: Any) -> tuple[CampaignSpec | None, list[dict[str, str]]]:
    if not isinstance(raw, dict):
        return None, [{"loc": "", "msg": "expected the campaign as a JSON object"}]
    try:
        return CampaignSpec.model_validate(raw), []
    except ValidationError as exc:
        return None, field_errors(exc)


def bank_errors(request: Request, spec: CampaignSpec) -> tuple[list[dict[str, str]],
                                                                list[str]]:
    """The spec against the bank's customers (columns its rules name, consent, segments):
    errors placed on the fields they concern, and each offer's eligible share."""
    import re

    from uplift.validation import check_spec_columns

    try:
        notes = check_spec_columns(spec, request.app.state.service.customers(),
                                   source="the bank's customers")
    except UpliftError as exc:
        lines = [x.strip().removeprefix("- ") for x in str(exc).splitlines()[1:]] or [
            str(exc).split(": ", 1)[-1]]
        names = spec.offer_names
        errors = []
        for line in lines:
            loc = ""
            if m := re.match(r"offer '([^']+)' eligibility", line):
                loc = f"offers.{names.index(m[1])}.eligibility" if m[1] in names else ""
            elif m := re.match(r"segment_quotas\[(\d+)\]", line):
                loc = f"segment_quotas.{m[1]}.segment"
            elif line.startswith("holdout_stratify"):
                loc = "holdout_stratify"
            elif "marketing_consent" in line:
                loc = "require_consent"
            errors.append({"loc": loc, "msg": line})
        return errors, []
    errors = (offer_errors(request, spec) + eligibility_errors(request, spec)
              + do_not_contact_errors(request, spec))
    return errors, ([] if errors else [n.strip() for n in notes])


def eligibility_errors(request: Request, spec: CampaignSpec) -> list[dict[str, str]]:
    """An eligibility rule that matches no customer of the bank (a typo in a value, e.g.
    ``segment == 'privat_banking'``): the offer could never be given."""
    from uplift.campaign import eligible

    customers = request.app.state.service.customers()
    return [{"loc": f"offers.{i}.eligibility", "msg": (
        f"{offer.eligibility!r} matches none of the bank's {len(customers):,} customers (a "
        "typo in a value?); the offer could never be given")}
        for i, offer in enumerate(spec.offers)
        if offer.eligibility is not None and len(customers)
        and not eligible(customers, offer, source="the bank's customers").any()]


def offer_errors(request: Request, spec: CampaignSpec) -> list[dict[str, str]]:
    """Offers the served models never saw in the past campaign: every plan would refuse
    them (their effect cannot be estimated)."""
    models = request.app.state.service.models
    known = list(models.effects_churn.arms)
    return [{"loc": f"offers.{i}.name", "msg": (
        f"offer {offer.name!r} was not in the past campaign the models learned from (arms: "
        f"{', '.join(known)}): its effect cannot be estimated, so no plan can use it")}
        for i, offer in enumerate(spec.offers) if offer.name not in known]


def do_not_contact_errors(request: Request, spec: CampaignSpec) -> list[dict[str, str]]:
    """The do-not-contact list must be a readable table with customer_id inside the bank's
    data folder or the service's state folder (a path is resolved as a plan resolves it,
    beside the saved campaign); other files of the server are never read."""
    if spec.do_not_contact is None:
        return []
    settings = request.app.state.settings
    path = Path(spec.do_not_contact)
    if not path.is_absolute():
        path = Path(settings.state) / "campaigns" / path
    path = path.resolve()
    folders = [Path(f).resolve() for f in (settings.data, settings.state) if f is not None]
    where = " or ".join(str(f) for f in folders)
    if not any(path.is_relative_to(f) for f in folders):
        return [{"loc": "do_not_contact", "msg": f"the list must be inside {where} (the bank's "
                 "data or the service's state folder); give its full path there"}]
    if not path.is_file():
        return [{"loc": "do_not_contact", "msg": f"no such file {path}"}]
    try:
        from uplift import io

        listed = io.read_table(path, allow_empty=True)
    except UpliftError:
        return [{"loc": "do_not_contact", "msg": f"{path} cannot be read as a table (CSV or "
                 "Parquet)"}]
    if "customer_id" not in listed.columns:
        return [{"loc": "do_not_contact", "msg": f"{path} has no customer_id column"}]
    from uplift.allocate.rules import checked_do_not_contact

    try:
        with warnings.catch_warnings():            # unmatched entries: fine, as in a plan
            warnings.simplefilter("ignore")
            checked_do_not_contact(listed, request.app.state.service.customers(), str(path),
                                   "the bank's customers")
    except UpliftError as exc:
        return [{"loc": "do_not_contact", "msg": str(exc).split("\n  - ")[-1]}]
    return []


@router.get("/v1/campaigns", tags=["campaigns"])
def list_campaigns(request: Request, _: auth.Caller = Depends(caller)) -> dict[str, Any]:
    """Every saved version of the campaign with who saved it and when, newest first."""
    return {"versions": cs.campaigns(request.app.state.store)}


@router.post("/v1/campaigns/validate", tags=["campaigns"])
async def validate_campaign(request: Request, _: auth.Caller = Depends(caller)) -> Response:
    """Check a campaign (JSON object, the YAML's keys) with ``CampaignSpec`` and against the
    bank's customers; nothing is saved. 200 ``{"valid": true, "notes": [eligible shares]}`` or
    422 with one error per field."""
    spec, errors = _spec_or_errors(await _json(request))
    if errors:
        return _invalid(errors)
    errors, notes = bank_errors(request, spec)
    if errors:
        return _invalid(errors)
    return JSONResponse({"valid": True, "name": spec.name, "notes": notes})


@router.post("/v1/campaigns", tags=["campaigns"], status_code=201)
async def save_campaign(request: Request, who: auth.Caller = Depends(caller)) -> Response:
    """Save a valid campaign (``CampaignSpec``, and its rules fit the bank's customers) as a
    new version (who/when recorded); 422 and nothing saved on any error."""
    spec, errors = _spec_or_errors(await _json(request))
    if not errors:
        errors, _ = bank_errors(request, spec)
    if errors:
        return _invalid(errors)
    return JSONResponse(cs.save_campaign(request.app.state.store, spec, who.name),
                        status_code=201)


async def _json(request: Request) -> Any:
    import json

    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": f"not JSON: {exc}"}]) from exc


def _version(request: Request, version: int) -> dict[str, Any]:
    found = cs.campaign(request.app.state.store, version)
    if found is None:
        raise HTTPException(404, f"campaign version {version} not found")
    return found


@router.get("/v1/campaigns/{version}", tags=["campaigns"])
def get_campaign(version: int, request: Request, _: auth.Caller = Depends(caller)
                 ) -> dict[str, Any]:
    return _version(request, version)


@router.get("/v1/campaigns/{version}/yaml", tags=["campaigns"])
def get_campaign_yaml(version: int, request: Request, _: auth.Caller = Depends(caller)
                      ) -> PlainTextResponse:
    """The version as the YAML file `uplift plan --campaign` reads."""
    found = _version(request, version)
    text = cs.campaign_text(request.app.state.store, version)
    return PlainTextResponse(text, media_type="application/yaml", headers={
        "Content-Disposition": f'attachment; filename="{found["name"]}-v{version}.yaml"'})


@router.get("/v1/campaigns/{version}/diff/{other}", tags=["campaigns"])
def diff_campaigns(version: int, other: int, request: Request,
                   _: auth.Caller = Depends(caller)) -> PlainTextResponse:
    """Unified diff of two versions' YAML."""
    _version(request, version)
    _version(request, other)
    return PlainTextResponse(cs.campaign_diff(request.app.state.store, version, other) or "")


# -- alert tiers ----------------------------------------------------------------------------
def tier_evidence(request: Request, thresholds: dict[str, float]) -> dict[str, Any]:
    """Customers per tier now (the store's latest scores of the customers still open; those
    who have left are counted apart) and, per tier, the churn observed among the past
    campaign's control group (risk predicted at assignment)."""
    from uplift.config import assign_tiers

    scores, left = request.app.state.service.open_scores("churn_risk")
    risk = np.array([r for _, r in scores], dtype=float)
    names = [n for n, _ in sorted(thresholds.items(), key=lambda kv: -kv[1])] + ["green"]
    now = pd.Series(assign_tiers(risk, thresholds)).value_counts()
    held = held_out(request)
    rows = []
    for name in names:
        row = {"tier": name, "customers": int(now.get(name, 0)), "held_out_customers": None,
               "held_out_churn": None}
        if held is not None:
            tiers = assign_tiers(held[0], thresholds)
            mask = tiers == name
            row["held_out_customers"] = int(mask.sum())
            row["held_out_churn"] = float(held[1][mask].mean()) if mask.any() else None
        rows.append(row)
    return {"thresholds": thresholds, "scored": int(len(risk)), "closed_not_counted": left,
            "tiers": rows,
            "held_out": "the past campaign's control group: churn risk predicted at "
            "assignment, churn observed within the horizon (outcomes the churn model is not "
            "fitted on; the same customers are in its training snapshots)" if held is not None
            else
            "no held-out rows (the model folder has no backtest table)"}


def held_out(request: Request) -> tuple[np.ndarray, np.ndarray] | None:
    state = request.app.state
    if not hasattr(state, "console_held_out"):
        from uplift import io
        from uplift.evaluate.backtest import BASELINE

        path = Path(state.service.models.folder) / "backtest.parquet"
        state.console_held_out = None
        if path.exists():
            table = io.read_table(path, derived=True)
            if BASELINE in table.columns:
                control = table[table["arm"].astype(str) == "control"]
                state.console_held_out = (control[BASELINE].to_numpy(float),
                                          control["churned"].to_numpy(float))
    return state.console_held_out


def check_thresholds(thresholds: dict[str, float], current: dict[str, float] | None = None
                     ) -> list[dict[str, str]]:
    """Errors of a new tier version: each threshold a churn risk in (0, 1); with ``current``
    (the thresholds in force) the same tier names in the same order from low to high, since
    alerts, escalations and every stored tier are named by them."""
    from uplift.config import ChurnSettings

    if not thresholds:
        return [{"loc": "thresholds", "msg": "name at least one tier"}]
    try:
        ChurnSettings(tiers=thresholds)
    except ValidationError as exc:
        return [{"loc": ".".join(str(p) for p in e["loc"][1:]) or "thresholds",
                 "msg": e["msg"].removeprefix("Value error, ")} for e in exc.errors()]
    errors = [{"loc": name, "msg": f"{value!r}: a churn risk between 0 and 1 (exclusive)"}
              for name, value in thresholds.items() if not 0 < value < 1]
    if current is None or errors:
        return errors
    if set(thresholds) != set(current):
        extra, missing = sorted(set(thresholds) - set(current)), sorted(set(current) -
                                                                         set(thresholds))
        return [{"loc": name, "msg": "not a tier of the service (its tiers: "
                 f"{', '.join(sorted(current))})"} for name in extra] + [
            {"loc": name, "msg": "missing: every tier needs a threshold"} for name in missing]
    order = [n for n, _ in sorted(current.items(), key=lambda kv: kv[1])]
    new = sorted(thresholds.items(), key=lambda kv: kv[1])
    if [n for n, _ in new] != order or len({v for _, v in new}) < len(new):
        return [{"loc": name, "msg": "the tiers must keep their order from low to high risk "
                 f"({' < '.join(order)}) with distinct thresholds"} for name in order]
    return []


@router.get("/v1/tiers", tags=["tiers"])
def get_tiers(request: Request, red: float | None = Query(None),
              amber: float | None = Query(None), _: auth.Caller = Depends(caller)
              ) -> Response:
    """The saved threshold versions and, for the current (or the given red/amber)
    thresholds, customers per tier and held-out churn per tier."""
    versions = cs.tier_versions(request.app.state.store)
    thresholds = dict(versions[0]["thresholds"])
    if red is not None:
        thresholds["red"] = red
    if amber is not None:
        thresholds["amber"] = amber
    errors = check_thresholds(thresholds, request.app.state.service.models.churn.tiers_)
    if errors:
        return _invalid(errors)
    return JSONResponse({"versions": versions, **tier_evidence(request, thresholds)})


@router.post("/v1/tiers", tags=["tiers"], status_code=201)
def save_tiers(body: TiersBody, request: Request, who: auth.Caller = Depends(caller)
               ) -> Response:
    """Save tier thresholds as a new version (422 and nothing saved when invalid); the
    service scores with them from the next event on."""
    errors = check_thresholds(body.thresholds, request.app.state.service.models.churn.tiers_)
    if errors:
        return _invalid(errors)
    saved = cs.save_tiers(request.app.state.store, body.thresholds, who.name)
    request.app.state.service.set_tiers(body.thresholds)
    return JSONResponse(saved, status_code=201)


# -- scenarios ------------------------------------------------------------------------------
@router.get("/v1/scenarios", tags=["scenarios"])
def list_scenarios(request: Request, _: auth.Caller = Depends(caller)) -> dict[str, Any]:
    return {"scenarios": cs.scenarios(request.app.state.store)}


@router.post("/v1/scenarios", tags=["scenarios"], status_code=201)
def save_scenario(body: ScenarioBody, request: Request, who: auth.Caller = Depends(caller)
                  ) -> Response:
    """Save a scenario: a budget on a finished plan's what-if curve (its campaign version),
    with the gain, offer mix and binding rules at that budget."""
    from uplift.console.whatif import nearest

    points = curve_for(request, body.plan_id)["points"]
    if not points:
        raise HTTPException(409, f"plan {body.plan_id}: no budget of its what-if curve could "
                            "be solved")
    budgets = [p["budget"] for p in points]
    if not min(budgets) <= body.budget <= max(budgets):
        return _invalid([{"loc": "budget", "msg": (
            f"{body.budget:,.0f} is outside this plan's what-if curve ({min(budgets):,.0f} .. "
            f"{max(budgets):,.0f}); propose a plan at that budget instead")}])
    point = dict(nearest(points, body.budget))
    if point["budget"] != body.budget:
        point["requested_budget"] = body.budget
        point["note"] = (f"saved at the nearest budget the curve was solved at, "
                         f"{point['budget']:,.0f} (asked {body.budget:,.0f})")
    plan = request.app.state.jobs.get(body.plan_id)
    point["campaign"] = Path(plan["campaign"]).stem if plan["campaign"] else "served spec"
    scenario_id = cs.save_scenario(request.app.state.store, body.name, body.plan_id,
                                   point["budget"], point, who.name)   # the solved budget
    return JSONResponse({"id": scenario_id, **point}, status_code=201)


# -- results --------------------------------------------------------------------------------
@router.post("/v1/results", tags=["results"])
def post_results(body: ResultsBody, _: auth.Caller = Depends(caller)) -> Response:
    """The A/B ROI evaluation of an uploaded outcomes table (the library's
    ``evaluate_outcomes``): lifts with intervals, ROI by offer and segment, and its report."""
    from uplift.tasks.evaluation import ABSettings, evaluate_outcomes

    with tempfile.TemporaryDirectory(prefix="uplift-results-") as folder:
        table = Path(folder) / "outcomes.csv"
        table.write_text(body.csv, encoding="utf-8")
        report = Path(folder) / "report.html"
        if body.retention and body.metric.strip().lower() == "churned":
            return JSONResponse({"detail": [{"loc": "retention", "msg": (
                "the outcome 'churned' is 1 for a customer who left: untick retention, or "
                "name a column that is 1 for a customer who stayed")}]}, status_code=422)
        try:
            result = evaluate_outcomes(table, ABSettings(
                arm=body.arm, control=body.control, metric=body.metric, cost=body.cost,
                value=body.value, retention=body.retention, strata=body.strata,
                propensity=body.propensity), segment=body.segment, report=report,
                propensity_if_present="propensity")
        except UpliftError as exc:
            text = str(exc).replace(str(table), "outcomes").replace(
                "can be joined with --customers", "must be in the uploaded table")
            return JSONResponse({"detail": [{"loc": "csv", "msg": text}]}, status_code=422)
        html = report.read_text(encoding="utf-8")
    from uplift.service.jobs import jsonable

    return JSONResponse({"result": jsonable(result), "report_html": html})
