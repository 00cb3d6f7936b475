"""Command-line interface (typer). Thin: parse options, call the library, print and write.

Exit codes: 0 success, 2 bad input (file, column, option, spec), 1 any other failure.
Messages are printed without a traceback; ``uplift --debug COMMAND`` shows it.
Heavy libraries are imported inside commands so ``uplift --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from uplift.errors import InputError, UpliftError

PLAN_STAGES = 4       # models, scoring, allocation with the budget curve, backtest
# training: churn snapshots and model, campaign features, and for each of the two effects
# models its start, 2 learners x 3 folds and the final refit
TRAIN_STAGES = 25

app = typer.Typer(
    name="uplift",
    help="Retention-campaign optimiser: churn risk, offer effects, budgeted allocation, "
    "evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state: dict[str, Any] = {"debug": False, "quiet": False}


def _say(message: str) -> None:
    if not _state["quiet"]:
        typer.echo(message, err=True)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors (a flag; "
                                        "also accepted after the command).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors and warnings: "
                                        "no progress, no summary (a flag; also accepted "
                                        "after the command).")] = False,
    allow_plaintext: Annotated[bool, typer.Option(
        "--allow-plaintext", help="With a master key set, still read the bank's plaintext "
        "source tables (plans, caches and models must always be sealed).")] = False,
) -> None:
    from uplift import io

    _state["debug"] = debug
    _state["quiet"] = quiet
    io.allow_plaintext_sources(allow_plaintext)


class _Stages:
    """Progress of a long command on a terminal: the current stage, stage k of about n, time
    elapsed and an estimate of the time left (rich, on stderr). Off with --quiet; plain lines
    when the output is not a terminal (logs, pipes)."""

    def __init__(self, expected: int):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.expected = expected
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("left"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("starting", total=expected)
        self.done = 0

    def __call__(self, message: str) -> None:
        if self.done:
            self.progress.advance(self.task)
        self.done += 1
        if self.done > self.expected:               # more stages than expected
            self.expected = self.done
            self.progress.update(self.task, total=self.expected)
        self.progress.console.print(f"[dim]{message.strip()}[/dim]", highlight=False)
        self.progress.update(self.task, description=message.strip()[:36])

    def __enter__(self) -> _Stages:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.update(self.task, completed=self.expected)
        self.progress.stop()


def _stages(expected: int):
    """A progress reporter for a long command: rich stages on a terminal, else plain lines."""
    import contextlib

    if _state["quiet"] or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return contextlib.nullcontext(_say)
    return _Stages(expected)


def _show_warning(message: Warning | str, category: type[Warning], *_: object,
                  **__: object) -> None:
    text = str(message)
    shown = _state.setdefault("warnings_shown", set())
    if text in shown:                         # one note per message and command
        return
    shown.add(text)
    typer.echo(f"warning: {text}", err=True)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables into.")],
    customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 50_000,
    months: Annotated[int, typer.Option("--months", help="Months of event history.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    start_date: Annotated[str, typer.Option("--start-date",
                                            help="First day of the history.")] = "2025-01-01",
    triggers: Annotated[bool, typer.Option(
        "--triggers/--no-triggers", help="Give a share of disengagement onsets an observable "
        "start (trigger events); --no-triggers: the earlier bank of the same seed.")] = True,
) -> None:
    """Simulate a bank with known ground truth: customers, events, campaign log, truth."""
    import time

    from uplift import io
    from uplift.simulate import simulate_bank, write_bank

    if out.exists() and any(out.iterdir()):
        existing = {p.name for p in out.iterdir()}
        ours = {"customers.parquet", "events.parquet", "campaign_log.parquet",
                "truth.parquet", "manifest.json"}
        if not existing <= ours:
            raise InputError(
                f"{out}: folder holds other files ({', '.join(sorted(existing - ours)[:5])}); "
                "choose an empty or new folder"
            )
    started = time.perf_counter()
    with io.staged_directory(out) as stage:
        bank = simulate_bank(
            customers, months, seed=seed, start_date=start_date,
            events_path=stage / "events.parquet", triggers=triggers,
            progress=lambda done, total: _say(f"  simulated {done:,}/{total:,} customers"),
        )
        rows = write_bank(bank, stage)
        manifest = io.build_manifest(
            "simulate",
            {"customers": customers, "months": months, "start_date": start_date, "out": out,
             "triggers": triggers},
            seed=seed, outputs=rows,
            extra={"start_date": str(bank.start_date.date()),
                   "assignment_date": str(bank.assignment_date.date())},
        )
        io.write_json(manifest, stage / "manifest.json")
    elapsed = time.perf_counter() - started
    _say(f"wrote {out}: {rows['customers.parquet']:,} customers, "
         f"{rows['events.parquet']:,} events, {rows['campaign_log.parquet']:,} campaign rows "
         f"(assignment {bank.assignment_date.date()}) in {elapsed:.1f} s")


@app.command()
def validate(
    customers: Annotated[Path | None, typer.Option(help="Customers table.")] = None,
    events: Annotated[Path | None, typer.Option(help="Events table.")] = None,
    campaign_log: Annotated[Path | None, typer.Option("--campaign-log",
                                                      help="Campaign log table.")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Campaign outcomes table.")] = None,
    campaign: Annotated[Path | None, typer.Option(help="Campaign spec (YAML).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Folder with customers/events/campaign_log (.parquet or .csv).")] = None,
    column_map: Annotated[Path | None, typer.Option(
        "--column-map", help="YAML: {table: {canonical_name: your_name}}.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of CSV inputs.")] = None,
) -> None:
    """Check input files against the data contracts and report every problem found."""
    from uplift.validation import validate_inputs

    summary = validate_inputs(
        customers=customers, events=events, campaign_log=campaign_log, outcomes=outcomes,
        campaign=campaign, data=data, column_map=column_map, encoding=encoding,
    )
    for line in summary:
        typer.echo(line)


def _inputs(data: Path, column_map: Path | None, encoding: str | None):  # -> FeatureInputs
    from uplift.features import FeatureInputs
    from uplift.validation import load_column_map

    return FeatureInputs.from_folder(data, rename=load_column_map(column_map), encoding=encoding)


def _input_files(inputs) -> list[Path]:
    files = [inputs.customers, inputs.events, inputs.campaign_log, *inputs.external.values()]
    return [f for f in files if f is not None]


@app.command()
def features(
    data: Annotated[Path | None, typer.Option(
        help="Folder with customers, events (and optional campaign_log, external_accounts, "
        "external_enquiries) tables.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Feature date YYYY-MM-DD: "
                                              "only events before it are used.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output table (.parquet or .csv).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="Print the feature registry.")] = False,
    column_map: Annotated[Path | None, typer.Option("--column-map")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of CSV inputs.")] = None,
    threads: Annotated[int, typer.Option(help="DuckDB threads.")] = 1,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", help="DuckDB memory limit, e.g. 2GB (spills to disk beyond).")] = None,
) -> None:
    """Build one row of ~197 documented features per customer as of a date (DuckDB)."""
    from uplift import io
    from uplift.features import registry_frame, write_features

    if list_:
        from rich.console import Console
        from rich.table import Table

        table = Table("name", "family", "description", title="uplift features")
        for row in registry_frame().itertuples():
            table.add_row(row.name, row.family, row.description)
        Console(width=160).print(table)
        typer.echo(f"{len(registry_frame())} features")
        return
    if data is None or as_of is None or out is None:
        raise InputError("features needs --data, --as-of and --out (or --list)")
    inputs = _inputs(data, column_map, encoding)
    io.ensure_not_input([out], _input_files(inputs))
    rows = write_features(inputs, as_of, out, threads=threads, memory_limit=memory_limit)
    registry = out.with_name(out.name + ".registry.csv")
    io.write_table(registry_frame(), registry)
    io.write_json(io.build_manifest(
        "features", {"data": data, "as_of": as_of, "out": out, "threads": threads},
        seed=None, inputs=_input_files(inputs), outputs={out.name: rows}),
        io.manifest_path_for(out))
    _say(f"wrote {out}: {rows:,} customers x {len(registry_frame())} features as of {as_of}")


@app.command()
def labels(
    data: Annotated[Path, typer.Option(help="Folder with customers and events tables.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Snapshot date YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv).")],
    horizon: Annotated[int, typer.Option(help="Label window length (days).")] = 30,
    gap: Annotated[int, typer.Option(help="Days between the as-of date and the window.")] = 0,
    drain_share: Annotated[float, typer.Option(
        "--drain-share", help="Also churned when the balance falls below this share of its "
        "as-of level (0 = closures only).")] = 0.0,
    min_balance: Annotated[float, typer.Option(
        "--min-balance", help="Balance (currency) needed for the drain rule.")] = 1000.0,
    column_map: Annotated[Path | None, typer.Option("--column-map")] = None,
    encoding: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Churn labels: churned in [as-of + gap, as-of + gap + horizon) (closure or drain)."""
    from uplift import io
    from uplift.features.labels import build_labels

    inputs = _inputs(data, column_map, encoding)
    io.ensure_not_input([out], _input_files(inputs))
    table = build_labels(inputs, as_of, horizon_days=horizon, gap_days=gap,
                         drain_share=drain_share, min_balance=min_balance)
    io.write_table(table, out)
    io.write_json(io.build_manifest(
        "labels", {"data": data, "as_of": as_of, "horizon": horizon, "gap": gap,
                   "drain_share": drain_share, "min_balance": min_balance, "out": out},
        seed=None, inputs=_input_files(inputs), outputs={out.name: len(table)}),
        io.manifest_path_for(out))
    _say(f"wrote {out}: {len(table):,} customers open at {as_of}, churn rate "
         f"{table['churned'].mean():.3f}")


