"""Plans as background jobs, run through the library's planner (one adapter function).

A plan request is stored (status ``queued``), run by a single worker thread (``running``,
then ``done`` with its summary or ``failed`` with the planner's message), approved by a
different caller than its proposer, and exported only after approval.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from uplift.errors import UpliftError
from uplift.service import schema as t
from uplift.service.store import Store, utcnow


@dataclass
class PlanSources:
    """What plans are made from: the bank's data folder and a model folder (None: train
    into the cache as `uplift plan` does)."""

    data: Path | None
    model: Path | None
    campaign: Path | None
    folder: Path                     # where each plan's files go (one sub-folder per plan)


def run_planner(budget: float, campaign: Path | None, sources: PlanSources, out: Path
                ) -> dict[str, Any]:
    """The adapter to the library: one whole plan, as `uplift plan` makes it; returns the
    plan's summary (JSON-ready)."""
    from uplift.planner import PlanRequest, execute, prepare

    out.mkdir(parents=True, exist_ok=True)
    request = PlanRequest(budget=budget, campaign=campaign or sources.campaign,
                          data=sources.data, model=sources.model, out=out / "plan.csv",
                          report=out / "plan.html", call_list=out / "contacts.csv",
                          holdout_list=out / "holdout.csv")
    job = prepare(request)
    outcome = execute(job)
    _write_whatif(outcome, job, out / WHATIF_FILE)
    curve = outcome.curve.to_dict(orient="records") if outcome.curve is not None else None
    return jsonable({**outcome.summary, "excluded": outcome.excluded, "curve": curve})


def _write_whatif(outcome, job, path: Path) -> None:
    write_whatif(outcome.scores, job.spec, job.request.budget, path,
                 do_not_contact=job.do_not_contact, confident=job.request.confident,
                 seed=job.request.seed)


def write_whatif(scores, spec, budget: float, path: Path, *, do_not_contact=None,
                 confident: bool = False, seed: int = 0) -> None:
    """The console's what-if curve: the plan's problem solved at a grid of budgets (see
    :mod:`uplift.console.whatif`), written once as JSON next to the plan."""
    import json

    from uplift.console.whatif import solve_curve
    from uplift.files import write_text_atomic

    table = solve_curve(scores, spec, budget, do_not_contact=do_not_contact,
                        confident=confident, seed=seed)
    write_text_atomic(json.dumps(jsonable({"customers": int(len(scores)),
                                           "points": table.to_dict(orient="records")})), path)


def jsonable(value):
    """JSON-ready: strings for what JSON lacks, None for NaN and infinities (which strict
    JSON cannot carry)."""
    import json
    import math

    def scrub(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {k: scrub(v) for k, v in item.items()}
        if isinstance(item, list):
            return [scrub(v) for v in item]
        return item

    return scrub(json.loads(json.dumps(value, default=str)))


#: the what-if curve of a plan, in its folder
WHATIF_FILE = "whatif.json"


class PlanJobs:
    """Queue, run and track plans."""

    def __init__(self, store: Store, sources: PlanSources, runner=run_planner):
        self.store = store
        self.sources = sources
        self.runner = runner
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plans")
        self.lock = threading.Lock()

    def submit(self, proposer: str, budget: float, campaign: str | None) -> int:
        with self.store.begin() as connection:
            plan_id = connection.execute(t.plans.insert().values(
                proposer=proposer, budget=budget, campaign=campaign, status="queued",
                created_at=utcnow())).inserted_primary_key[0]
        self.pool.submit(self._run, int(plan_id), budget, campaign)
        return int(plan_id)

    def _set(self, plan_id: int, **values) -> None:
        with self.store.begin() as connection:
            connection.execute(t.plans.update().where(t.plans.c.id == plan_id).values(**values))

    def _run(self, plan_id: int, budget: float, campaign: str | None) -> None:
        out = self.sources.folder / f"plan-{plan_id}"
        self._set(plan_id, status="running", folder=str(out))
        try:
            summary = self.runner(budget, Path(campaign) if campaign else None, self.sources,
                                  out)
        except UpliftError as exc:
            self._set(plan_id, status="failed", error=str(exc), finished_at=utcnow())
            return
        except Exception as exc:
            self._set(plan_id, status="failed", error=f"{type(exc).__name__}: {exc}",
                      finished_at=utcnow())
            return
        self._set(plan_id, status="done", summary=summary, finished_at=utcnow())

    def get(self, plan_id: int) -> dict[str, Any] | None:
        with self.store.engine.connect() as connection:
            row = connection.execute(select(t.plans).where(t.plans.c.id == plan_id)
                                     ).mappings().first()
            approval = connection.execute(select(t.approvals).where(
                t.approvals.c.plan_id == plan_id)).mappings().first()
        if row is None:
            return None
        out = {k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v)
               for k, v in row.items() if k != "folder"}
        out["approved_by"] = approval["approver"] if approval else None
        out["approved_at"] = approval["approved_at"].isoformat() + "Z" if approval else None
        return out

    def approve(self, plan_id: int, approver: str) -> tuple[int, str]:
        """(HTTP-free) outcome code and message: 0 ok, 404 unknown, 409 not approvable."""
        with self.lock, self.store.begin() as connection:
            row = connection.execute(select(t.plans).where(t.plans.c.id == plan_id)
                                     ).mappings().first()
            if row is None:
                return 404, f"plan {plan_id} not found"
            if row["status"] != "done":
                return 409, f"plan {plan_id} is {row['status']}; only a finished plan can be " \
                    "approved"
            if same_person(row["proposer"], approver):
                return 409, (f"plan {plan_id} was proposed by {approver}; a different person "
                             "must approve it (four eyes)")
            if connection.execute(select(t.approvals.c.id).where(
                    t.approvals.c.plan_id == plan_id)).first():
                return 409, f"plan {plan_id} is already approved"
            connection.execute(t.approvals.insert().values(
                plan_id=plan_id, approver=approver, approved_at=utcnow()))
        return 0, "approved"

    def export_path(self, plan_id: int) -> tuple[int, str, Path | None]:
        """The approved plan's file: (0, message, path) or (404/409, message, None)."""
        with self.store.engine.connect() as connection:
            row = connection.execute(select(t.plans).where(t.plans.c.id == plan_id)
                                     ).mappings().first()
            approved = connection.execute(select(t.approvals.c.id).where(
                t.approvals.c.plan_id == plan_id)).first()
        if row is None:
            return 404, f"plan {plan_id} not found", None
        if approved is None:
            return 409, f"plan {plan_id} is not approved; export needs an approval", None
        return 0, "ok", Path(row["folder"]) / "plan.csv"

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def same_person(one: str, other: str) -> bool:
    """Whether two token names name one person: compared without case and outer spaces
    (``t-planner`` and ``T-Planner`` are one person for the four-eyes rule)."""
    return one.strip().casefold() == other.strip().casefold()
