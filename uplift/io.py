"""File input/output at the edges: read tables, write atomically, record manifests.

Rules every command follows:

* tables are read by extension: ``.csv`` / ``.csv.gz`` / ``.txt`` (CSV) or ``.parquet`` / ``.pq``;
  CSV text is UTF-8 by default and a byte-order mark is recognised automatically; other
  encodings (e.g. GBK) are read when the caller names them;
* every output is written to a temporary file in the same folder and renamed into place, so an
  interrupted run never leaves a half-written file;
* an output path that is also an input path is refused (nothing the user gave is overwritten);
* each output gets a manifest (command, arguments, seed, input hashes, package versions, rows);
* with a pseudonym key configured, the ``customer_id`` column (or the id columns a command
  names) of every table written is replaced by keyed pseudonyms (:mod:`uplift.security`);
* with a master key configured, tables and model files are written encrypted and every reader
  here decrypts them transparently; reports, manifests and the audit log stay readable (they
  hold aggregates, pseudonyms, paths and hashes only). Every file read must then be sealed
  (encrypted under the key): a plaintext plan, score table, feature cache or model file is
  refused, and the bank's plaintext source tables are read only when the run allows it
  (``uplift --allow-plaintext``; ``uplift keys seal`` seals them);
* every file read or written is recorded for the command's audit-log entry.
"""

from __future__ import annotations

import contextlib
import csv
import io as _io
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from uplift.errors import InputError
from uplift.files import atomic_path, file_sha256
from uplift.security import audit, envelope
from uplift.security.keys import encryption_key
from uplift.security.pseudonym import protect_ids

_plaintext_sources: list[bool] = [False]


def allow_plaintext_sources(allowed: bool) -> None:
    """Whether, with a master key set, plaintext *source* tables may be read (never derived
    files such as plans or models)."""
    _plaintext_sources[0] = allowed


def require_sealed(path: Path, *, source: bool) -> None:
    """With a master key configured, refuse a plaintext file (``source``: a bank table that
    ``--allow-plaintext`` lets through)."""
    if encryption_key() is None or envelope.is_encrypted(path):
        return
    if source and _plaintext_sources[0]:
        return
    what = "source table" if source else "file written by this tool"
    hint = ("seal it with `uplift keys seal`, or allow plaintext source tables "
            "(allow_plaintext) to import the bank's tables as they are" if source
            else "it should have been written encrypted; it may have been replaced")
    raise InputError(f"{path}: plaintext {what} while a master key is configured; {hint}")


CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
MANIFEST_PACKAGES = (
    "uplift", "numpy", "pandas", "pyarrow", "duckdb", "scikit-learn", "lightgbm",
    "causalml", "scikit-uplift", "statsmodels", "ortools",
)


def table_format(path: Path) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the file name, or raise :class:`InputError`."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise InputError(
        f"{path}: unsupported file type; expected one of "
        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a table file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def _csv_header(source: Path | _io.BytesIO, gz: bool, encoding: str, sep: str) -> list[str]:
    import gzip

    if isinstance(source, _io.BytesIO):
        raw: Any = gzip.GzipFile(fileobj=source) if gz else source
        handle: Any = _io.TextIOWrapper(raw, encoding=encoding, newline="")
    else:
        handle = (gzip.open(source, "rt", encoding=encoding, newline="") if gz else
                  open(source, encoding=encoding, newline=""))
    try:
        return next(csv.reader(handle, delimiter=sep), [])
    finally:
        if isinstance(source, _io.BytesIO):
            handle.detach()
            source.seek(0)
        else:
            handle.close()


DUCKDB_ENCODINGS = ("utf-8", "utf8", "utf-8-sig", "latin-1", "latin1", "utf-16")
_transcoded: dict[tuple[str, int, int, str], Path] = {}
_transcode_dir: list[tempfile.TemporaryDirectory] = []


def _not_text(path: Path, encoding: str, exc: UnicodeDecodeError) -> InputError:
    return InputError(f"{path}: cannot be read as {encoding} text at byte {exc.start}; name "
                      "the file's encoding (for example encoding gbk)")


def csv_columns(path: Path, encoding: str | None = None, sep: str = ",",
                source: Path | _io.BytesIO | None = None) -> list[str]:
    """Header of a CSV file (refusing duplicates and undecodable text); ``source`` is its
    decrypted contents when the file is encrypted."""
    enc = encoding or "utf-8-sig"
    try:
        header = _csv_header(source or path, path.name.lower().endswith(".gz"), enc, sep)
    except UnicodeDecodeError as exc:
        raise _not_text(path, enc, exc) from exc
    except LookupError as exc:
        raise InputError(f"{path}: unknown text encoding {enc!r}") from exc
    except csv.Error as exc:
        raise InputError(f"{path}: the header row is not readable CSV ({exc})") from exc
    _report_duplicate_columns(path, header)
    return header