def _print_allocation(result, as_json: bool, outlook: dict | None = None,
                      files: dict[str, str] | None = None) -> None:
    import json

    from uplift.report.console import plan_lines

    s = result.summary
    if as_json:
        typer.echo(json.dumps({**s, "excluded": result.excluded, "outlook": outlook},
                              default=float))
        return
    if _state["quiet"]:
        return
    for line in plan_lines(s, result.excluded, outlook, files):
        typer.echo(line)


@app.command()
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
    import pandas as pd

    from uplift import io
    from uplift.allocate import allocate as run_allocation
    from uplift.allocate.plan import read_contacts, read_scores
    from uplift.campaign import load_campaign_spec

    io.ensure_not_input([out, curve], [scores, campaign, contacts])
    spec = load_campaign_spec(campaign)
    result = run_allocation(
        read_scores(scores, spec.offer_names), spec, budget=budget, solver=solver,
        confident=confident,
        contacts=read_contacts(contacts), as_of=pd.Timestamp(as_of) if as_of else None,
        seed=seed, time_limit=time_limit, curve_points=9 if curve else 0, source=str(scores))
    io.write_table(result.plan, out)
    if curve is not None:
        io.write_table(result.curve, curve)
    io.write_json(io.build_manifest(
        "allocate", {"scores": scores, "campaign": campaign, "budget": budget,
                     "solver": solver, "confident": confident, "as_of": as_of},
        seed=seed, inputs=[p for p in (scores, campaign, contacts) if p],
        outputs={out.name: len(result.plan)},
        extra={"summary": result.summary, "excluded": result.excluded}),
        io.manifest_path_for(out))
    _print_allocation(result, as_json)


