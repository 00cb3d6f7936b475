"""Customer ids in the store: the bank's ids, or their keyed pseudonyms when a pseudonym key
is configured (``UPLIFT_PSEUDONYM_KEY_FILE`` / ``UPLIFT_PSEUDONYM_KEY``), as in every file the
batch commands write.

With a key, the store never holds a raw id: the bank's files are pseudonymised when they seed
it, and an incoming event's id is pseudonymised before anything is stored or looked up. A
caller still speaks in raw ids (``POST /v1/events``, ``GET /v1/customers/{id}``) and gets its
own ids back in those responses; alerts and webhooks carry pseudonyms, like plans; raw ids
leave only through the officer's audited export. A store seeded with pseudonyms is refused
without the key, and a raw store is refused with one (its ids would never match).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from uplift.errors import InputError


class StoreIds:
    """How the bank's customer ids are written in the store."""

    def __init__(self, key: bytes | None):
        self.key = key

    @classmethod
    def configured(cls) -> StoreIds:
        from uplift.security.keys import pseudonym_key

        return cls(pseudonym_key())

    @property
    def pseudonymised(self) -> bool:
        return self.key is not None

    def to_store(self, ids: Iterable[str]) -> list[str]:
        """The store's form of the bank's ``ids`` (order kept)."""
        ids = list(ids)
        if self.key is None or not ids:
            return ids
        from uplift.security.pseudonym import pseudonymise

        return pseudonymise(pd.Series(ids, dtype=object), self.key).tolist()

    def protect(self, frame: pd.DataFrame | None, *, source: str) -> pd.DataFrame | None:
        """``frame`` with its ``customer_id`` column in the store's form."""
        if frame is None or self.key is None:
            return frame
        from uplift.security.pseudonym import protect_ids

        return protect_ids(frame, key=self.key, source=source)

    def check(self, store) -> None:
        """Refuse a store whose ids are written the other way."""
        from sqlalchemy import select

        from uplift.security.pseudonym import is_pseudonym
        from uplift.service import schema as t

        with store.engine.connect() as connection:
            sample = connection.execute(select(t.customers.c.customer_id).limit(50)).scalars()
            sample = pd.Series(list(sample), dtype=object)
        if sample.empty:
            return
        stored_as_pseudonyms = bool(is_pseudonym(sample).all())
        if stored_as_pseudonyms and self.key is None:
            raise InputError(f"{store.url}: the store holds pseudonymised ids; set the "
                             "pseudonym key it was seeded with (UPLIFT_PSEUDONYM_KEY_FILE)")
        if self.key is not None and not stored_as_pseudonyms:
            raise InputError(f"{store.url}: the store holds raw customer ids but a pseudonym "
                             "key is set; seed a new store with the key set (raw ids are "
                             "never mixed with pseudonyms)")
