"""Data protection: keyed pseudonyms, encryption at rest, and the hash-chained audit log.

Everything is off until a key is configured (see :mod:`uplift.security.keys`); the audit log
is always written.
"""

from uplift.security.keys import encryption_key, pseudonym_key
from uplift.security.pseudonym import is_pseudonym, protect_ids

__all__ = ["encryption_key", "is_pseudonym", "protect_ids", "pseudonym_key"]
