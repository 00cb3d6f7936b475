"""Observable starts of disengagement in the simulated bank ("triggers").

Real exits are seldom silent at their start: a customer about to leave changes the phone number
bound to the account, moves a first tranche to a competitor, looks up transfer limits and the
closing procedure, disputes a fee or complains, or sends a batch of transfers late at night.
Here a share of the disengagement onsets (:data:`TRIGGER_SHARE`, per latent reason and segment)
gets such a burst of events in the days after the onset; the others start silently and leave
only the slow traces of :mod:`uplift.simulate`.

=========================  =====================================================================
latent reason              triggered share (private banking / mass affluent / young / silent)
=========================  =====================================================================
rate_seeking               0.85 / 0.80 / 0.70 / 0.60: rate comparisons, a first tranche to a
                           competitor, transfer-limit look-ups
fee_sensitivity            0.65 / 0.65 / 0.60 / 0.45: a fee complaint or disputed charge, fee
                           questions to the call centre
service_dissatisfaction    0.80 / 0.80 / 0.75 / 0.65: a complaint, service-quality contacts
drift_to_silence           0.15 / 0.15 / 0.10 / 0.10: mostly none; sometimes a changed address
=========================  =====================================================================

Every triggered customer may also change the bound phone number or the address, look up the
closing procedure, and send a night-time batch of transfers (``ts`` between 00:00:01 and 06:00).
Customers without a trigger also change phone or address now and then, and a small share of
everyone's ordinary transfers happen at night, so no single event proves an exit.

The triggers only add events (and move some ordinary transfers to night hours): the latent
process, the churn days and the campaign are those of the same seed without triggers, so
figures stay comparable old vs new on the same seeds. Random draws come from streams of their
own, derived from the run seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: share of disengagement onsets with an observable start; rows: rate_seeking, fee_sensitivity,
#: service_dissatisfaction, drift_to_silence; columns: segments (private banking, mass
#: affluent, young retail, silent)
TRIGGER_SHARE = np.array([
    [0.85, 0.80, 0.70, 0.60],
    [0.65, 0.65, 0.60, 0.45],
    [0.80, 0.80, 0.75, 0.65],
    [0.15, 0.15, 0.10, 0.10],
])
#: days from the onset to the first trigger event: uniform in [0, TRIGGER_DELAY_DAYS)
TRIGGER_DELAY_DAYS = 4.0
#: ordinary transfers sent at night (share), and profile changes per customer and year
BASE_NIGHT_SHARE = 0.03
BASE_PHONE_CHANGES_PER_YEAR = 0.25
BASE_ADDRESS_CHANGES_PER_YEAR = 0.12
NIGHT_END_SECONDS = 6 * 3600
#: stream ids under the run seed (never used by :mod:`uplift.simulate` itself)
CUSTOMER_STREAM, EVENT_STREAM = 10_000, 10_001


@dataclass(frozen=True)
class Burst:
    """One kind of trigger event: probability per reason (rate, fee, service, drift), number
    of events, days over which they spread after the trigger day, and what they are."""

    prob: tuple[float, float, float, float]
    count: tuple[int, int]           # inclusive range
    spread_days: float
    event_type: str
    page: str | None = None
    topic: str | None = None
    channel: str = "app"
    aum_share: float = 0.0           # amount = aum_share * AUM * lognormal noise (currency)
    night: bool = False              # all events on one night


BURSTS: tuple[Burst, ...] = (
    Burst((0.90, 0.10, 0.10, 0.30), (2, 5), 10, "page_view", page="rate_comparison"),
    Burst((0.70, 0.25, 0.30, 0.20), (1, 1), 7, "transfer_out_competitor", aum_share=0.25),
    Burst((0.60, 0.50, 0.50, 0.50), (2, 4), 10, "page_view", page="transfer_limit"),
    Burst((0.35, 0.35, 0.45, 0.40), (1, 2), 14, "page_view", page="account_closing"),
    Burst((0.00, 0.70, 0.10, 0.00), (1, 1), 5, "complaint", topic="fees", channel="web"),
    Burst((0.00, 0.60, 0.10, 0.00), (1, 2), 10, "service_contact", topic="fees",
          channel="phone"),
    Burst((0.00, 0.10, 0.80, 0.00), (1, 1), 5, "complaint", topic="service_quality",
          channel="phone"),
    Burst((0.00, 0.05, 0.60, 0.00), (1, 2), 10, "service_contact", topic="service_quality",
          channel="phone"),
    Burst((0.25, 0.25, 0.30, 0.20), (1, 1), 5, "profile_change", topic="phone"),
    Burst((0.10, 0.10, 0.10, 0.60), (1, 1), 10, "profile_change", topic="address",
          channel="branch"),
    Burst((0.40, 0.35, 0.35, 0.20), (3, 6), 7, "transfer_out", aum_share=0.04, night=True),
)
#: the burst every triggered customer of a reason gets (index into BURSTS)
PRIMARY = (1, 4, 6, 9)


def trigger_days(seg: np.ndarray, reason: np.ndarray, onset: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Day (from the history start) of each customer's first trigger; NaN when the onset is
    silent or there is none. ``reason`` codes 1..4 as :data:`uplift.simulate.REASONS`."""
    n = len(seg)
    u = rng.random(n)
    delay = rng.uniform(0.0, TRIGGER_DELAY_DAYS, n)
    disengaged = (reason > 0) & np.isfinite(onset)
    share = np.where(disengaged, TRIGGER_SHARE[np.maximum(reason, 1) - 1, seg], 0.0)
    return np.where(disengaged & (u < share), onset + delay, np.nan)


