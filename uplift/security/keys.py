"""Where keys come from: environment variables or key files, never the repository.

* ``UPLIFT_PSEUDONYM_KEY`` or ``UPLIFT_PSEUDONYM_KEY_FILE``: the HMAC-SHA256 key that turns
  customer ids into pseudonyms. With it set, every derived artefact carries pseudonyms.
* ``UPLIFT_MASTER_KEY`` or ``UPLIFT_MASTER_KEY_FILE``: the AES-256 master key that wraps the
  per-file data keys. With it set, tables and model files are written encrypted.
* ``UPLIFT_MODEL_KEY`` or ``UPLIFT_MODEL_KEY_FILE``: the HMAC-SHA256 key that signs the
  pickled parts of model folders (:func:`model_key`). Without it, a key derived from the master
  key is used, else a per-user key created at first use (``model.key`` in the user's uplift
  configuration folder, readable by its owner only). Whoever can write a model folder but not
  this key cannot make the tool load code.

A key is 32 random bytes written as 64 hexadecimal characters (``uplift keys new`` makes one;
the file is created readable by its owner only). The variable holding the key itself wins over
the file variable. A key is identified in files and logs only by its id, the first 16 hex
characters of a SHA-256 over a fixed label and the key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import warnings
from pathlib import Path

from uplift.errors import InputError

KEY_BYTES = 32
PSEUDONYM = "UPLIFT_PSEUDONYM_KEY"
MASTER = "UPLIFT_MASTER_KEY"
MODEL = "UPLIFT_MODEL_KEY"


def parse_key(text: str, source: str) -> bytes:
    """Decode a 64-hex-character key; ``source`` names where it came from in errors."""
    cleaned = text.strip()
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise InputError(f"{source}: a key must be {2 * KEY_BYTES} hexadecimal characters "
                         f"({KEY_BYTES} bytes); run `uplift keys new --out FILE` to make one")
    return key


def read_key_file(path: str | Path) -> bytes:
    """Read a key file; warns when other users may read it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: key file not found")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(f"{path}: key file is readable by other users (chmod 600 it)",
                      stacklevel=2)
    return parse_key(path.read_text(encoding="ascii", errors="replace"), str(path))


def _from_environment(variable: str) -> bytes | None:
    if value := os.environ.get(variable):
        return parse_key(value, f"environment variable {variable}")
    if file := os.environ.get(f"{variable}_FILE"):
        return read_key_file(file)
    return None


def pseudonym_key() -> bytes | None:
    """The configured pseudonymisation key, or None (pseudonymisation off)."""
    return _from_environment(PSEUDONYM)


def encryption_key() -> bytes | None:
    """The configured master key, or None (encryption at rest off)."""
    return _from_environment(MASTER)


def user_model_key_path() -> Path:
    """Where the per-user model-signing key lives when none is configured."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("uplift")) / "model.key"


def model_key() -> bytes:
    """The key that authenticates pickled model parts (see the module docstring)."""
    if (key := _from_environment(MODEL)) is not None:
        return key
    if (master := encryption_key()) is not None:
        return hashlib.sha256(b"uplift model signing\x00" + master).digest()
    path = user_model_key_path()
    if not path.exists():
        try:
            write_key_file(path)
        except (InputError, FileExistsError):
            pass                      # another process created it first
    return read_key_file(path)


def model_signature(data: bytes, purpose: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of a model file's bytes under the model-signing key; ``purpose``
    (e.g. ``"effects pickle"``) keeps a signature for one kind of file from fitting another."""
    import hmac

    key = model_key() if key is None else key
    return hmac.new(key, purpose.encode("utf-8") + b"\x00" + data, hashlib.sha256).hexdigest()


def signature_matches(data: bytes, purpose: str, stored: object) -> bool:
    """Whether ``stored`` is the signature of ``data`` under this installation's key."""
    import hmac

    return isinstance(stored, str) and hmac.compare_digest(model_signature(data, purpose),
                                                           stored)


def key_id(key: bytes) -> str:
    """Public identifier of a key (16 hex characters); reveals nothing about the key."""
    return hashlib.sha256(b"uplift key id\x00" + key).hexdigest()[:16]


def new_key() -> bytes:
    """32 bytes from the operating system's secure random source."""
    return secrets.token_bytes(KEY_BYTES)


def write_key_file(path: str | Path) -> str:
    """Create a new key file readable by its owner only; refuses to overwrite. Returns its id."""
    path = Path(path)
    if path.exists():
        raise InputError(f"{path}: already exists; a key file is never overwritten")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    # written beside its final name and linked into place, so a reader never sees a half key
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)            # fails if the key appeared meanwhile: never overwritten
    except FileExistsError as exc:
        raise InputError(f"{path}: already exists; a key file is never overwritten") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return key_id(key)


def protection_state() -> dict[str, str | None]:
    """Ids of the configured keys (for fingerprints and manifests)."""
    pseudo, master = pseudonym_key(), encryption_key()
    return {"pseudonym_key": key_id(pseudo) if pseudo else None,
            "master_key": key_id(master) if master else None}
