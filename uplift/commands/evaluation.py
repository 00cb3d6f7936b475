"""Evaluation commands: evaluate (A/B after a campaign) and simulate-policy (offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from uplift.commands.shell import CostOption, ValueOption, echo, say


def evaluate(
    outcomes: Annotated[Path, typer.Option(help="Campaign outcomes: one row per customer "
                                           "(e.g. written by `uplift outcomes`).")],
    arm: Annotated[str | None, typer.Option(help="Column with the arm each customer got "
                                            "(default: from the outcomes' manifest).")] = None,
    control: Annotated[str | None, typer.Option(help="Value of the control (holdout) arm "
                                                "(default: from the manifest).")] = None,
    metric: Annotated[str | None, typer.Option(help="Metric column, 0/1 rate or a number "
                                               "(default: from the manifest).")] = None,
    pre_metric: Annotated[str | None, typer.Option(
        "--pre-metric", help="Pre-period metric for CUPED.")] = None,
    cost: Annotated[str | None, typer.Option(help="Per-customer cost column (currency).")
                    ] = None,
    value: Annotated[str | None, typer.Option(help="Per-customer value column (currency).")
                     ] = None,
    retention: Annotated[bool, typer.Option(
        "--retention", help="The metric is retention (1 = stayed): count retained customers.")
    ] = False,
    split: Annotated[str | None, typer.Option(
        help="Planned split, e.g. 'control=0.1,coupon=0.9', for the sample-ratio check.")
    ] = None,
    segment: Annotated[str | None, typer.Option(help="Segment column for money by "
                                                "segment.")] = None,
    strata: Annotated[str | None, typer.Option(
        help="Column the randomisation was stratified by (e.g. the planned offer): money is "
        "compared within strata.")] = None,
    propensity: Annotated[str | None, typer.Option(
        help="Assignment probability column: checks the design is uniform (else --strata).")
    ] = None,
    correction: Annotated[str, typer.Option(help="Multiple-testing method (statsmodels "
                                            "name).")] = "holm",
    alpha: Annotated[float, typer.Option(help="1 - confidence level.")] = 0.05,
    report: Annotated[Path | None, typer.Option(help="HTML report to write.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="JSON results to write.")
                        ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
    customers: Annotated[Path | None, typer.Option(
        help="Customers table to join on customer_id (e.g. for --strata segment on a past "
        "campaign log); every row must find its customer.")] = None,
) -> None:
    """A/B evaluation of a campaign: lifts, intervals, SRM, CUPED, power, ROI.

    On a table written by `uplift outcomes`, the arm, control, metric, strata, propensity, cost
    and value columns come from its manifest (options given here win)."""
    from uplift.report.console import ab_lines
    from uplift.tasks.evaluation import ABSettings, evaluate_outcomes

    settings, recorded = ABSettings(arm, control, metric, strata, propensity, cost, value,
                                    retention).completed(outcomes)
    if recorded:
        s = settings
        say(f"from {outcomes.name}'s manifest: arm {s.arm}, control {s.control}, metric "
            f"{s.metric}, strata {s.strata}, propensity {s.propensity}, cost {s.cost}, value "
            f"{s.value}")
    result = evaluate_outcomes(outcomes, settings, pre_metric=pre_metric, split=split,
                               segment=segment, correction=correction, alpha=alpha,
                               report=report, json_out=json_out, seed=seed, encoding=encoding,
                               customers=customers)
    for line in ab_lines(result, settings.metric, settings.control, correction, alpha):
        echo(line)


def simulate_policy(
    log: Annotated[Path, typer.Option(help="Logged randomised campaign (one row per "
                                      "customer, with features for model policies).")],
    arm: Annotated[str, typer.Option(help="Logged arm column.")],
    control: Annotated[str, typer.Option(help="Control arm value.")],
    outcome: Annotated[str, typer.Option(help="Outcome column.")],
    propensity: Annotated[str, typer.Option(help="Logged probability of the logged arm.")],
    policy: Annotated[list[str], typer.Option(help="Policy spec; repeat: none, all:ARM, "
                                              "rule:COL:value=ARM,*=ARM, topk:COL:K:ARM, "
                                              "random:SHARE:ARM, plan:FILE, model:DIR, "
                                              "tree:DIR[:Z] (DIR: an effects model or the "
                                              "folder `uplift train` wrote).")],
    goal: Annotated[str, typer.Option(help="'increase' or 'decrease' (e.g. churn).")
                    ] = "increase",
    features: Annotated[str | None, typer.Option(
        help="Comma-separated feature columns for the outcome model (DM/DR); default: all "
        "numeric columns except those measured after assignment (churned, value_after, ...), "
        "which are refused.")] = None,
    truth: Annotated[Path | None, typer.Option(help="Simulator truth.parquet: also print "
                                               "each policy's true value.")] = None,
    report: Annotated[Path | None, typer.Option(help="HTML report.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="JSON results.")] = None,
    seed: Annotated[int, typer.Option(help="Seed (outcome model folds, random policies).")
                    ] = 0,
    value: ValueOption = None,
    cost: CostOption = None,
) -> None:
    """Compare candidate policies on logged data: DM, IPW, SNIPW and DR with intervals.

    With --value/--cost every value is net value per customer in currency (value of the
    outcome on its good side minus the cost of the arm the policy gives)."""
    from uplift.report.console import policy_lines
    from uplift.tasks.evaluation import simulate_policy_file

    result, money = simulate_policy_file(
        log, arm=arm, control=control, outcome=outcome, propensity=propensity,
        policies=policy, goal=goal, features=features.split(",") if features else None,
        truth=truth, report=report, json_out=json_out, seed=seed, value=value, cost=cost)
    if money is not None:
        say(f"values are net value per customer: {money.describe()}")
    elif any(p.startswith(("tree:", "model:")) for p in policy):
        say("values are outcomes, not money: model and tree policies ignore cost unless "
            "--value/--cost are given here or were stored with the model at fit")
    say(f"outcome model uses {result['features']} numeric columns (never those measured "
        f"after assignment: {', '.join(result['excluded_after_assignment'])})")
    for message in result["warnings"]:
        typer.echo(f"WARNING: {message}", err=True)        # shown even with --quiet
    for line in policy_lines(result):
        echo(line)
