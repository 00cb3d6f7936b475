"""The ground floor: atomic file writes and content hashes.

Imports nothing of the project, so every other module (the security package included) can use
it; :mod:`uplift.io` builds encrypted, audited table I/O on top of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.
    ``mode`` sets the file's permissions (default: 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part",
                                        dir=path.parent)
        tmp = Path(tmp_name)
        os.close(fd)
        yield tmp
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


def files_of(path: Path) -> list[Path]:
    """``path`` itself, or every file under the folder ``path`` in name order."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


_digests: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file (or of every file of a folder, in name order).

    A file's digest is remembered by (path, size, modification time), so hashing the same
    unchanged input twice in one process costs nothing.
    """
    path = Path(path)
    if path.is_file():
        stat = path.stat()
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if memo not in _digests:
            _digests[memo] = _sha256_of(path, chunk_bytes)
        return _digests[memo]
    return _sha256_of(path, chunk_bytes)


def _sha256_of(path: Path, chunk_bytes: int) -> str:
    digest = hashlib.sha256()
    files = files_of(path)
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(chunk_bytes):
                digest.update(block)
    return digest.hexdigest()




def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write UTF-8 text atomically (no encryption, no audit note: for the audit log's own
    files)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
