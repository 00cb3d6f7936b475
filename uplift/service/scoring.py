"""The online service's core: ingest events, refresh features, re-score, raise alerts.

One worker thread does the writing and the scoring. It takes every request waiting at once:
their events are committed first, in one transaction (durable before anything else happens;
each request's batch all or nothing), then every customer they name is scored in one pass
(features, churn model, store transaction; its cost grows far less than the number of
customers: `evaluation/profile_serve.py --batches`), so concurrent requests share the commits
and the pass. Scores, alerts and webhook deliveries are written in one transaction. If the
process dies between the two commits, :meth:`OnlineService.recover` re-scores at start every
customer whose events are newer than their score, so no escalation is lost (a re-scored
escalation is written at most once: alerts are unique per customer, event and tier).
"""

from __future__ import annotations

import gc
import queue
import threading
import time
import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select

from uplift.effects.calibration import coarse_effects, effect_groups
from uplift.errors import InputError, UpliftError
from uplift.evaluate.outcomes import CLOSE_EVENT
from uplift.service import schema as t
from uplift.service.history import EventHistory
from uplift.service.online import FeatureEngine, Reference, feature_columns, model_version
from uplift.service.store import Store, utcnow

Z_TWO_SIDED_95 = 1.96
MAX_BATCH = 500


#: what makes two events the same event (a retry) besides their key
EVENT_FIELDS = ("customer_id", "ts", "event_type", "amount", "channel", "page", "topic")


class EventConflict(InputError):
    """Events whose ``event_id`` names a different stored (or earlier) event."""

    def __init__(self, positions: list[int]):
        self.positions = positions
        super().__init__(f"events {positions}: event_id already used for a different event")


def _content(record) -> tuple:
    """An event's fields in a comparable form (times to the microsecond, amounts as floats)."""
    values = dict(zip(EVENT_FIELDS, record, strict=True)) if isinstance(record, tuple) else \
        {name: record[name] for name in EVENT_FIELDS}
    ts = pd.Timestamp(values["ts"])
    values["ts"] = ts.tz_convert(None) if ts.tzinfo else ts          # UTC without zone
    values["amount"] = float(values["amount"])
    return tuple(values[name] for name in EVENT_FIELDS)


@dataclass
class Escalation:
    """A tier escalation written to the store."""

    alert_id: int
    customer_id: str
    payload: dict[str, Any]


@dataclass
class _Job:
    customers: list[str]
    records: list[dict[str, Any]] | None = None     # events to store first (None: score only)
    future: Future = field(default_factory=Future)