def parquet_columns(path: Path, source: Path | _io.BytesIO | None = None) -> list[str]:
    """Column names of a Parquet file (refusing duplicates and damaged files)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(source or path).names
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    _report_duplicate_columns(path, names)
    return names


def utf8_csv(path: Path, encoding: str | None) -> Path:
    """``path`` itself when DuckDB reads its encoding, else a UTF-8 copy in a temporary folder
    (removed at exit), transcoded in 1 MB blocks; undecodable bytes are an error."""
    enc = (encoding or "utf-8").lower()
    if enc in DUCKDB_ENCODINGS:
        return path
    import codecs
    import gzip

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, enc)
    if key in _transcoded:
        return _transcoded[key]
    if not _transcode_dir:
        _transcode_dir.append(tempfile.TemporaryDirectory(prefix="uplift-utf8-"))
    target = Path(_transcode_dir[0].name) / f"{len(_transcoded)}-{path.name.removesuffix('.gz')}"
    try:
        decoder = codecs.getincrementaldecoder(enc)()
    except LookupError as exc:
        raise InputError(f"{path}: unknown text encoding {encoding!r}") from exc
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    done = 0
    with opener(path, "rb") as source, open(target, "w", encoding="utf-8") as out:
        while True:
            block = source.read(1 << 20)
            try:
                out.write(decoder.decode(block, final=not block).lstrip("\ufeff")
                          if done == 0 else decoder.decode(block, final=not block))
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: cannot be read as {encoding} text at byte "
                                 f"{done + exc.start}") from exc
            if not block:
                break
            done += len(block)
    _transcoded[key] = target
    return target


def plaintext_source(path: Path, *, source: bool = True) -> Path | _io.BytesIO:
    """``path`` itself, or its decrypted contents when it is an encrypted file."""
    require_sealed(path, source=source)
    if envelope.is_encrypted(path):
        return _io.BytesIO(envelope.decrypt_file(path, encryption_key()))
    return path


def readable_copy(path: Path) -> Path:
    """A path DuckDB can scan: ``path`` itself, or its decrypted contents in a private
    temporary folder (removed at exit) when it is sealed."""
    require_sealed(path, source=True)
    if not envelope.is_encrypted(path):
        return path
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, "sealed")
    if key not in _transcoded:
        if not _transcode_dir:
            _transcode_dir.append(tempfile.TemporaryDirectory(prefix="uplift-utf8-"))
        target = Path(_transcode_dir[0].name) / f"{len(_transcoded)}-{path.name}"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(envelope.decrypt_file(path, encryption_key()))
        _transcoded[key] = target
    return _transcoded[key]


def seal_file(source: Path, out: Path) -> Path:
    """Encrypt a plaintext source table under the master key, byte for byte (ids unchanged),
    into ``out`` (same format), so it can be read while a master key is set."""
    if encryption_key() is None:
        raise InputError("sealing needs the master key (UPLIFT_MASTER_KEY_FILE)")
    check_readable(source)
    if envelope.is_encrypted(source):
        raise InputError(f"{source}: already sealed")
    ensure_not_input([out], [source])
    if table_format(out) != table_format(source):
        raise InputError(f"{out}: keep the format of {source} ({table_format(source)})")
    return write_bytes(source.read_bytes(), out)


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes (a model file this tool wrote), decrypted when it is encrypted."""
    path = Path(path)
    check_readable(path)
    require_sealed(path, source=False)
    audit.note_input(path)
    if envelope.is_encrypted(path):
        return envelope.decrypt_file(path, encryption_key())
    return path.read_bytes()


def write_bytes(data: bytes, path: str | Path, *, encrypt: bool = True) -> Path:
    """Write bytes atomically; encrypted when a master key is configured and ``encrypt``."""
    path = Path(path)
    key = encryption_key() if encrypt else None
    with atomic_path(path) as tmp:
        if key is not None:
            envelope.encrypt_to(tmp, data, key)
        else:
            tmp.write_bytes(data)
    audit.note_output(path)
    return path


def _report_duplicate_columns(path: Path, names: Iterable[str]) -> None:
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})
    if duplicates:
        raise InputError(f"{path}: duplicate column name(s) in the header: {', '.join(duplicates)}")