@app.command()
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
    from uplift import io
    from uplift.pipeline import default_cache
    from uplift.pipeline import train as fit_models
    from uplift.planner import prepare_run

    run = prepare_run(data, as_of, config, seed, cache=default_cache(), progress=_say)
    target = out or default_cache() / "models" / run.key
    io.ensure_not_input([target], _input_files(run.inputs))
    with io.directory_lock(target), _stages(TRAIN_STAGES) as progress:
        fit_models(run.inputs, run.day, target, run.settings, seed=seed, progress=progress,
                   stamp={"fingerprint": run.key, "data": str(run.folder), "as_of": run.day,
                          "seed": seed})
    _say(f"models -> {target}")


@app.command()
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
) -> None:
    """Plan a retention campaign end to end: features, churn, effects, allocation, report.

    Writes the plan (every selected customer, contacted or held out), the call list
    (contacted customers only, ranked by expected net gain), the holdout list and the
    report."""
    from uplift.planner import PlanRequest, execute, prepare

    job = prepare(PlanRequest(
        budget=budget, campaign=campaign, data=data, as_of=as_of, model=model, out=out,
        report=report, config=config, confident=confident, seed=seed, contacts=contacts,
        call_list=call_list, holdout_list=holdout_list, left_out=left_out), progress=_say)
    with _stages(PLAN_STAGES + (TRAIN_STAGES if job.training else 0)) as progress:
        outcome = execute(job, progress)
    result, outlook, files, summary = (outcome.result, outcome.outlook, outcome.files,
                                       outcome.summary)
    _print_allocation(result, as_json, outlook, files)
    if not as_json and not _state["quiet"]:
        typer.echo(f"plan -> {out}; report -> {report} ({summary['seconds_total']:.0f} s)")


@app.command()
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
    from uplift import io
    from uplift.evaluate import evaluate_ab
    from uplift.evaluate.outcomes import recorded_settings
    from uplift.evaluate.report import ab_html

    io.ensure_not_input([report, json_out], [outcomes, customers])
    recorded = recorded_settings(outcomes)
    arm = arm or recorded.get("arm")
    control = control or recorded.get("control")
    metric = metric or recorded.get("metric")
    if arm is None or control is None or metric is None:
        raise InputError(f"{outcomes}: give --arm, --control and --metric (no manifest from "
                         "`uplift outcomes` beside the table)")
    strata = strata or recorded.get("strata")
    propensity = propensity or recorded.get("propensity")
    cost = cost or recorded.get("cost")
    value = value or recorded.get("value")
    retention = retention or bool(recorded.get("retention", False))
    if recorded:
        _say(f"from {outcomes.name}'s manifest: arm {arm}, control {control}, metric {metric}, "
             f"strata {strata}, propensity {propensity}, cost {cost}, value {value}")
    planned = None
    if split:
        try:
            planned = {k: float(v) for k, v in (p.split("=") for p in split.split(","))}
        except ValueError as exc:
            raise InputError(f"--split {split!r}: expected arm=share,arm=share") from exc
    frame = io.read_table(outcomes, encoding=encoding)
    if customers is not None:
        from uplift.evaluate.outcomes import join_customers

        frame = join_customers(frame, io.read_table(customers), source=str(outcomes),
                               customers_source=str(customers))
    result = evaluate_ab(frame, arm=arm, control=control, metric=metric,
                         pre_metric=pre_metric, cost=cost, value=value, planned_split=planned,
                         segment=segment, alpha=alpha, correction=correction,
                         retention_metric=retention, seed=seed, source=str(outcomes),
                         strata=strata, propensity=propensity)
    if json_out:
        io.write_json(result, json_out)
    if report:
        io.write_text(ab_html(result, f"Campaign evaluation: {metric}"), report)
    base = next(iter(result["arms"].values()))["mean_control"]
    typer.echo(f"{metric}: control {control} mean {base:.4f}; correction {correction}")
    typer.echo(f"{'arm':<18}{'n':>9}{'mean':>9}{'lift':>9}{'95% CI':>22}{'p':>10}{'p adj':>10}")
    for a, r in result["arms"].items():
        ci = f"[{r['lift_low']:+.4f}, {r['lift_high']:+.4f}]"
        typer.echo(f"{a:<18}{r['n']:>9,}{r['mean']:>9.4f}{r['lift']:>+9.4f}{ci:>22}"
                   f"{r['p_value']:>10.2g}{r['p_adjusted']:>10.2g}")
    if "sample_ratio" in result:
        s = result["sample_ratio"]
        typer.echo(f"sample ratio: chi-square p = {s['p_value']:.4g} "
                   f"({'MISMATCH' if s['mismatch'] else 'no mismatch'} at p < 0.001)")
    total = result.get("campaign")
    if total is not None:
        money = total.get("money")
        net = (f"; net {money['net_profit']:,.0f} [{money['net_profit_low']:,.0f}, "
               f"{money['net_profit_high']:,.0f}]" if money else "")
        typer.echo(f"whole campaign ({total['treated']:,} contacted vs {total['control']:,} "
                   f"held out, within strata): change in {total['metric']} summed over the "
                   f"contacted {total['incremental']:+,.1f} [{total['incremental_low']:+,.1f}, "
                   f"{total['incremental_high']:+,.1f}]{net}")
    for a, m in result.get("money", {}).items():
        roi = (f"ROI {m['roi']:.2f} [{m['roi_low']:.2f}, {m['roi_high']:.2f}] (bootstrap "
               f"[{m['roi_boot_low']:.2f}, {m['roi_boot_high']:.2f}])" if "roi" in m else "")
        typer.echo(f"{a}: incremental value {m['incremental_value']:,.0f} "
                   f"[{m['incremental_value_low']:,.0f}, {m['incremental_value_high']:,.0f}], "
                   f"cost {m['cost']:,.0f}, net {m['net_profit']:,.0f} {roi}")


