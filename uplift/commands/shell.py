"""What every command shares: quiet/debug state, messages, progress display, common options."""

from __future__ import annotations

import sys
import time
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
SparkMasterOption = Annotated[str | None, typer.Option(
    "--spark-master", help="Spark master URL for --engine spark (default: SPARK_MASTER, else "
    "local[2]).")]


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
        self.stage = "starting"
        self.stage_started = time.monotonic()

    def fraction(self, done: float) -> None:
        """The current stage's share done, with the time it has left (a long query)."""
        elapsed = time.monotonic() - self.stage_started
        left = elapsed * (1 - done) / done if done > 0.01 else None
        eta = f", about {_duration(left)} left" if left is not None else ""
        self.progress.update(self.task, description=f"{self.stage[:30]} {done:.0%}{eta}")

    def __call__(self, message: str) -> None:
        if self.done:
            self.progress.advance(self.task)
        self.done += 1
        self.stage, self.stage_started = message.strip(), time.monotonic()
        if self.done > self.expected:               # more stages than expected
            self.expected = self.done
            self.progress.update(self.task, total=self.expected)
        self.progress.console.print(f"[dim]{message.strip()}[/dim]", highlight=False)
        self.progress.update(self.task, description=message.strip()[:36])

    def __enter__(self) -> Stages:
        from uplift.progress import reporting

        self.progress.start()
        self._reporting = reporting(self.fraction)
        self._reporting.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._reporting.__exit__(None, None, None)
        self.progress.update(self.task, completed=self.expected)
        self.progress.stop()


class PlainStages:
    """Progress as plain lines (logs, pipes): each stage's message, and for a long step inside
    a stage a line at every quarter with the time left."""

    def __init__(self) -> None:
        self.stage_started = time.monotonic()
        self.next_quarter = 0.25

    def fraction(self, done: float) -> None:
        if done < self.next_quarter:
            return
        elapsed = time.monotonic() - self.stage_started
        left = elapsed * (1 - done) / done if done > 0 else 0.0
        say(f"  ... {done:.0%} of this step ({_duration(elapsed)} so far, about "
            f"{_duration(left)} left)")
        while self.next_quarter <= done:
            self.next_quarter += 0.25

    def __call__(self, message: str) -> None:
        self.stage_started, self.next_quarter = time.monotonic(), 0.25
        say(message)

    def __enter__(self) -> PlainStages:
        from uplift.progress import reporting

        self._reporting = reporting(self.fraction)
        self._reporting.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._reporting.__exit__(None, None, None)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def stages(expected: int):
    """A progress reporter for a long command: rich stages on a terminal, else plain lines."""
    import contextlib

    if state["quiet"]:
        return contextlib.nullcontext(say)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        return PlainStages()
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