def read_table(
    path: str | Path,
    *,
    encoding: str | None = None,
    sep: str | None = None,
    columns: list[str] | None = None,
    allow_empty: bool = False,
    ids: Iterable[str] = ("customer_id",),
    derived: bool = False,
) -> pd.DataFrame:
    """Read a CSV or Parquet table into a DataFrame with clear errors.

    ``encoding`` defaults to UTF-8 with automatic byte-order-mark removal. ``sep`` defaults to
    a comma (a tab for ``.tsv``). ``columns`` restricts Parquet reads to those columns.
    A header without data rows is refused unless ``allow_empty`` (e.g. an empty
    do-not-contact list). CSV columns named in ``ids`` are read as text, so zero-padded ids
    keep their zeros (see :mod:`uplift.ids`). ``derived`` marks a file this tool wrote (a plan,
    a cache): with a master key set it must be sealed, whatever ``--allow-plaintext`` says.
    """
    path = Path(path)
    fmt = table_format(path)
    check_readable(path)
    source = plaintext_source(path, source=not derived)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet_columns(path, source)
        try:
            frame = pq.read_table(source, columns=columns).to_pandas()
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    else:
        enc = encoding or "utf-8-sig"
        delimiter = sep or ("\t" if path.name.lower().endswith(".tsv") else ",")
        gz = path.name.lower().endswith(".gz")
        header = csv_columns(path, enc, delimiter, source)
        if sep is None and len(header) == 1:
            delimiter = _other_delimiter(path, header[0], delimiter)
        try:
            frame = pd.read_csv(source, encoding=enc, sep=delimiter, low_memory=False,
                                compression="gzip" if gz else "infer",
                                dtype={name: str for name in ids if name})
        except UnicodeDecodeError as exc:
            raise _not_text(path, enc, exc) from exc
        except pd.errors.EmptyDataError as exc:
            raise InputError(f"{path}: file has no header row") from exc
        except pd.errors.ParserError as exc:
            raise InputError(f"{path}: malformed CSV ({exc})") from exc
    if frame.shape[1] == 0:
        raise InputError(f"{path}: file has no columns")
    if len(frame) == 0 and not allow_empty:
        raise InputError(f"{path}: file has a header but no data rows")
    audit.note_input(path, len(frame))
    return frame


def _other_delimiter(path: Path, header: str, delimiter: str) -> str:
    """A one-column header holding semicolons or tabs is a file with another delimiter (common
    in European exports): read it with that one, and say so."""
    import warnings

    from uplift.schema import DataWarning

    for other, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if other != delimiter and other in header:
            warnings.warn(f"{path}: read as {name}-separated (the header has no commas); "
                          "numbers must still use '.' for decimals", DataWarning, stacklevel=3)
            return other
    return delimiter


def check_writable(out: Path) -> None:
    """Refuse, before any work, an output whose folder cannot be created or written."""
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{out}: cannot be written ({folder} is a file, not a folder)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{out}: cannot be written (no permission to write in {folder})")


def ensure_not_input(outputs: Iterable[str | Path], inputs: Iterable[str | Path]) -> None:
    """Refuse an output path that points at one of the inputs (or inside an input folder), or
    one that cannot be written (checked before the run starts, not after it)."""
    resolved_inputs = [Path(p).resolve() for p in inputs if p is not None]
    for source in resolved_inputs:
        if source.exists():
            audit.note_input(source)
    for out in outputs:
        if out is None:
            continue
        check_writable(Path(out))
        target = Path(out).resolve()
        for source in resolved_inputs:
            if target == source or (source.is_dir() and source in target.parents and
                                    target.exists()):
                raise InputError(
                    f"{out}: output would overwrite the input {source}; choose another output path"
                )


def write_table(frame: pd.DataFrame, path: str | Path, *,
                ids: Iterable[str] = ("customer_id",), protect: bool = True,
                mode: int | None = None) -> Path:
    """Write a DataFrame as CSV or Parquet (by extension), atomically.

    With ``protect`` (the default) the ``ids`` columns are pseudonymised and the file is
    encrypted when the matching keys are configured; ``protect=False`` is for source data
    and for the audited raw-id export only.
    """
    path = Path(path)
    fmt = table_format(path)
    if protect:
        frame = protect_ids(frame, ids, source=str(path))
    key = encryption_key() if protect else None
    gz = path.name.lower().endswith(".gz")
    with atomic_path(path, mode) as tmp:
        target: Any = _io.BytesIO() if key is not None else tmp
        if fmt == "parquet":
            frame.to_parquet(target, index=False)
        else:
            frame.to_csv(target, index=False, compression="gzip" if gz else None)
        if key is not None:
            envelope.encrypt_to(tmp, target.getbuffer(), key)
    audit.note_output(path, len(frame))
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write text (UTF-8) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    audit.note_output(path)
    return path


