"""Evaluation tasks: the outcomes table after a campaign, its A/B evaluation, and offline
policy simulation on a logged randomised campaign."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from uplift import io
from uplift.errors import InputError


@dataclass
class ABSettings:
    """The columns an A/B evaluation reads; None = take it from the outcomes' manifest."""

    arm: str | None = None
    control: str | None = None
    metric: str | None = None
    strata: str | None = None
    propensity: str | None = None
    cost: str | None = None
    value: str | None = None
    retention: bool = False

    def completed(self, outcomes: Path) -> tuple[ABSettings, bool]:
        """Fill what was not given from the manifest `uplift outcomes` wrote (given values
        win); returns the settings and whether a manifest was found."""
        from uplift.evaluate.outcomes import recorded_settings

        recorded = recorded_settings(outcomes)
        filled = ABSettings(**{name: getattr(self, name) or recorded.get(name)
                               for name in ("arm", "control", "metric", "strata", "propensity",
                                            "cost", "value")},
                            retention=self.retention or bool(recorded.get("retention", False)))
        if filled.arm is None or filled.control is None or filled.metric is None:
            raise InputError(f"{outcomes}: name the arm, control and metric columns (no "
                             "manifest from `uplift outcomes` beside the table)")
        return filled, bool(recorded)


def parse_split(split: str | None) -> dict[str, float] | None:
    """A planned split written ``control=0.1,coupon=0.9``."""
    if not split:
        return None
    try:
        return {k: float(v) for k, v in (p.split("=") for p in split.split(","))}
    except ValueError as exc:
        raise InputError(f"planned split {split!r}: expected arm=share,arm=share") from exc


def evaluate_outcomes(outcomes: Path, settings: ABSettings, *, pre_metric: str | None = None,
                      split: str | None = None, segment: str | None = None,
                      correction: str = "holm", alpha: float = 0.05,
                      report: Path | None = None, json_out: Path | None = None, seed: int = 0,
                      encoding: str | None = None, customers: Path | None = None,
                      propensity_if_present: str | None = None) -> dict:
    """A/B evaluation of an outcomes table (lifts, intervals, SRM, CUPED, ROI); writes the
    HTML report and JSON when asked and returns the results. ``propensity_if_present``: the
    propensity column to check when the settings name none and the table has it."""
    from uplift.evaluate import evaluate_ab
    from uplift.evaluate.report import ab_html

    io.ensure_not_input([report, json_out], [outcomes, customers])
    planned = parse_split(split)
    frame = io.read_table(outcomes, encoding=encoding)
    if customers is not None:
        from uplift.evaluate.outcomes import join_customers

        frame = join_customers(frame, io.read_table(customers), source=str(outcomes),
                               customers_source=str(customers))
    if settings.propensity is None and propensity_if_present in frame.columns:
        settings = replace(settings, propensity=propensity_if_present)
    result = evaluate_ab(frame, arm=settings.arm, control=settings.control,
                         metric=settings.metric, pre_metric=pre_metric, cost=settings.cost,
                         value=settings.value, planned_split=planned, segment=segment,
                         alpha=alpha, correction=correction,
                         retention_metric=settings.retention, seed=seed, source=str(outcomes),
                         strata=settings.strata, propensity=settings.propensity)
    if json_out:
        io.write_json(result, json_out)
    if report:
        io.write_text(ab_html(result, f"Campaign evaluation: {settings.metric}"), report)
    for out in (json_out, report):
        if out:
            io.record_run(out, "evaluate", {"outcomes": outcomes, **vars(settings),
                                            "pre_metric": pre_metric, "split": split,
                                            "segment": segment, "correction": correction,
                                            "alpha": alpha, "customers": customers},
                          seed=seed, inputs=[outcomes, customers], outputs={out.name: 1})
    return result


def outcomes_to_file(plan: Path, events: Path, as_of: str, out: Path, *,
                     data: Path | None = None, start: str | None = None
                     ) -> tuple[pd.DataFrame, str]:
    """The outcomes table of a plan's campaign window [start, as_of), written to ``out``;
    returns the table and the start date used."""
    from uplift.evaluate.outcomes import EVALUATE_SETTINGS, build_outcomes, plan_context
    from uplift.security import protect_ids
    from uplift.validation import find_table

    customers_path = find_table(data, "customers") if data is not None else None
    if data is not None and customers_path is None:
        raise InputError(f"{data}: no customers table")
    io.ensure_not_input([out], [plan, events, customers_path])
    table = io.read_table(plan)
    context = plan_context(plan, len(table), start)
    start = context["start"]
    if start is None:
        raise InputError(f"{plan}: its manifest has no date; give the campaign start")
    logged = protect_ids(io.read_table(events), source=str(events))
    customers = (protect_ids(io.read_table(customers_path), source=str(customers_path))
                 if customers_path is not None else None)
    result = build_outcomes(table, logged, start=start, end=as_of, customers=customers,
                            strata=context["strata"], plan_source=str(plan),
                            events_source=str(events), customers_source=str(customers_path))
    io.write_table(result, out)
    io.record_run(out, "outcomes", {"plan": plan, "events": events, "as_of": as_of,
                                    "start": start, "data": data},
                  seed=None, inputs=[plan, events, customers_path],
                  outputs={out.name: len(result)}, extra={"evaluate": EVALUATE_SETTINGS})
    return result, start


def simulate_policy_file(log: Path, *, arm: str, control: str, outcome: str, propensity: str,
                         policies: list[str], goal: str = "increase",
                         features: list[str] | None = None, truth: Path | None = None,
                         report: Path | None = None, json_out: Path | None = None,
                         seed: int = 0, value: float | None = None,
                         cost: list[str] | None = None) -> tuple[dict, object]:
    """Compare candidate policies on a logged randomised campaign (DM, IPW, SNIPW, DR);
    returns (results, money settings or None)."""
    from uplift.effects.money import build_money
    from uplift.evaluate.policies import policy_file
    from uplift.evaluate.report import policy_html
    from uplift.evaluate.simulation import simulate_policies

    io.ensure_not_input([report, json_out], [log, truth, *map(policy_file, policies)])
    frame = io.read_table(log)
    arms = (sorted(set(frame[arm].astype(str)) - {str(control)})
            if arm in frame.columns else [])
    money = build_money(value, cost, arms, str(control))
    result = simulate_policies(
        frame, arm=arm, control=control, outcome=outcome, propensity=propensity,
        policies=policies, goal=goal, features=features, truth=truth, seed=seed,
        source=str(log), money=money)
    if json_out:
        io.write_json(result, json_out)
    if report:
        io.write_text(policy_html(result, f"Policy simulation: {outcome}"), report)
    for out in (json_out, report):
        if out:
            io.record_run(out, "simulate-policy", {
                "log": log, "arm": arm, "control": control, "outcome": outcome,
                "propensity": propensity, "policies": policies, "goal": goal,
                "features": features, "truth": truth, "value": value, "cost": cost},
                seed=seed, inputs=[log, truth], outputs={out.name: 1})
    return result, money
