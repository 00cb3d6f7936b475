"""Command-line interface (typer): the app, its command groups, and how a command is run.

Exit codes: 0 success, 2 bad input (file, column, option, spec), 1 any other failure; the
mapping from the library's exceptions to exit codes lives here (:func:`exit_code`) and nowhere
else. Messages are printed without a traceback; ``uplift --debug COMMAND`` shows it.

The commands themselves live in :mod:`uplift.commands` (parse, call the library, print); heavy
libraries are imported inside them so ``uplift --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import Annotated

import typer

from uplift.commands import admin, data, evaluation, models, planning
from uplift.commands.shell import show_warning, state
from uplift.errors import InputError, ModelError, UpliftError

app = typer.Typer(
    name="uplift",
    help="Retention-campaign optimiser: churn risk, offer effects, budgeted allocation, "
    "evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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

    state["debug"] = debug
    state["quiet"] = quiet
    io.allow_plaintext_sources(allow_plaintext)


def _group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


for command in (data.simulate, data.validate, data.features, data.labels, planning.allocate,
                planning.train, planning.plan, evaluation.evaluate, planning.outcomes):
    app.command()(command)
app.command("simulate-policy")(evaluation.simulate_policy)
app.command("export")(planning.export)

churn_app = _group("churn", "Churn risk model: fit, score, build training tables.")
churn_app.command("dataset")(models.churn_dataset)
churn_app.command("fit")(models.churn_fit)
churn_app.command("score")(models.churn_score)
effects_app = _group("effects", "Offer effects (uplift) from a randomised campaign table.")
effects_app.command("fit")(models.effects_fit)
effects_app.command("predict")(models.effects_predict)
effects_app.command("evaluate")(models.effects_evaluate)
import_app = _group("import", "Import a public bank dataset into the data contract.")
import_app.command("berka")(data.import_berka)
keys_app = _group("keys", "Keys for pseudonyms and encryption at rest.")
keys_app.command("new")(admin.keys_new)
keys_app.command("seal")(admin.keys_seal)
keys_app.command("rotate")(admin.keys_rotate)
audit_app = _group("audit", "The hash-chained audit log of every command.")
audit_app.command("verify")(admin.audit_verify)

# the online service: its commands live in uplift/service/cli.py (FastAPI imported lazily)
from uplift.service import cli as service_cli  # noqa: E402

app.command("serve")(service_cli.serve)
app.add_typer(service_cli.tokens_app, name="tokens")


def exit_code(exc: UpliftError) -> int:
    """The process exit code for a library error: 2 for anything the user can fix (input,
    spec, a stored model that cannot be used), 1 otherwise."""
    return 2 if isinstance(exc, InputError | ModelError) else 1


def _is_usage_error(exc: Exception) -> bool:
    """Command-line parsing errors (typer's bundled click raises its own classes)."""
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


GROUPS = ("churn", "effects", "import", "audit", "keys", "tokens")


def _command_name(argv: list[str]) -> str:
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return ""
    return " ".join(words[:2]) if words[0] in GROUPS and len(words) > 1 else words[0]


def _dispatch(argv: list[str]) -> tuple[int, str | None]:
    """Run the app; returns (exit code, error message or None)."""
    debug = "--debug" in argv
    with warnings.catch_warnings():
        warnings.showwarning = show_warning  # type: ignore[assignment]
        try:
            result = app(args=argv, prog_name="uplift", standalone_mode=False)
        except UpliftError as exc:
            if debug:
                traceback.print_exc()
            typer.echo(f"error: {exc}", err=True)
            return exit_code(exc), str(exc)
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

    state.update(debug=False, quiet=False, warnings_shown=set())
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