@app.command()
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
    start: Annotated[str | None, typer.Option(help="Campaign start (default: the plan's "
                                              "date from its manifest).")] = None,
) -> None:
    """Build the outcomes table after the campaign window, ready for `uplift evaluate`.

    One row per selected customer: arm (offer, or control for the holdout), stratum,
    propensity, churned/retained, retained value, new business and cost."""
    from uplift import io
    from uplift.evaluate.outcomes import EVALUATE_SETTINGS, build_outcomes, plan_context
    from uplift.security import protect_ids
    from uplift.validation import find_table

    context = plan_context(plan)
    start = start or context["start"]
    if start is None:
        raise InputError(f"{plan}: its manifest has no date; give --start")
    customers_path = find_table(data, "customers") if data is not None else None
    if data is not None and customers_path is None:
        raise InputError(f"{data}: no customers table")
    io.ensure_not_input([out], [plan, events, customers_path])
    table = io.read_table(plan)
    logged = protect_ids(io.read_table(events), source=str(events))
    customers = (protect_ids(io.read_table(customers_path), source=str(customers_path))
                 if customers_path is not None else None)
    result = build_outcomes(table, logged, start=start, end=as_of, customers=customers,
                            strata=context["strata"], plan_source=str(plan),
                            events_source=str(events))
    io.write_table(result, out)
    io.write_json(io.build_manifest(
        "outcomes", {"plan": plan, "events": events, "as_of": as_of, "start": start,
                     "data": data},
        seed=None, inputs=[p for p in (plan, events, customers_path) if p is not None],
        outputs={out.name: len(result)}, extra={"evaluate": EVALUATE_SETTINGS}),
        io.manifest_path_for(out))
    held = int((result["arm"] == EVALUATE_SETTINGS["control"]).sum())
    _say(f"wrote {out}: {len(result):,} customers ({len(result) - held:,} contacted, {held:,} "
         f"held out), churned {result['churned'].mean():.2%} from {start} to {as_of}; next: "
         f"uplift evaluate --outcomes {out}")


@app.command("simulate-policy")
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
    from uplift import io
    from uplift.effects.money import build_money
    from uplift.evaluate.report import policy_html
    from uplift.evaluate.simulation import simulate_policies

    io.ensure_not_input([report, json_out], [log, truth])
    frame = io.read_table(log)
    arms = (sorted(set(frame[arm].astype(str)) - {str(control)})
            if arm in frame.columns else [])
    money = build_money(value, cost, arms, str(control))
    result = simulate_policies(
        frame, arm=arm, control=control, outcome=outcome, propensity=propensity,
        policies=policy, goal=goal, features=features.split(",") if features else None,
        truth=truth, seed=seed, source=str(log), money=money)
    if money is not None:
        _say(f"values are net value per customer: {money.describe()}")
    elif any(p.startswith(("tree:", "model:")) for p in policy):
        _say("values are outcomes, not money: model and tree policies ignore cost unless "
             "--value/--cost are given here or were stored with the model at fit")
    _say(f"outcome model uses {result['features']} numeric columns (never those measured "
         f"after assignment: {', '.join(result['excluded_after_assignment'])})")
    for message in result["warnings"]:
        typer.echo(f"WARNING: {message}", err=True)        # shown even with --quiet
    results, diffs = result["policies"], result["differences"]
    if json_out:
        io.write_json(result, json_out)
    if report:
        io.write_text(policy_html(result, f"Policy simulation: {outcome}"), report)
    typer.echo(f"{'policy':<48}{'treated':>8}{'DR':>9}{'95% CI':>20}{'SNIPW':>9}{'ESS':>9}"
               f"{'truth':>9}")
    for spec, r in results.items():
        ci = f"[{r['dr']['low']:.4f}, {r['dr']['high']:.4f}]"
        true = f"{r['true_value']:.4f}" if "true_value" in r else ""
        typer.echo(f"{spec[:47]:<48}{r['treated_share']:>8.1%}{r['dr']['value']:>9.4f}{ci:>20}"
                   f"{r['snipw']['value']:>9.4f}{r['effective_sample_size']:>9,.0f}{true:>9}")
    for name, d in diffs.items():
        dr = d["dr"]
        typer.echo(f"paired DR difference {name[:70]}: {dr['value']:+.4f} "
                   f"[{dr['low']:+.4f}, {dr['high']:+.4f}]")


churn_app = typer.Typer(help="Churn risk model: fit, score, build training tables.",
                        no_args_is_help=True)
app.add_typer(churn_app, name="churn")


@churn_app.command("dataset")
def churn_dataset(
    data: Annotated[Path, typer.Option(help="Folder with customers and events tables.")],
    as_of: Annotated[list[str], typer.Option("--as-of", help="Snapshot date; repeat for "
                                             "several monthly snapshots.")],
    out: Annotated[Path, typer.Option(help="Output table (.parquet or .csv).")],
    horizon: Annotated[int, typer.Option(help="Label window (days).")] = 30,
    gap: Annotated[int, typer.Option(help="Gap before the label window (days).")] = 0,
    threads: Annotated[int, typer.Option(help="DuckDB threads.")] = 1,
) -> None:
    """Features + churn labels for one or more snapshots, stacked into one training table."""
    from uplift import io
    from uplift.churn.dataset import snapshot_table

    inputs = _inputs(data, None, None)
    io.ensure_not_input([out], _input_files(inputs))
    table = snapshot_table(inputs, as_of, horizon_days=horizon, gap_days=gap, threads=threads,
                           progress=_say)
    io.write_table(table, out)
    io.write_json(io.build_manifest(
        "churn dataset", {"data": data, "as_of": as_of, "horizon": horizon, "gap": gap},
        seed=None, inputs=_input_files(inputs), outputs={out.name: len(table)}),
        io.manifest_path_for(out))
    _say(f"wrote {out}: {len(table):,} rows, {len(as_of)} snapshot(s), churn rate "
         f"{table['churned'].mean():.3f}")


