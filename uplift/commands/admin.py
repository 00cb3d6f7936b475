"""Key and audit commands: keys new/seal/rotate, audit verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from uplift.commands.shell import say
from uplift.errors import InputError


def keys_new(
    out: Annotated[Path, typer.Option(help="Key file to create (readable by you only).")],
) -> None:
    """Create a random 256-bit key file (for UPLIFT_PSEUDONYM_KEY_FILE or
    UPLIFT_MASTER_KEY_FILE). Keep it outside the repository and the data folders."""
    from uplift.security.keys import write_key_file

    typer.echo(f"key {write_key_file(out)} -> {out}")


def keys_seal(
    source: Annotated[Path, typer.Argument(help="Plaintext table (CSV or Parquet) to seal.")],
    out: Annotated[Path, typer.Option(help="Sealed copy to write (same format).")],
) -> None:
    """Encrypt a source table under the master key, byte for byte (ids are not changed), so it
    can be read while a master key is set without --allow-plaintext."""
    from uplift import io

    io.seal_file(source, out)
    say(f"sealed {source} -> {out}")


def keys_rotate(
    paths: Annotated[list[Path], typer.Argument(help="Encrypted files or folders to re-wrap.")],
    old_key_file: Annotated[Path, typer.Option("--old-key-file", help="Current master key.")],
    new_key_file: Annotated[Path, typer.Option("--new-key-file", help="New master key.")],
) -> None:
    """Re-wrap every encrypted file's data key under a new master key (data not re-encrypted).

    Safe to rerun after an interruption: files already under the new key are skipped."""
    from uplift.security.envelope import rewrap_all
    from uplift.security.keys import key_id, read_key_file

    old, new = read_key_file(old_key_file), read_key_file(new_key_file)
    changed, total = rewrap_all(paths, old, new)
    typer.echo(f"re-wrapped {changed} of {total} encrypted file(s) from key "
               f"{key_id(old)} to {key_id(new)}")


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
