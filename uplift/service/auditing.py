"""Request entries in the audit log, written in groups.

Every request goes into the hash-chained audit log (:mod:`uplift.security.audit`) before its
response is sent. One append costs a lock, a read of the last line, an fsync and a head update:
at hundreds of requests a second that is most of a request's time. A single writer thread
therefore takes every entry waiting, chains them in order under one lock with one fsync (a
group commit, as databases do for transactions), and only then releases the requests whose
entries it wrote. An entry is thus durable before its response leaves, and a burst of
requests shares one fsync. Releases of raw ids keep their own synchronous append before the
release (``GET /v1/plans/{id}/export``).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

#: entries chained per group at most (one write and one fsync each)
MAX_GROUP = 1000


class GroupAudit:
    """Queue of request entries and the thread that appends them in groups."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._queue: queue.Queue[tuple[dict[str, Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self._thread.start()

    def record(self, entry: dict[str, Any]) -> Future:
        """Queue ``entry`` (from ``audit.new_entry``); the future is done once it is on disk
        (its result: the entry with sequence number and hashes; or the write's error)."""
        done: Future = Future()
        self._queue.put((entry, done))
        return done

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        from uplift.security import audit

        while True:
            item = self._queue.get()
            group, stopping = [], item is None
            if item is not None:
                group.append(item)
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            if group:
                try:
                    written = audit.append_entries([e for e, _ in group], self.path)
                except Exception as exc:  # every waiting request learns the log failed
                    for _, done in group:
                        done.set_exception(exc)
                else:
                    for (_, done), entry in zip(group, written, strict=True):
                        done.set_result(entry)
            if stopping:
                return