class OnlineService:
    """Models, campaign spec and store; scores customers as their events arrive."""

    def __init__(self, store: Store, models, spec, settings, *, webhooks: list[str] = (),
                 on_alert=None):
        self.store = store
        self.models = models
        self.spec = spec
        self.settings = settings
        self.webhooks = list(webhooks)
        self.on_alert = on_alert or (lambda alerts: None)
        self.version = model_version(Path(models.folder))
        self.evidence, self.effect_means = _offer_evidence(models, settings, spec)
        self.tier_rank: dict[str, int] = {}
        self.set_tiers(models.churn.tiers_)
        self.engine = FeatureEngine(with_campaign=store.count("campaign_log") > 0)
        self.reference: Reference | None = None
        self.history = EventHistory(store)
        self._customers: pd.DataFrame | None = None
        self._position: dict[str, int] = {}          # customer id -> row of customers()
        self._core: pd.DataFrame | None = None
        self._segments: dict[str, str] = {}
        self._campaign: pd.DataFrame | None = None
        self._campaign_rows: dict[str, np.ndarray] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self.scored = 0
        self.unscorable = 0                 # scorings refused by the data (see _score_isolated)
        self._last_ts = None               # latest event time in the store (cached)
        self._do_not_contact: pd.DataFrame | None = None
        self._closed: dict[str, pd.Timestamp] | None = None   # account_close events, cached
        self.closed_by_event()           # read before any event is stored, then kept current

    def set_tiers(self, thresholds: dict[str, float]) -> None:
        """Score with these tier thresholds (churn risk at or above each) from the next score
        on; scores already stored keep their tier until the customer is scored again."""
        tiers = sorted(thresholds.items(), key=lambda kv: kv[1])
        self.models.churn.tiers_ = dict(thresholds)
        self.tier_rank = {"green": 0, **{name: i + 1 for i, (name, _) in enumerate(tiers)}}

    # -- the clock ---------------------------------------------------------------------------
    def current_day(self) -> str:
        """The as-of date of online scores: the day after the latest stored event."""
        last = self.latest_event_ts()
        if last is None:
            raise InputError("the store holds no events; seed it with --data")
        return str((pd.Timestamp(last).normalize() + pd.Timedelta(days=1)).date())

    def latest_event_ts(self):
        """The latest event time in the store (None when it holds none)."""
        if self._last_ts is None:
            self._last_ts = self.store.last_event_ts()
        return self._last_ts

    def customers(self) -> pd.DataFrame:
        """The customers table as stored (read once: customers are seeded, not posted)."""
        if self._customers is None:
            frame = self.store.customers_frame()
            ids = frame["customer_id"].astype(str)
            self._position = {c: i for i, c in enumerate(ids)}
            self._segments = dict(zip(ids, frame["segment"].astype(str), strict=True)) \
                if "segment" in frame.columns else {}
            self._customers = frame
        return self._customers

    def segments(self) -> list[str]:
        """The customers' segments."""
        self.customers()
        return sorted(set(self._segments.values()))

    def customer_rows(self, ids: list[str]) -> pd.DataFrame:
        """The customers table's rows of ``ids`` (known ids only)."""
        frame = self.customers()
        return frame.iloc[[self._position[c] for c in ids if c in self._position]]

    def _core_rows(self, ids: list[str]) -> pd.DataFrame:
        """The customer columns the features read, for ``ids`` (a small NumPy-backed copy of
        the table: picking rows from it costs microseconds)."""
        if self._core is None:
            frame = self.customers()
            self._core = pd.DataFrame({
                "customer_id": frame["customer_id"].astype(str).to_numpy(object),
                **{c: frame[c].to_numpy() for c in ("open_date", "close_date")},
                **{c: pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
                   for c in ("aum", "products_held")}})
        return self._core.iloc[[self._position[c] for c in ids if c in self._position]]

    def campaign_rows(self, ids: list[str]) -> pd.DataFrame | None:
        """The past campaign rows of ``ids`` (None when the store has no campaign log)."""
        if not self.engine.with_campaign:
            return None
        if self._campaign is None:
            self._campaign = self.store.campaign_frame()
            self._campaign_rows = {str(c): rows for c, rows in self._campaign.groupby(
                "customer_id", sort=False).indices.items()}
        picked = [self._campaign_rows[c] for c in ids if c in self._campaign_rows]
        return self._campaign.iloc[np.concatenate(picked) if picked else []]

    def known(self, ids: set[str]) -> set[str]:
        self.customers()
        return {c for c in ids if c in self._position}

    def refresh_reference(self, day: str | None = None) -> pd.DataFrame:
        """Recompute the population's rank inputs (all features) as of ``day``."""
        day = day or self.current_day()
        campaign = self.store.campaign_frame() if self.engine.with_campaign else None
        self.reference, full = self.engine.reference(self.customers(), self._all_events(),
                                                     campaign, day)
        return full

    def _all_events(self) -> pd.DataFrame:
        """Every stored event as the features read them: from the in-memory histories
        (brought up to date with the store first) when the store's events fit in them, else
        read from the store (seconds per million events)."""
        if self.store.count("events") <= self.history.max_events:
            self.customers()
            return self.history.frame(list(self._position))
        return self.store.events_frame()

    # -- start -------------------------------------------------------------------------------
    def start(self) -> None:
        """Score everyone once if the store has no scores, re-score customers whose events are
        newer than their score (a crash between the two commits), start the worker."""
        self.history.preload()
        full = self.refresh_reference()
        if self.store.count("scores") == 0:
            self._write(full, initial=True)
        else:
            self.recover()
        self._warm_up()
        # what is loaded now lives as long as the process: keep it out of the garbage
        # collector's full passes (each would pause scoring for the whole heap)
        gc.collect()
        gc.freeze()
        self._worker = threading.Thread(target=self._run, name="scoring", daemon=True)
        self._worker.start()

    def _warm_up(self) -> None:
        """One customer's features and score, unsaved: the first request then pays no
        first-use costs (imports, model and query set-up)."""
        ids = list(self._position)[:1]
        if ids and self.reference is not None:
            features = self.engine.many(self._core_rows(ids), self.history.events(ids),
                                        self.campaign_rows(ids), self.reference)
            self.churn_scores(features)

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)

    def recover(self) -> list[str]:
        """Re-score customers with events newer than their stored score; returns them."""
        ev, sc = t.events, t.scores
        query = (select(ev.c.customer_id).group_by(ev.c.customer_id)
                 .outerjoin(sc, sc.c.customer_id == ev.c.customer_id)
                 .having(func.max(ev.c.seq) > func.coalesce(func.max(sc.c.last_seq), 0)))
        with self.store.engine.connect() as connection:
            stale = [r[0] for r in connection.execute(query)]
        stale = sorted(self.known(set(stale)))
        for start in range(0, len(stale), MAX_BATCH):
            for customer, result in self._score_isolated(stale[start:start + MAX_BATCH]).items():
                if "error" in result:           # reported; the start goes on
                    warnings.warn(f"at start: customer {customer} {result['error']}",
                                  RuntimeWarning, stacklevel=2)
        return stale

    # -- ingestion ---------------------------------------------------------------------------
    def _store_batches(self, batches: list[list[dict[str, Any]]]
                       ) -> list[tuple[int, int, list[str]] | EventConflict]:
        """Commit several requests' batches of new events in one transaction (the scoring
        worker stores what concurrent requests posted together); per batch, in order,
        (stored, duplicates, customers with new events): retries of stored events are
        skipped. Each batch is all or nothing: one whose ``event_id`` names a different event
        (stored, earlier in it, or in an earlier batch here) gets :class:`EventConflict` and
        stores nothing (a retry must repeat its event exactly); the others are stored."""
        keys = [r["event_key"] for records in batches for r in records]
        now = utcnow()
        fields = [t.events.c[name] for name in EVENT_FIELDS]
        outcomes: list[tuple[int, int, list[str]] | EventConflict] = []
        fresh_all: list[dict[str, Any]] = []
        with self.store.write_lock, self.store.begin() as connection:
            existing = {row[0]: _content(tuple(row[1:])) for row in connection.execute(
                select(t.events.c.event_key, *fields).where(t.events.c.event_key.in_(keys)))}
            for records in batches:
                fresh, seen, conflicts = [], {}, []
                for i, rec in enumerate(records):
                    key = rec["event_key"]
                    content = _content(rec)
                    earlier = existing.get(key, seen.get(key))
                    if earlier is not None:
                        if earlier != content:
                            conflicts.append(i)
                        continue
                    seen[key] = content
                    fresh.append({**rec, "received_at": now})
                if conflicts:
                    outcomes.append(EventConflict(conflicts))
                    continue
                existing.update(seen)
                fresh_all += fresh
                outcomes.append((len(fresh), len(records) - len(fresh),
                                 sorted({r["customer_id"] for r in fresh})))
            if fresh_all:
                connection.execute(t.events.insert(), fresh_all)
        if fresh_all:
            latest = max(r["ts"] for r in fresh_all)
            if self._last_ts is not None and latest > self._last_ts:
                self._last_ts = latest
            if self._closed is not None:
                for r in fresh_all:
                    if r["event_type"] == CLOSE_EVENT:
                        at = pd.Timestamp(r["ts"])
                        self._closed[r["customer_id"]] = min(
                            at, self._closed.get(r["customer_id"], at))
        return outcomes

    def score(self, customers: list[str], timeout: float = 60.0) -> dict[str, dict]:
        """Re-score ``customers`` (through the worker; concurrent calls share a pass)."""
        return self.submit(customers).result(timeout=timeout)

    def submit(self, customers: list[str]) -> Future:
        """Queue ``customers`` for the worker; the future's result is what :meth:`score`
        returns (an HTTP handler awaits it instead of holding a thread while it waits)."""
        job = _Job(customers)
        if not customers:
            job.future.set_result({})
            return job.future
        self._queue.put(job)
        return job.future

    def ingest(self, records: list[dict[str, Any]]) -> Future:
        """Queue events to store and their customers to re-score; the future's result is
        (stored, duplicates, {customer: new score}) once both are committed, or
        :class:`EventConflict` (nothing stored). The worker stores the events of every request
        waiting in one transaction, then scores their customers together."""
        job = _Job([], records)
        self._queue.put(job)
        return job.future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len({c for j in jobs for c in j.customers}) + \
                    sum(len(j.records or ()) for j in jobs) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
            try:
                self._serve(jobs)
            except Exception as exc:        # the worker outlives any one group's failure
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)

    def _serve(self, jobs: list[_Job]) -> None:
        """Store the events of ``jobs`` that bring some, score every customer named, settle
        each job's future. A job whose future was cancelled before it ran (its request timed
        out or went away) is dropped, events unstored; once running, a future cannot be
        cancelled, so every result set here lands (a cancelled one would raise and end the
        worker)."""
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        posting = [j for j in jobs if j.records is not None]
        stored: dict[int, tuple[int, int, list[str]]] = {}
        if posting:
            try:
                outcomes = self._store_batches([j.records for j in posting])
            except Exception as exc:
                for j in posting:
                    j.future.set_exception(exc)
                outcomes = []
            for j, outcome in zip(posting, outcomes, strict=False):
                if isinstance(outcome, EventConflict):
                    j.future.set_exception(outcome)
                else:
                    stored[id(j)] = outcome
                    j.customers = outcome[2]
        live = [j for j in jobs if j.records is None or id(j) in stored]
        wanted = sorted({c for j in live for c in j.customers})
        try:
            results = self._score_isolated(wanted) if wanted else {}
        except Exception as exc:
            for j in live:
                j.future.set_exception(exc)
            return
        for j in live:
            mine = {c: results[c] for c in j.customers if c in results}
            if j.records is None:
                j.future.set_result(mine)
            else:
                count, duplicates, _ = stored[id(j)]
                j.future.set_result((count, duplicates, mine))

    def _score_isolated(self, wanted: list[str]) -> dict[str, dict]:
        """Score ``wanted`` together; when their data cannot be scored (an input problem,
        e.g. features beyond what the model takes), score each alone so one customer's
        data never blocks the others: that customer's entry is ``{"error": why}`` and keeps
        its previous stored score."""
        try:
            return self._score_now(wanted)
        except UpliftError as exc:
            if len(wanted) == 1:
                return {wanted[0]: self._unscorable(exc)}
        results: dict[str, dict] = {}
        for customer in wanted:
            try:
                results.update(self._score_now([customer]))
            except UpliftError as exc:
                results[customer] = self._unscorable(exc)
        return results

    def _unscorable(self, exc: Exception) -> dict[str, str]:
        self.unscorable += 1
        return {"error": f"could not be scored: {exc}; its events are stored and its previous "
                         "score is kept"}

    def _score_now(self, wanted: list[str]) -> dict[str, dict]:
        day = self.current_day()
        if self.reference is None or self.reference.as_of != day:
            self.refresh_reference(day)
        wanted = [c for c in wanted if c in self._position]
        events = self.history.events(wanted)
        features = self.engine.many(self._core_rows(wanted), events,
                                    self.campaign_rows(wanted), self.reference)
        self.reference.update_many(features)
        return self._write(features, initial=False)

    def _events_of(self, ids: list[str]) -> pd.DataFrame:
        """The events of ``ids`` as the online features read them (store order)."""
        return self.history.frame(ids)

    # -- scores and alerts -------------------------------------------------------------------
    def churn_scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """``churn score`` on a feature table: id, churn_risk, tier, reason_1..3, exit_signal."""
        table = features.drop(columns=["as_of", "open_at_as_of", "txn_count_365d_all",
                                       "txn_amount_365d_all"], errors="ignore")
        return self.models.churn.score(table, source="features", id_col="customer_id")

    def _scores_of(self, features: pd.DataFrame, values: np.ndarray, names: list[str]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Churn risk, tier, reasons (rows x 3) and exit signal of the rows of ``features``
        (``values``: its columns ``names`` as a matrix): from the matrix when the model takes
        plain numbers, else through :meth:`churn_scores` (which names any problem)."""
        churn = self.models.churn
        inputs = churn.inputs_of(values, names)
        if inputs is not None:
            return churn.score_inputs(inputs)
        table = self.churn_scores(features)
        return (table["churn_risk"].to_numpy(), table["tier"].to_numpy(object),
                table[[f"reason_{k}" for k in (1, 2, 3)]].to_numpy(object),
                table["exit_signal"].to_numpy(object))

    def _write(self, features: pd.DataFrame, *, initial: bool) -> dict[str, dict]:
        names = feature_columns()
        values = features[names].to_numpy(float)
        risk, tier, reasons, signal = self._scores_of(features, values, names)
        day = str(pd.Timestamp(features["as_of"].iloc[0]).date()) if len(features) else ""
        now = utcnow()
        self.customers()
        segments = self._segments
        ids = features["customer_id"].astype(str).tolist()
        gone = self.closed_by_event() if not initial else {}
        opened = [bool(o) and c not in gone
                  for o, c in zip(features["open_at_as_of"].tolist(), ids, strict=True)]
        out: dict[str, dict] = {}
        escalations: list[Escalation] = []
        with self.store.write_lock, self.store.begin() as connection:
            # the newest event each score rests on: what the history held when features
            # were computed (a later event re-scores the customer again)
            last_seq = {c: self.history.last_seq(c) for c in ids} if not initial else {}
            previous = dict(connection.execute(
                select(t.scores.c.customer_id, t.scores.c.tier)
                .where(t.scores.c.customer_id.in_(ids))).all()) if not initial else {}
            if initial:
                last_seq = dict(connection.execute(
                    select(t.events.c.customer_id, func.max(t.events.c.seq))
                    .group_by(t.events.c.customer_id)).all())
            records = []
            for i, cid in enumerate(ids):
                row = {"customer_id": cid, "churn_risk": float(risk[i]), "tier": str(tier[i]),
                       "reasons": [r for r in reasons[i].tolist() if r],
                       "exit_signal": str(signal[i]), "as_of": day,
                       "model_version": self.version, "scored_at": now,
                       "last_seq": int(last_seq.get(cid, 0)),
                       "features": dict(zip(names, values[i].tolist(), strict=True))}
                records.append(row)
                out[cid] = {k: v for k, v in row.items() if k not in ("features", "last_seq")}
                out[cid]["open"] = opened[i]
                before = previous.get(cid)
                # a customer who has left is scored, but raises no retention alert
                if before is not None and opened[i] and self.tier_rank.get(row["tier"], 0) > \
                        self.tier_rank.get(before, 0):
                    escalations.append(self._alert(connection, row, before,
                                                   segments.get(cid, ""), now))
                    out[cid]["escalated_from"] = before
            if records:
                connection.execute(t.scores.delete().where(t.scores.c.customer_id.in_(ids)))
                for start in range(0, len(records), 5000):
                    connection.execute(t.scores.insert(), records[start:start + 5000])
        self.scored += len(records)
        if escalations:
            self.on_alert(escalations)
        return out

    def _alert(self, connection, row: dict, before: str, segment: str, now) -> Escalation:
        exists = connection.execute(select(t.alerts.c.id).where(and_(
            t.alerts.c.customer_id == row["customer_id"],
            t.alerts.c.event_seq == row["last_seq"], t.alerts.c.tier == row["tier"]))).scalar()
        payload = {"customer_id": row["customer_id"], "segment": segment, "from_tier": before,
                   "tier": row["tier"], "churn_risk": row["churn_risk"],
                   "reasons": row["reasons"], "as_of": row["as_of"],
                   "model_version": row["model_version"]}
        if exists is not None:
            return Escalation(int(exists), row["customer_id"], payload)
        alert_id = connection.execute(t.alerts.insert().values(
            **payload, created_at=now, event_seq=row["last_seq"])).inserted_primary_key[0]
        for url in self.webhooks:
            connection.execute(t.deliveries.insert().values(
                alert_id=alert_id, url=url, status="pending", attempts=0,
                next_attempt_at=now))
        return Escalation(int(alert_id), row["customer_id"], payload)

    # -- reading ---------------------------------------------------------------------------
    def customer_view(self, customer_id: str) -> dict[str, Any] | None:
        """Stored score of one customer with the best offer under the campaign spec."""
        with self.store.engine.connect() as connection:
            row = connection.execute(select(t.scores).where(
                t.scores.c.customer_id == customer_id)).mappings().first()
        if row is None:
            return None
        out = {k: v for k, v in row.items() if k not in ("features", "last_seq")}
        out["scored_at"] = row["scored_at"].isoformat() + "Z"
        closed = self.closed_before(customer_id, row["as_of"])
        out["open"] = closed is None
        group = effect_groups(np.array([row["tier"]], dtype=object),
                              np.array([(row["reasons"] or [""])[0]], dtype=object))
        out["best_offer"] = self.best_offer(customer_id, row["features"], group) \
            if closed is None else {"offer": None,
                                    "why": f"the customer's accounts were closed on {closed}"}
        return out

    def check_do_not_contact(self) -> None:
        """Refuse (at start) a campaign whose do-not-contact list cannot be applied to the
        store's customers (ids written another way, e.g. zero-padded)."""
        listed = self.do_not_contact_list()
        if listed is not None and len(listed):
            from uplift.allocate.rules import checked_do_not_contact

            checked_do_not_contact(listed, self.customers(), listed.attrs.get(
                "source", str(self.spec.do_not_contact)), "the store's customers")

    def do_not_contact_list(self) -> pd.DataFrame | None:
        """The campaign spec's do-not-contact list, read once (None when it names none)."""
        if self.spec.do_not_contact is None:
            return None
        if self._do_not_contact is None:
            from uplift.tasks.allocation import read_do_not_contact

            self._do_not_contact = read_do_not_contact(self.spec)
        return self._do_not_contact

    def closed_before(self, customer_id: str, as_of: str) -> str | None:
        """The close date (ISO) when the customer was no longer open at ``as_of``: the
        customers table's close date before it (the features' ``open_at_as_of`` rule), or an
        ``account_close`` event posted before it; else None."""
        info = self.customer_rows([customer_id])
        dates = []
        if not info.empty and "close_date" in info.columns:
            closed = pd.Timestamp(info["close_date"].iloc[0])
            if not pd.isna(closed) and closed < pd.Timestamp(as_of):
                dates.append(closed)
        event = self.closed_by_event().get(customer_id)
        if event is not None and event < pd.Timestamp(as_of):
            dates.append(event)
        return str(min(dates).date()) if dates else None

    def closed_by_event(self) -> dict[str, pd.Timestamp]:
        """The first ``account_close`` event time of each customer that has one (the bank's
        word that the customer has left): read from the store when the service starts, then
        kept up to date as events are stored (this service is the store's only writer)."""
        if self._closed is None:
            query = (select(t.events.c.customer_id, func.min(t.events.c.ts))
                     .where(t.events.c.event_type == CLOSE_EVENT)
                     .group_by(t.events.c.customer_id))
            with self.store.engine.connect() as connection:
                self._closed = {str(c): pd.Timestamp(ts)
                                for c, ts in connection.execute(query).all()}
        return self._closed

    def open_scores(self, column: str) -> tuple[list[tuple[str, Any]], int]:
        """(customer id, ``column``) of the stored scores of customers still open, and how
        many stored scores belong to customers who have left."""
        open_now = self.open_customers()
        with self.store.engine.connect() as connection:
            stored = connection.execute(select(t.scores.c.customer_id,
                                               t.scores.c[column])).all()
        kept = [(c, v) for c, v in stored if c in open_now]
        return kept, len(stored) - len(kept)

    def open_customers(self) -> set[str]:
        """Customers open on the current day: no close date before it in the customers table
        and no ``account_close`` event."""
        frame = self.customers()
        ids = frame["customer_id"].astype(str)
        if "close_date" in frame.columns:
            close = pd.to_datetime(frame["close_date"], errors="coerce")
            ids = ids[~(close < pd.Timestamp(self.current_day())).to_numpy()]
        return set(ids) - set(self.closed_by_event())

    def best_offer(self, customer_id: str, features: dict[str, float],
                   group: np.ndarray | None = None) -> dict[str, Any]:
        """The eligible offer with the highest expected net gain (currency), its 95% interval;
        ``offer`` is None when no offer is expected to gain or none is allowed. As in a plan,
        offers whose per-customer predictions failed the held-out test take the average of
        the customer's effect group (``group``: one label, from the stored tier and top
        reason), here over the past campaign's customers."""
        from uplift.allocate.rules import excluded_customers
        from uplift.campaign import eligible
        from uplift.effects.gain import expected_gains
        from uplift.valuation import Z_ONE_SIDED_95

        info = self.customer_rows([customer_id]).reset_index(drop=True)
        frame = pd.DataFrame([{"customer_id": customer_id, **features}])
        churn_effects = self.models.effects_churn.predict(frame, source="features")
        value_effects = (self.models.effects_value.predict(frame, source="features")
                         if self.models.effects_value is not None else None)
        if self.evidence:
            churn_effects = coarse_effects(self.evidence["churn"], churn_effects, group,
                                           means=self.effect_means["churn"])
            if value_effects is not None:
                value_effects = coarse_effects(self.evidence["value"], value_effects, group,
                                               means=self.effect_means["value"])
        gains = expected_gains(info, churn_effects, self.spec, self.settings.customer_value,
                               value_effects=value_effects)
        if self.spec.require_consent and "marketing_consent" not in info.columns:
            return {"offer": None, "why": "the campaign requires consent and the customers "
                    "table has no marketing_consent column"}
        blocked, reasons = excluded_customers(info, self.spec, source="customers",
                                              do_not_contact=self.do_not_contact_list())
        if blocked[0]:
            why = next(reason for reason, count in reasons.items() if count)
            return {"offer": None, "why": {"no marketing consent": "no marketing consent"}.get(
                why, f"not to be contacted ({why})")}
        options = []
        for offer in self.spec.offers:
            if not bool(eligible(info, offer, source="customers")[0]):
                continue
            gain = float(gains[f"gain_{offer.name}"].iloc[0])
            se = (gain - float(gains[f"gain_lo_{offer.name}"].iloc[0])) / Z_ONE_SIDED_95
            options.append({"offer": offer.name, "expected_net_gain": round(gain, 2),
                            "interval_95": [round(gain - Z_TWO_SIDED_95 * se, 2),
                                            round(gain + Z_TWO_SIDED_95 * se, 2)],
                            "cost": round(float(gains[f"cost_{offer.name}"].iloc[0]), 2)})
        best = max(options, key=lambda o: o["expected_net_gain"], default=None)
        if best is None:
            return {"offer": None, "why": "not eligible for any offer of the campaign"}
        if best["expected_net_gain"] <= 0:
            return {"offer": None, "why": "no offer is expected to gain more than it costs",
                    "best_candidate": best}
        return {**best, "currency": self.spec.currency, "campaign": self.spec.name}


def _offer_evidence(models, settings, spec) -> tuple[dict | None, dict]:
    """The held-out test of each offer's predictions (as trained) and, for the offers that
    failed it, their effect-group means over the past campaign's customers eligible for the
    offer."""
    from uplift.campaign import offer_eligibility
    from uplift.effects.calibration import campaign_group_means
    from uplift.pipeline import offer_evidence

    evidence = offer_evidence(models, settings)
    log = Path(models.folder) / "backtest.parquet"
    if not evidence or not log.exists():
        return None, {}
    table = pd.read_parquet(log)
    return evidence, campaign_group_means(table, evidence, offer_eligibility(
        table, spec, source=f"{log} (the past campaign's customers)"))


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())

