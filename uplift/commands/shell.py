"""What every command shares: quiet/debug state, messages, progress display, common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

state: dict[str, Any] = {"debug": False, "quiet": False}

ValueOption = Annotated[float | None, typer.Option(
    "--value", help="What one unit of the outcome is worth (currency): one more visit or "
    "purchase for an 'increase' goal, one prevented churner for 'decrease'. With it, "
    "recommendations maximise expected net value.")]
CostOption = Annotated[list[str] | None, typer.Option(
    "--cost", metavar="ARM=COST", help="Cost per customer of each offer (currency): "
    "ARM=AMOUNT or ARM=COLUMN "
    "(a column with each customer's cost); repeat or separate by commas; AMOUNT or COLUMN "
    "alone applies to every offer. Needs --value.")]
EncodingOption = Annotated[str | None, typer.Option(help="Text encoding of CSV inputs.")]
ColumnMapOption = Annotated[Path | None, typer.Option(
    "--column-map", help="YAML: {table: {canonical_name: your_name}}.")]


def say(message: str) -> None:
    """A message on stderr, unless --quiet."""
    if not state["quiet"]:
        typer.echo(message, err=True)


def echo(message: str) -> None:
    """A result line on stdout, unless --quiet."""
    if not state["quiet"]:
        typer.echo(message)


class Stages:
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

    def __enter__(self) -> Stages:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.update(self.task, completed=self.expected)
        self.progress.stop()


def stages(expected: int):
    """A progress reporter for a long command: rich stages on a terminal, else plain lines."""
    import contextlib

    if state["quiet"] or not (sys.stdout.isatty() and sys.stderr.isatty()):
        return contextlib.nullcontext(say)
    return Stages(expected)


def show_warning(message: Warning | str, category: type[Warning], *_: object,
                 **__: object) -> None:
    """Print each distinct warning once per command, without a traceback."""
    text = str(message)
    shown = state.setdefault("warnings_shown", set())
    if text in shown:
        return
    shown.add(text)
    typer.echo(f"warning: {text}", err=True)


def money_note(money) -> str:
    """What recommendations maximise, for the effects commands."""
    if money is None:
        return ("recommendations ignore cost (no --value/--cost given): they maximise the "
                "outcome, not money")
    return f"recommendations maximise expected net value: {money.describe()}"
