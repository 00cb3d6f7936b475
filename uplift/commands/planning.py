"""Planning commands: allocate, train, plan, export, outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from uplift.commands.shell import SparkMasterOption, say, stages, state

PLAN_STAGES = 4       # models, scoring, allocation with the budget curve, backtest
# training: churn snapshots and model, campaign features, and for each of the two effects
# models its start, 2 learners x 3 folds and the final refit
TRAIN_STAGES = 25


def print_allocation(result, as_json: bool, outlook: dict | None = None,
                     files: dict[str, str] | None = None) -> None:
    """The allocation summary: JSON on stdout, or the planner's lines (none with --quiet)."""
    import json

    from uplift.report.console import plan_lines

    if as_json:
        typer.echo(json.dumps({**result.summary, "excluded": result.excluded,
                               "outlook": outlook}, default=float))
        return
    if state["quiet"]:
        return
    for line in plan_lines(result.summary, result.excluded, outlook, files):
        typer.echo(line)


def allocate(
    scores: Annotated[Path, typer.Option(help="Table: customer_id, gain_<offer>, "
                                         "cost_<offer> (+ segment, eligibility columns).")],
    campaign: Annotated[Path, typer.Option(help="Campaign spec (YAML).")],
    out: Annotated[Path, typer.Option(help="Plan file to write (.csv or .parquet).")],
    budget: Annotated[float | None, typer.Option(help="Budget (currency); default: the "
                                                 "spec's.")] = None,
    solver: Annotated[str, typer.Option(help="auto, exact (SCIP) or lagrangian.")] = "auto",
    confident: Annotated[bool, typer.Option(
        "--confident", help="Only offers whose gain lower bound (gain_lo_) is positive.")
    ] = False,
    contacts: Annotated[Path | None, typer.Option(
        help="Contact history: customer_id, contacted_at (for the contact limit).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Planning date for the "
                                              "contact limit (YYYY-MM-DD).")] = None,
    curve: Annotated[Path | None, typer.Option(help="Also write the budget curve here.")
                     ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the holdout draw.")] = 0,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver time limit "
                                              "(seconds).")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
) -> None:
    """Assign at most one offer per customer to maximise expected gain under the budget."""
    from uplift.tasks.allocation import allocate_files

    result = allocate_files(scores, campaign, out, budget=budget, solver=solver,
                            confident=confident, contacts=contacts, as_of=as_of, curve=curve,
                            seed=seed, time_limit=time_limit)
    print_allocation(result, as_json)


