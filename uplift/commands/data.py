"""Data commands: simulate, validate, features, labels, import berka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from uplift.commands.shell import (
    ColumnMapOption,
    EncodingOption,
    SparkMasterOption,
    echo,
    say,
)
from uplift.errors import InputError


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
    from uplift.tasks.data import simulate_to_folder

    started = time.perf_counter()
    bank = simulate_to_folder(
        out, customers, months, seed=seed, start_date=start_date, triggers=triggers,
        progress=lambda done, total: say(f"  simulated {done:,}/{total:,} customers"))
    rows = bank.rows
    say(f"wrote {out}: {rows['customers.parquet']:,} customers, "
        f"{rows['events.parquet']:,} events, {rows['campaign_log.parquet']:,} campaign rows "
        f"(assignment {bank.assignment_date}) in {time.perf_counter() - started:.1f} s")


def validate(
    customers: Annotated[Path | None, typer.Option(help="Customers table.")] = None,
    events: Annotated[Path | None, typer.Option(help="Events table.")] = None,
    campaign_log: Annotated[Path | None, typer.Option("--campaign-log",
                                                      help="Campaign log table.")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Campaign outcomes table.")] = None,
    campaign: Annotated[Path | None, typer.Option(help="Campaign spec (YAML).")] = None,
    data: Annotated[Path | None, typer.Option(
        help="Folder with customers/events/campaign_log (.parquet or .csv).")] = None,
    column_map: ColumnMapOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Check input files against the data contracts and report every problem found."""
    from uplift.validation import validate_inputs

    for line in validate_inputs(customers=customers, events=events, campaign_log=campaign_log,
                                outcomes=outcomes, campaign=campaign, data=data,
                                column_map=column_map, encoding=encoding):
        echo(line)


def features(
    data: Annotated[Path | None, typer.Option(
        help="Folder with customers, events (and optional campaign_log, external_accounts, "
        "external_enquiries) tables.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Feature date YYYY-MM-DD: "
                                              "only events before it are used.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output table (.parquet or .csv).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="Print the feature registry.")] = False,
    column_map: ColumnMapOption = None,
    encoding: EncodingOption = None,
    threads: Annotated[int, typer.Option(help="DuckDB threads.")] = 1,
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", help="DuckDB memory limit, e.g. 2GB (spills to disk beyond; default: "
        "UPLIFT_DUCKDB_MEMORY_LIMIT, else 15% of the RAM).")] = None,
    engine: Annotated[str, typer.Option(
        help="duckdb (default) or spark: the same SQL on Spark, written as a Parquet folder "
        "(--out must end in .parquet; needs uplift\\[spark] and Java).")] = "duckdb",
    spark_master: SparkMasterOption = None,
) -> None:
    """Build one row of ~210 documented features per customer as of a date (DuckDB, or Spark
    with --engine spark)."""
    from uplift.features import registry_frame

    if list_:
        from rich.console import Console
        from rich.table import Table

        registry = registry_frame()
        table = Table("name", "family", "description", title="uplift features")
        for row in registry.itertuples():
            table.add_row(row.name, row.family, row.description)
        Console(width=160).print(table)
        typer.echo(f"{len(registry)} features")
        return
    if data is None or as_of is None or out is None:
        raise InputError("features needs --data, --as-of and --out (or --list)")
    from uplift.tasks.data import features_to_file, open_inputs

    rows = features_to_file(open_inputs(data, column_map, encoding), as_of, out,
                            threads=threads, memory_limit=memory_limit, engine=engine,
                            spark_master=spark_master)
    say(f"wrote {out}: {rows:,} customers x {len(registry_frame())} features as of {as_of}")


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
    column_map: ColumnMapOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Churn labels: churned in [as-of + gap, as-of + gap + horizon) (closure or drain)."""
    from uplift.tasks.data import labels_to_file, open_inputs

    table = labels_to_file(open_inputs(data, column_map, encoding), as_of, out,
                           horizon=horizon, gap=gap, drain_share=drain_share,
                           min_balance=min_balance)
    say(f"wrote {out}: {len(table):,} customers open at {as_of}, churn rate "
        f"{table['churned'].mean():.3f}")


def import_berka(
    src: Annotated[Path, typer.Option(help="Folder with the PKDD'99 Berka .asc files.")],
    out: Annotated[Path, typer.Option(help="Folder to write customers/events Parquet into.")],
) -> None:
    """Map the Berka PKDD'99 bank tables onto customers.parquet and events.parquet."""
    from uplift.tasks.data import import_berka_to_folder

    customers, events = import_berka_to_folder(src, out)
    say(f"wrote {out}: {len(customers):,} customers, {len(events):,} events "
        f"({events['ts'].min().date()} .. {events['ts'].max().date()})")
