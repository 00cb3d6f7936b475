"""Encryption at rest: AES-256-GCM with a fresh data key per file, wrapped by the master key.

File layout (all lengths in bytes)::

    magic "UPLENC01" (8) | master key id (8) | wrap nonce (12) | wrapped data key (48)
    | stream nonce prefix (7) | chunk size (4, big-endian) | chunk 0 | chunk 1 | ...

Each chunk is ``chunk size`` plaintext bytes (the last may be shorter, even empty) sealed with
AES-256-GCM under the data key; its nonce is the prefix, the chunk number (4 bytes) and a
last-chunk flag (1 byte), and the magic and chunk size are authenticated with it. So a changed
byte, a swapped or dropped chunk, a truncated or extended file all fail authentication, and a
file is never decrypted into garbage. The data key is wrapped (AES-256-GCM) by the master key
with the file's stream parameters as associated data; rotating the master key re-wraps only
those 48 bytes (:func:`rewrap`), the data chunks are copied unchanged.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from uplift.errors import InputError
from uplift.security.keys import key_id

MAGIC = b"UPLENC01"
CHUNK_BYTES = 1 << 20
TAG = 16
_HEADER = struct.Struct(">8s8s12s48s7sI")
HEADER_BYTES = _HEADER.size


class ProtectionError(InputError):
    """An encrypted file cannot be opened: no key, wrong key, truncated or tampered."""


def is_encrypted(path: str | Path) -> bool:
    """Whether ``path`` starts with the encrypted-file magic."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _stream_aad(prefix: bytes, chunk_bytes: int) -> bytes:
    """Associated data of every chunk (and, with the key id, of the wrapped data key)."""
    return MAGIC + prefix + struct.pack(">I", chunk_bytes)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def encrypt_to(path: str | Path, data: bytes | memoryview, master_key: bytes,
               chunk_bytes: int = CHUNK_BYTES) -> None:
    """Write ``data`` encrypted to ``path`` (the caller makes the write atomic)."""
    data_key = AESGCM.generate_key(bit_length=256)
    prefix, wrap_nonce = os.urandom(7), os.urandom(12)
    kid = bytes.fromhex(key_id(master_key))
    stream_aad = _stream_aad(prefix, chunk_bytes)
    wrapped = AESGCM(master_key).encrypt(wrap_nonce, data_key, kid + stream_aad)
    cipher = AESGCM(data_key)
    view = memoryview(data)
    with open(path, "wb") as handle:
        handle.write(_HEADER.pack(MAGIC, kid, wrap_nonce, wrapped, prefix, chunk_bytes))
        count = max(1, -(-len(view) // chunk_bytes))
        for index in range(count):
            chunk = view[index * chunk_bytes:(index + 1) * chunk_bytes]
            handle.write(cipher.encrypt(_nonce(prefix, index, index == count - 1), chunk,
                                        stream_aad))


def _read_header(path: Path, handle) -> tuple[bytes, bytes, bytes, bytes, int]:
    raw = handle.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise ProtectionError(f"{path}: encrypted file is truncated (header incomplete)")
    magic, kid, wrap_nonce, wrapped, prefix, chunk_bytes = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtectionError(f"{path}: not an uplift encrypted file")
    if not 0 < chunk_bytes <= 1 << 30:
        raise ProtectionError(f"{path}: encrypted file header is damaged")
    return kid, wrap_nonce, wrapped, prefix, chunk_bytes


def _unwrap(path: Path, master_key: bytes | None, kid: bytes, wrap_nonce: bytes,
            wrapped: bytes, prefix: bytes, chunk_bytes: int) -> bytes:
    if master_key is None:
        raise ProtectionError(f"{path}: file is encrypted (key id {kid.hex()}); set "
                              "UPLIFT_MASTER_KEY_FILE (or UPLIFT_MASTER_KEY) to read it")
    if bytes.fromhex(key_id(master_key)) != kid:
        raise ProtectionError(f"{path}: encrypted with master key id {kid.hex()}, but the "
                              f"configured key has id {key_id(master_key)} (wrong key?)")
    aad = kid + _stream_aad(prefix, chunk_bytes)
    try:
        return AESGCM(master_key).decrypt(wrap_nonce, wrapped, aad)
    except InvalidTag as exc:
        raise ProtectionError(f"{path}: encrypted file header was tampered with") from exc


def decrypt_file(path: str | Path, master_key: bytes | None) -> bytes:
    """The plaintext of an encrypted file; any damage raises :class:`ProtectionError`."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        kid, wrap_nonce, wrapped, prefix, chunk_bytes = _read_header(path, handle)
        data_key = _unwrap(path, master_key, kid, wrap_nonce, wrapped, prefix, chunk_bytes)
        cipher = AESGCM(data_key)
        aad = _stream_aad(prefix, chunk_bytes)
        sealed = chunk_bytes + TAG
        body = size - HEADER_BYTES
        count = max(1, -(-body // sealed))
        parts = []
        for index in range(count):
            block = handle.read(sealed)
            last = index == count - 1
            try:
                if len(block) < TAG:
                    raise InvalidTag
                parts.append(cipher.decrypt(_nonce(prefix, index, last), block, aad))
            except InvalidTag as exc:
                raise ProtectionError(
                    f"{path}: encrypted file is truncated or was tampered with (block "
                    f"{index + 1} of {count} fails authentication)") from exc
    return b"".join(parts)


def rewrap(path: str | Path, old_key: bytes, new_key: bytes) -> bool:
    """Re-wrap the file's data key under ``new_key`` (atomic). False if already rewrapped."""
    from uplift.files import atomic_path

    path = Path(path)
    with open(path, "rb") as handle:
        kid, wrap_nonce, wrapped, prefix, chunk_bytes = _read_header(path, handle)
        if kid == bytes.fromhex(key_id(new_key)):
            return False
        data_key = _unwrap(path, old_key, kid, wrap_nonce, wrapped, prefix, chunk_bytes)
        new_kid, new_nonce = bytes.fromhex(key_id(new_key)), os.urandom(12)
        new_wrapped = AESGCM(new_key).encrypt(new_nonce, data_key,
                                              new_kid + _stream_aad(prefix, chunk_bytes))
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            out.write(_HEADER.pack(MAGIC, new_kid, new_nonce, new_wrapped, prefix,
                                   chunk_bytes))
            while block := handle.read(1 << 22):
                out.write(block)
    return True


def rewrap_all(paths: list[Path], old_key: bytes, new_key: bytes) -> tuple[int, int]:
    """Re-wrap every encrypted file under ``paths`` (files or folders); returns (re-wrapped,
    encrypted files found). Files already under the new key are skipped."""
    from uplift.files import files_of

    files: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"{path}: not found")
        files.extend(p for p in files_of(path) if is_encrypted(p))
    return sum(rewrap(f, old_key, new_key) for f in files), len(files)