def train(
    data: Annotated[Path | None, typer.Option(help="Data folder (default: the demo bank).")
                    ] = None,
    out: Annotated[Path | None, typer.Option(help="Model folder (default: the cache).")
                   ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Planning date (default: the "
                                              "day after the last event).")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings YAML.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fit the churn and offer-effect models a plan needs."""
    from uplift.planner import train_models

    with stages(TRAIN_STAGES) as progress:
        target = train_models(data, out=out, as_of=as_of, config=config, seed=seed,
                              progress=progress)
    say(f"models -> {target}")


def plan(
    budget: Annotated[float, typer.Option(help="Campaign budget (currency).")],
    campaign: Annotated[Path | None, typer.Option(help="Campaign spec (default: the demo "
                                                  "retention campaign).")] = None,
    data: Annotated[Path | None, typer.Option(help="Data folder (default: the demo bank).")
                    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Planning date.")] = None,
    model: Annotated[Path | None, typer.Option(help="Trained model folder (default: "
                                               "trained on first use and cached).")] = None,
    out: Annotated[Path, typer.Option(help="Plan file.")] = Path("plan.csv"),
    report: Annotated[Path, typer.Option(help="HTML report.")] = Path("reports/plan.html"),
    config: Annotated[Path | None, typer.Option(help="Settings YAML.")] = None,
    confident: Annotated[bool, typer.Option("--confident", help="Only act on confident "
                                            "effects.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed (models and holdout).")] = 0,
    contacts: Annotated[Path | None, typer.Option(
        help="Contact history (customer_id, contacted_at) for the spec's contact_limit.")
    ] = None,
    call_list: Annotated[Path | None, typer.Option(
        "--call-list", help="Call list to write: contacted customers only, ranked "
        "(default: contacts.csv beside the plan; with pseudonyms use `uplift export`).")
    ] = None,
    holdout_list: Annotated[Path | None, typer.Option(
        "--holdout-list", help="Held-out customers, for measuring the campaign (default: "
        "holdout.csv beside the plan).")] = None,
    left_out: Annotated[Path | None, typer.Option(
        "--left-out", help="Also write every scored customer who was not selected, with the "
        "rule that finally removed them.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")
                       ] = False,
    engine: Annotated[str, typer.Option(
        help="duckdb (one machine, default) or spark (features, scores and the allocation's "
        "dual on Spark; needs uplift\\[spark] and Java).")] = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Plan a retention campaign end to end: features, churn, effects, allocation, report.

    Writes the plan (every selected customer, contacted or held out), the call list
    (contacted customers only, ranked by expected net gain), the holdout list and the
    report."""
    from uplift.planner import PlanRequest, execute, prepare

    job = prepare(PlanRequest(
        budget=budget, campaign=campaign, data=data, as_of=as_of, model=model, out=out,
        report=report, config=config, confident=confident, seed=seed, contacts=contacts,
        call_list=call_list, holdout_list=holdout_list, left_out=left_out, engine=engine,
        spark_master=spark_master), progress=say)
    with stages(PLAN_STAGES + (TRAIN_STAGES if job.training else 0)) as progress:
        result = execute(job, progress)
    print_allocation(result, as_json, result.outlook, result.files)
    if not as_json and not state["quiet"]:
        typer.echo(f"plan -> {out}; report -> {report} "
                   f"({result.summary['seconds_total']:.0f} s)")


def export(
    plan: Annotated[Path, typer.Option(help="Plan written by `uplift plan` or `allocate`.")],
    out: Annotated[Path, typer.Option(help="Campaign list to write (.csv or .parquet).")],
    data: Annotated[Path | None, typer.Option(help="Data folder with the customers table: "
                                              "turns a pseudonymised plan back into ids, and "
                                              "every planned customer must be in it (default: "
                                              "the demo bank, for a pseudonymised plan).")
                    ] = None,
    customers: Annotated[Path | None, typer.Option(help="Customers table (instead of "
                                                   "--data).")] = None,
    holdout: Annotated[bool, typer.Option("--include-holdout", help="Also list held-out "
                                          "customers (flagged; they must not be contacted).")
                       ] = False,
) -> None:
    """The call list for the campaign system: contacted customers only, ranked by expected net
    gain, with raw customer ids.

    A pseudonymised plan is turned back into raw ids (needs the pseudonym key and the customers
    table; the export is recorded in the audit log); a plan with raw ids is listed as it is.
    Held-out customers are left out unless --include-holdout (then the plan's rows, flagged)."""
    from uplift import io
    from uplift.security.export import export_call_list
    from uplift.tasks.data import customers_table
    from uplift.validation import find_table

    if data is not None and data.is_dir():       # never write over one of the bank's tables
        io.ensure_not_input([out], [find_table(data, name) for name in
                                    ("customers", "events", "campaign_log")])
    rows, reidentified = export_call_list(
        plan, out, customers=lambda: customers_table(data, customers, progress=say),
        include_holdout=holdout, customers_named=data is not None or customers is not None)
    say(f"wrote {out}: {rows:,} customers "
        + ("with raw ids (export recorded in the audit log)" if reidentified
           else "(the plan holds raw ids)"))


def outcomes(
    plan: Annotated[Path, typer.Option(help="Plan written by `uplift plan` (its manifest gives "
                                       "the plan's date and holdout strata).")],
    events: Annotated[Path, typer.Option(help="Events table covering the campaign window "
                                         "(customer_id, ts, event_type, amount).")],
    as_of: Annotated[str, typer.Option("--as-of", help="Measurement date YYYY-MM-DD: the end "
                                       "of the campaign window (exclusive).")],
    out: Annotated[Path, typer.Option(help="Outcomes table to write (.csv or .parquet).")],
    data: Annotated[Path | None, typer.Option(help="Data folder with the customers table "
                                              "(checks every planned customer is known).")
                    ] = None,
    start: Annotated[str | None, typer.Option(help="Campaign start YYYY-MM-DD (default: the "
                                              "plan's date from its manifest); with it, a plan "
                                              "without a manifest is measured within segment "
                                              "and planned offer.")] = None,
) -> None:
    """Build the outcomes table after the campaign window, ready for `uplift evaluate`.

    One row per selected customer: arm (offer, or control for the holdout), stratum,
    propensity, churned/retained, retained value, new business and cost."""
    from uplift.evaluate.outcomes import EVALUATE_SETTINGS
    from uplift.tasks.evaluation import outcomes_to_file

    result, start = outcomes_to_file(plan, events, as_of, out, data=data, start=start)
    held = int((result["arm"] == EVALUATE_SETTINGS["control"]).sum())
    say(f"wrote {out}: {len(result):,} customers ({len(result) - held:,} contacted, {held:,} "
        f"held out), churned {result['churned'].mean():.2%} from {start} to {as_of}; next: "
        f"uplift evaluate --outcomes {out}")
