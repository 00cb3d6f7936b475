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
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    _state["debug"] = debug
    _state["quiet"] = quiet


def _show_warning(message: Warning | str, category: type[Warning], *_: object,
                  **__: object) -> None:
    typer.echo(f"warning: {message}", err=True)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables into.")],
    customers: Annotated[int, typer.Option("--customers", help="Number of customers.")] = 50_000,
    months: Annotated[int, typer.Option("--months", help="Months of event history.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    start_date: Annotated[str, typer.Option("--start-date",
                                            help="First day of the history.")] = "2025-01-01",
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
            events_path=stage / "events.parquet",
            progress=lambda done, total: _say(f"  simulated {done:,}/{total:,} customers"),
        )
        rows = write_bank(bank, stage)
        manifest = io.build_manifest(
            "simulate",
            {"customers": customers, "months": months, "start_date": start_date, "out": out},
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


def _is_usage_error(exc: Exception) -> bool:
    """Command-line parsing errors (typer's bundled click raises its own classes)."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by :func:`main` and by tests)."""
    _state.update(debug=False, quiet=False)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # type: ignore[assignment]
        try:
            result = app(args=argv, prog_name="uplift", standalone_mode=False)
        except UpliftError as exc:
            if debug:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            return exc.exit_code
        except typer.Exit as exc:
            return exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("aborted", err=True)
            return 1
        except Exception as exc:
            if _is_usage_error(exc):
                exc.show()  # type: ignore[attr-defined]
                return int(exc.exit_code)  # type: ignore[attr-defined]
            if debug:
                traceback.print_exc()
            typer.echo(f"internal error: {type(exc).__name__}: {exc} "
                       "(rerun with --debug for details)", err=True)
            return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
