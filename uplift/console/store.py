"""The console's rows in the service's store: campaign versions, tier versions, what-if
scenarios and plan reviews. Every write records who and when."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from uplift.campaign import CampaignSpec
from uplift.service import schema as t
from uplift.service.store import Store, utcnow


def spec_yaml(spec: CampaignSpec) -> str:
    """The spec as the YAML `uplift plan --campaign` reads (defaults written out)."""
    raw = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def _when(value) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def _version_json(row) -> dict[str, Any]:
    return {"version": row["id"], "name": row["name"], "author": row["author"],
            "created_at": _when(row["created_at"]), "spec": row["spec"]}


SERVED = "uplift serve (started with this spec)"


def seed_campaign(store: Store, spec: CampaignSpec) -> None:
    """The spec the service was started with is saved as a version: version 1 of a new
    store, and a new version when a restart serves another spec than the one the service
    last started with (versions saved in the console since are kept, older)."""
    served = spec.model_dump(mode="json", exclude_none=True)
    with store.begin() as connection:
        last = connection.execute(select(t.campaign_versions.c.spec).where(
            t.campaign_versions.c.author == SERVED).order_by(
            t.campaign_versions.c.id.desc()).limit(1)).first()
        if last is None or last[0] != served:
            connection.execute(t.campaign_versions.insert().values(
                name=spec.name, spec=served, yaml=spec_yaml(spec), author=SERVED,
                created_at=utcnow()))


def save_campaign(store: Store, spec: CampaignSpec, author: str) -> dict[str, Any]:
    with store.begin() as connection:
        version = connection.execute(t.campaign_versions.insert().values(
            name=spec.name, spec=spec.model_dump(mode="json", exclude_none=True),
            yaml=spec_yaml(spec), author=author, created_at=utcnow())).inserted_primary_key[0]
    return campaign(store, int(version))


def campaigns(store: Store) -> list[dict[str, Any]]:
    """Every version, newest first (without the spec body)."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.campaign_versions).order_by(
            t.campaign_versions.c.id.desc())).mappings().all()
    return [{k: v for k, v in _version_json(r).items() if k != "spec"} for r in rows]


def campaign(store: Store, version: int) -> dict[str, Any] | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(t.campaign_versions).where(
            t.campaign_versions.c.id == version)).mappings().first()
    return _version_json(row) if row else None


def campaign_text(store: Store, version: int) -> str | None:
    with store.engine.connect() as connection:
        return connection.execute(select(t.campaign_versions.c.yaml).where(
            t.campaign_versions.c.id == version)).scalar()


def campaign_diff(store: Store, version: int, other: int) -> str | None:
    """Unified diff of two versions' YAML (``version`` -> ``other``)."""
    a, b = campaign_text(store, version), campaign_text(store, other)
    if a is None or b is None:
        return None
    return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(
        keepends=True), fromfile=f"version {version}", tofile=f"version {other}"))


def campaign_file(store: Store, state: Path, version: int) -> Path | None:
    """The version's YAML written to the service's state folder (what a plan reads)."""
    text = campaign_text(store, version)
    if text is None:
        return None
    path = state / "campaigns" / f"campaign-v{version}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


def seed_tiers(store: Store, thresholds: dict[str, float]) -> None:
    with store.begin() as connection:
        if connection.execute(select(t.tier_versions.c.id).limit(1)).first() is None:
            connection.execute(t.tier_versions.insert().values(
                thresholds=thresholds, author="uplift serve (the model's thresholds)",
                created_at=utcnow()))


def save_tiers(store: Store, thresholds: dict[str, float], author: str) -> dict[str, Any]:
    with store.begin() as connection:
        connection.execute(t.tier_versions.insert().values(
            thresholds=thresholds, author=author, created_at=utcnow()))
    return tier_versions(store)[0]


def tier_versions(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.tier_versions).order_by(
            t.tier_versions.c.id.desc())).mappings().all()
    return [{"version": r["id"], "thresholds": r["thresholds"], "author": r["author"],
             "created_at": _when(r["created_at"])} for r in rows]


def save_scenario(store: Store, name: str, plan_id: int, budget: float,
                  result: dict[str, Any], author: str) -> int:
    with store.begin() as connection:
        return int(connection.execute(t.scenarios.insert().values(
            name=name, plan_id=plan_id, budget=budget, result=result, author=author,
            created_at=utcnow())).inserted_primary_key[0])


def scenarios(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.scenarios).order_by(t.scenarios.c.id)
                                  ).mappings().all()
    return [{"id": r["id"], "name": r["name"], "plan_id": r["plan_id"], "budget": r["budget"],
             "result": r["result"], "author": r["author"],
             "created_at": _when(r["created_at"])} for r in rows]


def record_review(store: Store, plan_id: int, reviewer: str, decision: str,
                  comment: str) -> None:
    with store.begin() as connection:
        connection.execute(t.reviews.insert().values(
            plan_id=plan_id, reviewer=reviewer, decision=decision, comment=comment,
            created_at=utcnow()))


def reviews(store: Store, plan_id: int) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.reviews).where(t.reviews.c.plan_id == plan_id)
                                  .order_by(t.reviews.c.id)).mappings().all()
    return [{"reviewer": r["reviewer"], "decision": r["decision"], "comment": r["comment"],
             "created_at": _when(r["created_at"])} for r in rows]


def plans(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The latest plans, newest first, with approval and the last review decision."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(t.plans).order_by(t.plans.c.id.desc()).limit(limit)
                                  ).mappings().all()
        approved = dict(connection.execute(select(t.approvals.c.plan_id,
                                                  t.approvals.c.approver)).all())
        rejected = {r[0] for r in connection.execute(select(t.reviews.c.plan_id).where(
            t.reviews.c.decision == "rejected")).all()}
    out = []
    for r in rows:
        summary = r["summary"] or {}
        out.append({"id": r["id"], "proposer": r["proposer"], "budget": r["budget"],
                    "status": "rejected" if r["id"] in rejected and r["id"] not in approved
                    else r["status"], "created_at": _when(r["created_at"]),
                    "approved_by": approved.get(r["id"]),
                    "expected_gain": summary.get("expected_gain"),
                    "spend": summary.get("spend"),
                    "campaign": Path(r["campaign"]).name if r["campaign"] else None})
    return out