@churn_app.command("fit")
def churn_fit(
    table: Annotated[Path, typer.Option(help="Training table (.csv or .parquet).")],
    label: Annotated[str, typer.Option(help="Binary label column (1 = churned).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
    time_col: Annotated[str | None, typer.Option(
        "--time-col", help="Snapshot date column: validate on the latest snapshot.")] = None,
    config: Annotated[Path | None, typer.Option(help="Settings YAML (tiers, threads).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="LightGBM threads.")] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
) -> None:
    """Fit the churn model on any customer table with a label column."""
    from uplift import io
    from uplift.churn import ChurnModel
    from uplift.config import load_settings

    settings = load_settings(config)
    io.ensure_not_input([out], [table])
    frame = io.read_table(table, encoding=encoding)
    model = ChurnModel(tiers=settings.churn.tiers, random_state=seed,
                       threads=threads or settings.runtime.threads)
    model.fit(frame, label=label, id_col=id_col, time_col=time_col, source=str(table))
    model.save(out)
    io.write_json(io.build_manifest(
        "churn fit", {"table": table, "label": label, "id": id_col, "time_col": time_col},
        seed=seed, inputs=[table], outputs={"rows": len(frame)}), out / "manifest.json")
    e = model.validation_["evaluation"]
    typer.echo(f"churn model -> {out}: ROC-AUC {e['roc_auc']:.3f}, PR-AUC {e['pr_auc']:.3f}, "
               f"Brier {e['brier']:.4f}, ECE {e['ece']:.4f}, top-decile precision "
               f"{e['top_decile_precision']:.3f} ({model.validation_['scheme']}; "
               f"{model.validation_['calibration_method']} calibration)")


@churn_app.command("score")
def churn_score(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift churn fit`.")],
    table: Annotated[Path, typer.Option(help="Customers to score (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Scores table to write.")],
    id_col: Annotated[str | None, typer.Option("--id", help="Id column (default: the "
                                               "model's).")] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
) -> None:
    """Score customers: id, churn_risk, tier, reason_1..reason_3."""
    from uplift import io
    from uplift.churn import ChurnModel

    io.ensure_not_input([out], [table, model])
    fitted = ChurnModel.load(model)
    frame = io.read_table(table, encoding=encoding)
    scores = fitted.score(frame, source=str(table), id_col=id_col)
    _say(fitted.id_note_)
    io.write_table(scores, out, ids=_id_columns(scores.columns[0], fitted.id_note_))
    io.write_json(io.build_manifest("churn score", {"model": model, "table": table},
                                    seed=None, inputs=[table], outputs={out.name: len(scores)}),
                  io.manifest_path_for(out))
    counts = scores["tier"].value_counts()
    _say(f"wrote {out}: {len(scores):,} customers; " + ", ".join(
        f"{t} {n:,}" for t, n in counts.items()))


ValueOption = Annotated[float | None, typer.Option(
    "--value", help="What one unit of the outcome is worth (currency): one more visit or "
    "purchase for an 'increase' goal, one prevented churner for 'decrease'. With it, "
    "recommendations maximise expected net value.")]
CostOption = Annotated[list[str] | None, typer.Option(
    "--cost", metavar="ARM=COST", help="Cost per customer of each offer (currency): "
    "ARM=AMOUNT or ARM=COLUMN "
    "(a column with each customer's cost); repeat or separate by commas; AMOUNT or COLUMN "
    "alone applies to every offer. Needs --value.")]


def _money_note(money) -> str:
    if money is None:
        return ("recommendations ignore cost (no --value/--cost given): they maximise the "
                "outcome, not money")
    return f"recommendations maximise expected net value: {money.describe()}"


def _id_columns(name: str, note: str) -> list[str]:
    """Columns to pseudonymise in an output: customer ids, never generated row numbers."""
    return ["customer_id"] + ([name] if not note.startswith("no id column") else [])


effects_app = typer.Typer(help="Offer effects (uplift) from a randomised campaign table.",
                          no_args_is_help=True)
app.add_typer(effects_app, name="effects")


@effects_app.command("fit")
def effects_fit(
    table: Annotated[Path, typer.Option(help="Campaign table: one row per customer.")],
    treatment: Annotated[str, typer.Option(help="Column naming the arm received.")],
    control: Annotated[str, typer.Option(help="Value of the control arm.")],
    outcome: Annotated[str, typer.Option(help="Outcome column (0/1 or a number).")],
    out: Annotated[Path, typer.Option(help="Model folder to write.")],
    features: Annotated[str | None, typer.Option(
        help="Comma-separated feature columns (default: all other usable columns).")] = None,
    propensity: Annotated[str | None, typer.Option(
        help="Column with the assigned arm's probability (estimated when absent).")] = None,
    id_col: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
    goal: Annotated[str, typer.Option(help="'increase' (visits, value) or 'decrease' "
                                      "(churn): which direction of the outcome is good.")
                    ] = "increase",
    outcome_type: Annotated[str, typer.Option(
        "--outcome-type", help="auto, binary (0/1 required, e.g. churn) or continuous.")
    ] = "auto",
    learners: Annotated[str, typer.Option(help="Candidate learners: t,s,x,forest.")] = "t,x",
    folds: Annotated[int, typer.Option(help="Cross-fitting folds.")] = 3,
    min_rows: Annotated[int, typer.Option("--min-rows", help="Minimum rows per arm.")] = 50,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option(help="LightGBM threads.")] = 1,
    value: ValueOption = None,
    cost: CostOption = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
) -> None:
    """Fit per-offer effects with cross-fitted model selection; prints the comparison.

    With --value (and --cost) the model stores what outcomes are worth and offers cost:
    `effects predict` then adds gain_<arm> and recommends by expected net value."""
    from uplift import io
    from uplift.effects import BoostSettings, UpliftEstimator
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money

    io.ensure_not_input([out], [table])
    frame = io.read_table(table, encoding=encoding)
    arms = (sorted(set(frame[treatment].astype(str)) - {str(control)})
            if treatment in frame.columns else [])
    money = build_money(value, cost, arms, str(control))
    estimator = UpliftEstimator(learners=tuple(x.strip() for x in learners.split(",") if x),
                                n_folds=folds, min_rows_per_arm=min_rows, random_state=seed,
                                boost=BoostSettings(threads=threads))
    model = EffectsModel(treatment=treatment, control=control, outcome=outcome,
                         features=features.split(",") if features else None,
                         propensity=propensity, id_col=id_col, estimator=estimator, goal=goal,
                         outcome_type=outcome_type, money=money)
    model.fit(frame, source=str(table))
    model.save(out)
    io.write_json(io.build_manifest(
        "effects fit", {"table": table, "treatment": treatment, "control": control,
                        "outcome": outcome, "learners": learners, "folds": folds},
        seed=seed, inputs=[table], outputs={"rows": len(frame)}), out / "manifest.json")
    typer.echo(model.estimator_.comparison_.round(4).to_string(index=False))
    typer.echo(f"chosen learner: {model.estimator_.learner_} -> {out}")
    policy = model.estimator_.policy_
    switches = {arm: sum(1 for adv, se in leaves.values() if adv - se > 0)
                for arm, leaves in policy.leaves_.items()}
    if money is None:
        typer.echo(f"policy tree: default {policy.default_}; groups (leaves) that measurably "
                   f"do better with another arm: " + (", ".join(
                       f"{a} {n}" for a, n in switches.items() if n) or "none"))
    else:
        import pandas as pd

        shares = pd.Series(model.recommend(frame, source=str(table))).value_counts(
            normalize=True)
        typer.echo("net-value policy on the training rows: " + ", ".join(
            f"{a} {s:.1%}" for a, s in shares.items()))
    typer.echo(_money_note(money))


@effects_app.command("predict")
def effects_predict(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift effects fit`.")],
    table: Annotated[Path, typer.Option(help="Customers with the model's feature columns.")],
    out: Annotated[Path, typer.Option(help="Output table: effect_<arm>, se_<arm>, "
                                      "recommended.")],
    evidence: Annotated[float, typer.Option(
        "--evidence", help="Standard errors by which a group must do better with another arm "
        "before `recommended` departs from the best single arm (with money: by which an "
        "offer's net gain must beat control).")] = 1.0,
    id_col: Annotated[str | None, typer.Option("--id", help="Id column to carry into the "
                                               "output (default: the fit's, else the column "
                                               "the fit found id-like, else 'row').")] = None,
    value: ValueOption = None,
    cost: CostOption = None,
    threads: Annotated[int, typer.Option(help="LightGBM threads for prediction (same "
                                         "results; faster on idle cores).")] = 1,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
) -> None:
    """Predict each offer's effect (and its standard error) per customer, and the recommended
    arm from the model's policy tree; with money (--value/--cost here or at fit) also
    gain_<arm>, the expected net gain in currency, and recommendations by net value."""
    from uplift import io
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money

    io.ensure_not_input([out], [table, model])
    fitted = EffectsModel.load(model)
    if threads < 1:
        raise InputError(f"--threads must be at least 1, not {threads}")
    fitted.estimator_.set_threads(threads)
    money = fitted.money_for(build_money(value, cost, fitted.arms, str(fitted.control)))
    frame = io.read_table(table, encoding=encoding)
    predictions = fitted.predict(frame, source=str(table), money=money, id_col=id_col)
    predictions["recommended"] = fitted.recommend(frame, z=evidence, source=str(table),
                                                  money=money, id_col=id_col)
    _, _, id_note = fitted.ids(frame, id_col=id_col, source=str(table))
    io.write_table(predictions, out, ids=_id_columns(predictions.columns[0], id_note))
    io.write_json(io.build_manifest("effects predict", {"model": model, "table": table,
                                                        "value": value, "cost": cost},
                                    seed=None, inputs=[table],
                                    outputs={out.name: len(predictions)}),
                  io.manifest_path_for(out))
    shares = predictions["recommended"].value_counts(normalize=True)
    _say(f"wrote {out}: {len(predictions):,} rows, arms {', '.join(fitted.arms)}; {id_note}")
    _say("recommended: " + ", ".join(f"{a} {s:.1%}" for a, s in shares.items()))
    _say(_money_note(money))


@effects_app.command("evaluate")
def effects_evaluate(
    model: Annotated[Path, typer.Option(help="Model folder from `uplift effects fit`.")],
    table: Annotated[Path, typer.Option(help="Labelled campaign table (arm and outcome).")],
    boot: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    evidence: Annotated[float, typer.Option(
        "--evidence", help="Evidence rule of the recommended policy (as in `effects "
        "predict`).")] = 1.0,
    value: ValueOption = None,
    cost: CostOption = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="JSON results to write.")
                        ] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding.")] = None,
) -> None:
    """Qini, AUUC and uplift@30% per offer vs control, with 95% bootstrap intervals; with
    money (--value/--cost here or at fit) the net value of the recommended policy against
    treating everyone with one offer and treating no one, with 95% intervals, and the
    incremental response rate and net incremental revenue of the recommended set."""
    import numpy as np

    from uplift import io
    from uplift.effects.metrics import bootstrap_arm_metrics
    from uplift.effects.model import EffectsModel
    from uplift.effects.money import build_money
    from uplift.effects.netvalue import net_value_report

    io.ensure_not_input([json_out], [table, model])
    fitted = EffectsModel.load(model)
    money = fitted.money_for(build_money(value, cost, fitted.arms, str(fitted.control)))
    frame = io.read_table(table, encoding=encoding)
    for col in (fitted.treatment, fitted.outcome):
        if col not in frame.columns:
            raise InputError(f"{table}: column {col!r} needed for evaluation is missing")
    inputs = frame.drop(columns=[c for c in (fitted.treatment, fitted.outcome,
                                             fitted.propensity) if c and c in frame.columns])
    effects = fitted.predict(inputs, source=str(table), with_se=False, money=money)
    arms = frame[fitted.treatment].astype(str).to_numpy()
    y = frame[fitted.outcome].to_numpy(dtype=float)
    good = fitted.estimator_._good(y)
    results: dict = {"metrics": {}}
    typer.echo(f"{'arm':<16}{'metric':<14}{'value':>10}{'95% low':>10}{'95% high':>10}")
    for arm in fitted.arms:
        mask = np.isin(arms, [arm, str(fitted.control)])
        if not (arms[mask] == arm).any():
            continue
        benefit = fitted.estimator_._benefit(effects[f"effect_{arm}"].to_numpy())
        result = bootstrap_arm_metrics(good[mask], benefit[mask],
                                       (arms[mask] == arm).astype(int), n_boot=boot, seed=seed)
        results["metrics"][arm] = result
        for metric, (v, low, high) in result.items():
            typer.echo(f"{arm:<16}{metric:<14}{v:>10.4f}{low:>10.4f}{high:>10.4f}")
    if money is None:
        typer.echo(_money_note(None) + "; pass --value/--cost for the net value of the "
                   "recommended policy")
    else:
        report = net_value_report(fitted, frame, money, z=evidence, source=str(table))
        results["net_value"] = report
        typer.echo(f"net value vs treating no one ({money.describe()}; {report['design']})")
        typer.echo(f"{'policy':<32}{'treated':>9}{'per customer':>14}{'95% CI':>24}"
                   f"{'total':>14}")
        for name, r in report["policies"].items():
            ci = f"[{r['low']:+.4f}, {r['high']:+.4f}]"
            typer.echo(f"{name[:31]:<32}{r['treated_share']:>9.1%}"
                       f"{r['net_value_per_customer']:>+14.4f}{ci:>24}{r['total']:>+14,.0f}")
        for arm, r in report["recommended_set"].items():
            if "irr" in r:
                typer.echo(f"recommended {arm}: {r['recommended']:,} customers; incremental "
                           f"response rate {r['irr']:+.4f}, net incremental revenue "
                           f"{r['nir']:+,.2f} ({r['rows_offer']:,} offer / "
                           f"{r['rows_control']:,} control rows)")
            else:
                typer.echo(f"recommended {arm}: {r['recommended']:,} customers; too few "
                           "randomised rows in the set for IRR/NIR")
    if json_out:
        io.write_json(results, json_out)


import_app = typer.Typer(help="Import a public bank dataset into the data contract.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("berka")
def import_berka(
    src: Annotated[Path, typer.Option(help="Folder with the PKDD'99 Berka .asc files.")],
    out: Annotated[Path, typer.Option(help="Folder to write customers/events Parquet into.")],
) -> None:
    """Map the Berka PKDD'99 bank tables onto customers.parquet and events.parquet."""
    from uplift import io
    from uplift.features.berka import load_berka

    io.ensure_not_input([out], [src])
    customers, events = load_berka(src)
    with io.staged_directory(out) as stage:
        customers.to_parquet(stage / "customers.parquet", index=False)
        events.to_parquet(stage / "events.parquet", index=False)
        io.write_json(io.build_manifest(
            "import berka", {"src": src, "out": out}, seed=None,
            outputs={"customers.parquet": len(customers), "events.parquet": len(events)}),
            stage / "manifest.json")
    _say(f"wrote {out}: {len(customers):,} customers, {len(events):,} events "
         f"({events['ts'].min().date()} .. {events['ts'].max().date()})")


keys_app = typer.Typer(help="Keys for pseudonyms and encryption at rest.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    out: Annotated[Path, typer.Option(help="Key file to create (readable by you only).")],
) -> None:
    """Create a random 256-bit key file (for UPLIFT_PSEUDONYM_KEY_FILE or
    UPLIFT_MASTER_KEY_FILE). Keep it outside the repository and the data folders."""
    from uplift.security.keys import write_key_file

    typer.echo(f"key {write_key_file(out)} -> {out}")


@keys_app.command("seal")
def keys_seal(
    source: Annotated[Path, typer.Argument(help="Plaintext table (CSV or Parquet) to seal.")],
    out: Annotated[Path, typer.Option(help="Sealed copy to write (same format).")],
) -> None:
    """Encrypt a source table under the master key, byte for byte (ids are not changed), so it
    can be read while a master key is set without --allow-plaintext."""
    from uplift import io

    io.seal_file(source, out)
    _say(f"sealed {source} -> {out}")


@keys_app.command("rotate")
def keys_rotate(
    paths: Annotated[list[Path], typer.Argument(help="Encrypted files or folders to re-wrap.")],
    old_key_file: Annotated[Path, typer.Option("--old-key-file", help="Current master key.")],
    new_key_file: Annotated[Path, typer.Option("--new-key-file", help="New master key.")],
) -> None:
    """Re-wrap every encrypted file's data key under a new master key (data not re-encrypted).

    Safe to rerun after an interruption: files already under the new key are skipped."""
    from uplift import io
    from uplift.security.envelope import is_encrypted, rewrap
    from uplift.security.keys import key_id, read_key_file

    old, new = read_key_file(old_key_file), read_key_file(new_key_file)
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: not found")
        files.extend(p for p in io.files_of(path) if is_encrypted(p))
    changed = sum(rewrap(f, old, new) for f in files)
    typer.echo(f"re-wrapped {changed} of {len(files)} encrypted file(s) from key "
               f"{key_id(old)} to {key_id(new)}")


audit_app = typer.Typer(help="The hash-chained audit log of every command.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    log: Annotated[Path | None, typer.Option(help="Audit log (default: UPLIFT_AUDIT_LOG or "
                                             "the user's uplift data folder).")] = None,
) -> None:
    """Check the audit chain; report the first edited, removed or reordered entry."""
    from uplift.security import audit

    verdict = audit.verify(log)
    where = log or audit.log_path()
    if not verdict.ok:
        raise InputError(f"{where}: audit log is broken after {verdict.entries} good "
                         f"entr{'y' if verdict.entries == 1 else 'ies'}: {verdict.problem}")
    typer.echo(f"{where}: {verdict.entries} entries, chain intact; head {verdict.head}")


@app.command("export")
def export(
    plan: Annotated[Path, typer.Option(help="Plan written by `uplift plan` or `allocate`.")],
    out: Annotated[Path, typer.Option(help="Campaign list to write (.csv or .parquet).")],
    data: Annotated[Path | None, typer.Option(help="Data folder with the customers table "
                                              "(default: the demo bank).")] = None,
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
    from uplift.pipeline import default_cache, demo_data
    from uplift.security.export import export_call_list
    from uplift.validation import find_table

    def customers_table() -> Path:
        folder = data if data is not None else demo_data(default_cache(), _say)
        found = customers or find_table(folder, "customers")
        if found is None:
            raise InputError(f"{folder}: no customers table")
        return found

    rows, reidentified = export_call_list(plan, out, customers=customers_table,
                                          include_holdout=holdout)
    if reidentified:
        _say(f"wrote {out}: {rows:,} customers with raw ids (export recorded in the audit log)")
    else:
        _say(f"wrote {out}: {rows:,} customers (the plan holds raw ids)")


def _is_usage_error(exc: Exception) -> bool:
    """Command-line parsing errors (typer's bundled click raises its own classes)."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


GROUPS = ("churn", "effects", "import", "audit", "keys")


def _command_name(argv: list[str]) -> str:
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in GROUPS and len(words) > 1 else words[0]


def _dispatch(argv: list[str]) -> tuple[int, str | None]:
    """Run the app; returns (exit code, error message or None)."""
    debug = "--debug" in argv
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # type: ignore[assignment]
        try:
            result = app(args=argv, prog_name="uplift", standalone_mode=False)
        except UpliftError as exc:
            if debug:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            return exc.exit_code, str(exc)
        except typer.Exit as exc:
            return exc.exit_code, None
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("aborted", err=True)
            return 1, "aborted"
        except Exception as exc:
            if _is_usage_error(exc):
                exc.show()  # type: ignore[attr-defined]
                return int(exc.exit_code), str(exc)  # type: ignore[attr-defined]
            if debug:
                traceback.print_exc()
            typer.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(rerun with --debug for details)", err=True)
            return 1, f"internal error: {type(exc).__name__}: {exc}"
    return (result if isinstance(result, int) else 0), None


GLOBAL_FLAGS = {"--quiet": "--quiet", "-q": "--quiet", "--debug": "--debug",
                "--allow-plaintext": "--allow-plaintext"}
TRUE_WORDS, FALSE_WORDS = {"true", "1", "yes"}, {"false", "0", "no"}


def global_options_first(argv: list[str]) -> list[str]:
    """Accept the global options anywhere (``uplift plan --quiet`` as ``uplift --quiet plan``)
    and in the ``--debug=true`` / ``--quiet=false`` form; other arguments keep their order.
    Arguments after ``--`` are left alone."""
    front, rest = [], []
    for i, arg in enumerate(argv):
        if arg == "--":
            rest += argv[i:]
            break
        name, eq, value = arg.partition("=")
        if name in GLOBAL_FLAGS and (not eq or value.lower() in TRUE_WORDS | FALSE_WORDS):
            if not eq or value.lower() in TRUE_WORDS:
                front.append(GLOBAL_FLAGS[name])
            continue
        rest.append(arg)
    return list(dict.fromkeys(front)) + rest


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by :func:`main` and by tests).

    Every command (not ``--help``) appends one entry to the audit log, also when it fails.
    """
    import time

    from uplift.security import audit

    _state.update(debug=False, quiet=False, warnings_shown=set())
    argv = global_options_first(list(sys.argv[1:] if argv is None else argv))
    command = _command_name(argv)
    if not command or "--help" in argv or command in GROUPS:
        return _dispatch(argv)[0]
    started = time.perf_counter()
    if command != "audit verify":
        try:
            audit.check_ready()           # a command that could not be logged never runs
        except audit.AuditError as exc:
            typer.echo(f"error: {exc}", err=True)
            return 2
    with audit.recording() as recorder:
        code, message = _dispatch(argv)
    try:
        audit.append(command, argv, recorder, exit_code=code, message=message,
                     seconds=time.perf_counter() - started)
    except (OSError, audit.AuditError) as exc:
        typer.echo(f"error: cannot write the audit log {audit.log_path()}: {exc}", err=True)
        return code or 2
    return code


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so temporary files are removed on the way out."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)


def main() -> None:
    """Console-script entry point."""
    interrupt_on_sigterm()
    sys.exit(run())


if __name__ == "__main__":
    main()