@dataclass
class TriggerEvents:
    """Events to add: row (customer in chunk), seconds from the history start, type, page,
    topic, channel (names) and amount (currency)."""

    row: np.ndarray
    seconds: np.ndarray
    event_type: np.ndarray
    page: np.ndarray
    topic: np.ndarray
    channel: np.ndarray
    amount: np.ndarray


def _burst_events(burst: Burst, rows: np.ndarray, start_day: np.ndarray, aum: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = rng.integers(burst.count[0], burst.count[1] + 1, rows.size)
    row = np.repeat(rows, counts)
    first = np.repeat(start_day, counts)
    if burst.night:   # one night within the spread: all transfers of the batch in it
        night = np.repeat(np.floor(rng.uniform(0, burst.spread_days, rows.size)), counts)
        day = np.floor(first) + night
        seconds = day * 86400 + rng.integers(1, NIGHT_END_SECONDS, row.size)
    else:
        day = np.floor(first + rng.uniform(0, burst.spread_days, row.size))
        seconds = day * 86400 + rng.integers(7 * 3600, 23 * 3600, row.size)
    amount = np.zeros(row.size)
    if burst.aum_share > 0:
        amount = np.round(burst.aum_share * aum[row] * rng.lognormal(-0.08, 0.4, row.size)
                          + 50.0, 2)
    return row, seconds.astype(np.int64), amount


def trigger_events(seg: np.ndarray, reason: np.ndarray, trigger_day: np.ndarray,
                   aum: np.ndarray, history_days: int, rng: np.random.Generator
                   ) -> TriggerEvents:
    """Trigger bursts of triggered customers plus everyone's background profile changes
    (rows index the chunk's customers; events after an exit are dropped by the caller)."""
    n = len(seg)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, Burst]] = []
    triggered = np.flatnonzero(np.isfinite(trigger_day))
    r = reason[triggered] - 1
    draws = rng.random((triggered.size, len(BURSTS)))
    for b_idx, burst in enumerate(BURSTS):
        take = (draws[:, b_idx] < np.asarray(burst.prob)[r]) | (np.asarray(PRIMARY)[r] == b_idx)
        rows = triggered[take]
        row, seconds, amount = _burst_events(burst, rows, trigger_day[rows], aum, rng)
        parts.append((row, seconds, amount, burst))
    years = history_days / 365.0
    for topic, rate in (("phone", BASE_PHONE_CHANGES_PER_YEAR),
                        ("address", BASE_ADDRESS_CHANGES_PER_YEAR)):
        counts = rng.poisson(rate * years, n)
        row = np.repeat(np.arange(n), counts)
        day = np.floor(rng.uniform(0, history_days, row.size))
        seconds = (day * 86400 + rng.integers(7 * 3600, 23 * 3600, row.size)).astype(np.int64)
        parts.append((row, seconds, np.zeros(row.size),
                      Burst((0, 0, 0, 0), (1, 1), 0, "profile_change", topic=topic)))
    size = [p[0].size for p in parts]
    return TriggerEvents(
        row=np.concatenate([p[0] for p in parts]),
        seconds=np.concatenate([p[1] for p in parts]),
        event_type=np.repeat([p[3].event_type for p in parts], size),
        page=np.repeat([p[3].page or "" for p in parts], size),
        topic=np.repeat([p[3].topic or "" for p in parts], size),
        channel=np.repeat([p[3].channel for p in parts], size),
        amount=np.concatenate([p[2] for p in parts]),
    )


def night_seconds(seconds: np.ndarray, is_transfer: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """Move :data:`BASE_NIGHT_SHARE` of the ordinary transfers to a night hour of their day."""
    move = is_transfer & (rng.random(seconds.size) < BASE_NIGHT_SHARE)
    day_start = seconds // 86400 * 86400
    return np.where(move, day_start + rng.integers(1, NIGHT_END_SECONDS, seconds.size), seconds)