def write_json(data: Any, path: str | Path) -> Path:
    """Write JSON (indented, UTF-8) atomically."""
    return write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n", path)


@contextlib.contextmanager
def staged_directory(out_dir: str | Path) -> Iterator[Path]:
    """Yield a staging folder; on success move its files into ``out_dir``, else discard it.

    Each file lands with an atomic rename, so ``out_dir`` never holds a half-written file and a
    failed run adds nothing to it.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".staging",
                                  dir=out_dir.parent))
    try:
        yield stage
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.iterdir()):
            os.replace(item, out_dir / item.name)
        audit.move_outputs(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


STAGING_SUFFIX = ".staging"


@contextlib.contextmanager
def directory_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a ``.<name>.lock`` file beside it) for the block:
    a second process writing the same folder waits instead of failing or mixing files. While
    the lock is held, staging folders and ``.part`` files left beside ``folder`` by killed runs
    are removed (no live writer can own them)."""
    import fcntl

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            for stale in folder.parent.glob(f".{folder.name}.*{STAGING_SUFFIX}"):
                shutil.rmtree(stale, ignore_errors=True)
            for stale in folder.parent.glob(f".{folder.name}.*.part"):
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def replaced_directory(out_dir: str | Path, *, marker: str) -> Iterator[Path]:
    """Yield a staging folder that replaces ``out_dir`` as a whole on success (all-or-nothing:
    a failed run leaves the old folder exactly as it was).

    An existing ``out_dir`` is replaced only when it holds ``marker`` (a file or folder this
    tool writes in every such folder) or is empty: a folder of the user's is never replaced.
    The swap is two renames (old folder aside, new folder in); the old one is then deleted.
    Callers that may race hold :func:`directory_lock` around the block.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(f"{out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / marker).exists():
            raise InputError(f"{out_dir}: exists and is not a folder this tool wrote (no "
                             f"{marker}); choose another output path")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=STAGING_SUFFIX,
                                  dir=out_dir.parent))
    try:
        yield stage
        old = None
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", suffix=STAGING_SUFFIX,
                                        dir=out_dir.parent))
            os.replace(out_dir, old)
        os.replace(stage, out_dir)
        audit.move_outputs(stage, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def package_versions(names: Iterable[str] = MANIFEST_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results (without importing them)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_manifest(
    command: str,
    arguments: Mapping[str, Any],
    *,
    seed: int | None,
    inputs: Iterable[str | Path] = (),
    outputs: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe a run: command, arguments, seed, input hashes, versions, output row counts."""
    return {
        "command": command,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in arguments.items()},
        "seed": seed,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {str(p): file_sha256(p) for p in inputs if p is not None},
        "outputs": dict(outputs or {}),
        "versions": package_versions(),
        **dict(extra or {}),
    }


def manifest_path_for(output: str | Path) -> Path:
    """Where the manifest of a single-file output goes: ``<output>.manifest.json``."""
    output = Path(output)
    return output.with_name(output.name + ".manifest.json")


def record_run(
    output: str | Path,
    command: str,
    arguments: Mapping[str, Any],
    *,
    seed: int | None,
    inputs: Iterable[str | Path | None] = (),
    outputs: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the manifest of a run beside its output: ``<file>.manifest.json`` for a file or a
    Parquet dataset folder (Spark's output, read as one table), ``manifest.json`` inside any
    other folder (a model folder, a simulated bank). Returns its path."""
    output = Path(output)
    inside = output.is_dir() and not output.name.lower().endswith(PARQUET_SUFFIXES)
    target = output / "manifest.json" if inside else manifest_path_for(output)
    manifest = build_manifest(command, arguments, seed=seed,
                              inputs=[p for p in inputs if p is not None], outputs=outputs,
                              extra=extra)
    return write_json(manifest, target)


def write_source_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a source table handed over in memory (customers, events...) as Parquet for the
    feature SQL: ids left as they are, encrypted under the master key when one is set (so it
    reads as a sealed source)."""
    path = Path(path)
    key = encryption_key()
    with atomic_path(path, 0o600) as tmp:
        if key is None:
            frame.to_parquet(tmp, index=False)
        else:
            buffer = _io.BytesIO()
            frame.to_parquet(buffer, index=False)
            envelope.encrypt_to(tmp, buffer.getbuffer(), key)
    return path
