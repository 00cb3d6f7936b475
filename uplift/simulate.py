"""A simulated retail bank with known ground truth (the embedded demo data).

The bank has four segments (private banking, mass affluent, young retail, silent). Each customer
may enter a latent *disengagement* with one of four reasons:

========================  ==============================================================
reason                    traces it leaves in the events before the exit
========================  ==============================================================
rate_seeking              rate / rate-comparison page views, product redemptions,
                          transfers to competitor banks, falling deposits
fee_sensitivity           fee page views, service contacts about fees, falling card spend
service_dissatisfaction   complaints, service contacts about quality, branch visits
drift_to_silence          logins, card spend and deposits fade away
========================  ==============================================================

Every disengaging customer also visits the transfer-limit and account-closing pages more as
the exit nears. Disengagement grows linearly from an onset day over a ramp of weeks; the daily
churn hazard is ``base + peak * g(t)**2`` where ``g`` is the disengagement level in [0, 1], so
the traces appear weeks before the exit. A customer who churns during the history leaves an
``account_close`` event and then nothing.

At the end of the history (the *assignment date*) every open customer enters a randomised
campaign with a control arm and four offers; assignment probabilities differ by segment and
are logged. Each offer scales the hazard of the next 30 days by a customer-specific factor that
depends on the latent reason, the segment, age and AUM, so each offer helps a different group
and some customers are harmed by contact ("sleeping dogs"). Potential outcomes share one random
draw, so effects in ``truth.parquet`` are exact expectations:

* ``p_churn_30d``: true probability of churning within 30 days of assignment without an offer;
* ``delta_churn_<offer>``: true change in that probability with the offer (negative is good);
* ``delta_value_<offer>``: true change in expected ``value_after`` (currency).

``value_after`` is the margin on new business in the 90 days after assignment (currency); the
value of keeping the relationship is ``annual_value`` (currency per year, the default customer
value formula of ``configs/default.yaml``: 1% of AUM + 40 per product + 20).

Everything is vectorised with NumPy and generated in chunks of customers, each chunk with its
own seed derived from the run seed, so the same seed gives identical tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from uplift.errors import InputError
from uplift.schema import CHANNELS, CONTROL_ARM, EVENT_TYPES, PAGES, SEGMENTS, TOPICS

OFFERS: tuple[str, ...] = ("rate_coupon", "fee_waiver", "advisor_visit", "health_report")
ARMS: tuple[str, ...] = (CONTROL_ARM, *OFFERS)
REASONS: tuple[str, ...] = (
    "none", "rate_seeking", "fee_sensitivity", "service_dissatisfaction", "drift_to_silence",
)
HORIZON_DAYS = 30
VALUE_DAYS = 90
DEFAULT_START = "2025-01-01"
CHUNK_CUSTOMERS = 25_000

# --- segment profiles (order of SEGMENTS) -------------------------------------------------
SEGMENT_SHARE = np.array([0.03, 0.17, 0.45, 0.35])
AUM_LOG_MEAN = np.log([600_000.0, 80_000.0, 4_000.0, 2_500.0])
AUM_LOG_SD = np.array([0.7, 0.6, 1.0, 1.1])
PRODUCTS_MEAN = np.array([3.5, 2.5, 1.0, 0.6])
DIGITAL_SHARE = np.array([0.45, 0.65, 0.85, 0.5])
TENURE_YEARS = np.array([10.0, 8.0, 3.0, 7.0])
MONTHLY_BASE_CHURN = np.array([0.004, 0.006, 0.01, 0.012])
DISENGAGE_SHARE = np.array([0.26, 0.30, 0.36, 0.42])
WAVE_SHARE = 0.6
#: reason probabilities (rate, fee, service, drift) per segment
REASON_MIX = np.array([
    [0.50, 0.05, 0.35, 0.10],
    [0.45, 0.15, 0.25, 0.15],
    [0.15, 0.45, 0.20, 0.20],
    [0.05, 0.20, 0.10, 0.65],
])
AGE_BANDS: tuple[str, ...] = ("18-29", "30-44", "45-59", "60+")
AGE_MIX = np.array([
    [0.02, 0.18, 0.40, 0.40],
    [0.08, 0.32, 0.35, 0.25],
    [0.60, 0.35, 0.05, 0.00],
    [0.20, 0.30, 0.25, 0.25],
])
#: assignment probabilities of ARMS per segment in the past randomised campaign
PROPENSITY = np.array([
    [0.20, 0.20, 0.10, 0.40, 0.10],
    [0.20, 0.20, 0.20, 0.20, 0.20],
    [0.20, 0.25, 0.25, 0.05, 0.25],
    [0.20, 0.25, 0.25, 0.05, 0.25],
])

# --- true offer effects: log hazard multipliers (rows REASONS / SEGMENTS, cols OFFERS) ------
EFFECT_BY_REASON = np.array([
    [-0.05, -0.05, -0.05, -0.05],   # none
    [-1.00, -0.10, -0.30, 0.05],    # rate_seeking
    [-0.10, -1.00, -0.10, 0.25],    # fee_sensitivity (reminders of the account annoy them)
    [0.10, -0.25, -1.00, -0.15],    # service_dissatisfaction
    [-0.10, -0.15, 0.40, -0.70],    # drift_to_silence (a visit wakes sleeping dogs)
])
EFFECT_BY_SEGMENT = np.array([
    [-0.15, 0.00, -0.35, 0.05],     # private_banking
    [-0.10, 0.00, -0.20, 0.00],     # mass_affluent
    [0.00, -0.10, 0.25, -0.10],     # young_retail
    [0.05, 0.00, 0.45, 0.00],       # silent
])
EFFECT_NOISE_SD = 0.15


@dataclass(frozen=True)
class EventKind:
    """One kind of event with its weekly rate model.

    rate = base[segment] * activity * (1 - decline[reason] * g) + boost[reason] * g**power
    """

    event_type: str
    base: tuple[float, float, float, float]
    decline: tuple[float, float, float, float, float] = (0, 0.3, 0.3, 0.3, 0.8)
    boost: tuple[float, float, float, float, float] = (0, 0, 0, 0, 0)
    power: float = 1.0
    page: str | None = None
    topic: str | None = None
    digital_channel: str = "app"
    offline_channel: str = "branch"
    amount_aum_share: float = 0.0
    amount_fixed: float = 0.0
    amount_sd: float = 0.6
    digital: bool = False


def _page(page: str, base: tuple[float, float, float, float], **kw: object) -> EventKind:
    return EventKind("page_view", base, page=page, digital_channel="app",
                     offline_channel="web", digital=True, **kw)  # type: ignore[arg-type]


EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind("login", (0.8, 1.4, 1.8, 0.2), decline=(0, 0.1, 0.15, 0.1, 0.9),
              digital_channel="app", offline_channel="web", digital=True),
    _page("home", (0.4, 0.7, 0.9, 0.1), decline=(0, 0.1, 0.15, 0.1, 0.9)),
    _page("accounts", (0.4, 0.6, 0.7, 0.08), decline=(0, 0.1, 0.1, 0.1, 0.9)),
    _page("cards", (0.1, 0.2, 0.3, 0.03), decline=(0, 0.2, 0.5, 0.3, 0.9)),
    _page("products", (0.15, 0.2, 0.15, 0.02), decline=(0, 0.5, 0.5, 0.5, 0.9)),
    _page("rates", (0.1, 0.15, 0.05, 0.02), boost=(0, 2.0, 0.05, 0.05, 0)),
    _page("rate_comparison", (0.02, 0.03, 0.01, 0.005), boost=(0, 1.8, 0.05, 0.05, 0)),
    _page("fees", (0.03, 0.05, 0.08, 0.02), boost=(0, 0.05, 2.0, 0.2, 0)),
    _page("transfer_limit", (0.02, 0.02, 0.02, 0.005), boost=(0, 3.0, 2.4, 2.4, 1.5),
          power=1.5),
    _page("account_closing", (0.003, 0.003, 0.004, 0.002), boost=(0, 2.5, 2.5, 2.8, 1.5),
          power=2.0),
    _page("other", (0.15, 0.2, 0.3, 0.03)),
    EventKind("deposit", (0.5, 0.45, 0.35, 0.08), decline=(0, 0.7, 0.4, 0.4, 0.8),
              amount_aum_share=0.03, amount_fixed=300, amount_sd=0.7, digital_channel="app",
              offline_channel="branch"),
    EventKind("withdrawal", (0.4, 0.45, 0.5, 0.1), decline=(0, 0.1, 0.3, 0.3, 0.8),
              boost=(0, 0.3, 0.1, 0.1, 0), amount_aum_share=0.02, amount_fixed=120,
              amount_sd=0.7, digital_channel="atm", offline_channel="branch"),
    EventKind("transfer_out", (0.35, 0.35, 0.4, 0.05), decline=(0, 0.2, 0.3, 0.3, 0.8),
              amount_aum_share=0.015, amount_fixed=150, amount_sd=0.8, digital_channel="app",
              offline_channel="branch"),
    EventKind("transfer_out_competitor", (0.02, 0.02, 0.02, 0.004),
              decline=(0, 0, 0, 0, 0.5), boost=(0, 1.2, 0.35, 0.35, 0.05),
              amount_aum_share=0.12, amount_fixed=200, amount_sd=0.5, digital_channel="app",
              offline_channel="branch"),
    EventKind("card_spend", (1.5, 1.8, 2.2, 0.25), decline=(0, 0.2, 0.7, 0.4, 0.9),
              amount_aum_share=0.0002, amount_fixed=45, amount_sd=0.9, digital_channel="pos",
              offline_channel="pos"),
    EventKind("product_buy", (0.06, 0.04, 0.02, 0.004), decline=(0, 0.9, 0.8, 0.8, 0.9),
              amount_aum_share=0.08, amount_fixed=500, amount_sd=0.6, digital_channel="app",
              offline_channel="branch"),
    EventKind("product_redeem", (0.02, 0.02, 0.01, 0.003), decline=(0, 0, 0, 0, 0),
              boost=(0, 0.6, 0.1, 0.12, 0.03), amount_aum_share=0.15, amount_fixed=500,
              amount_sd=0.5, digital_channel="app", offline_channel="branch"),
    EventKind("branch_visit", (0.15, 0.06, 0.02, 0.02), decline=(0, 0.3, 0.3, -0.5, 0.8),
              boost=(0, 0.05, 0.05, 0.25, 0), digital_channel="branch",
              offline_channel="branch"),
    EventKind("service_contact", (0.015, 0.015, 0.02, 0.005), topic="fees",
              boost=(0, 0.02, 0.8, 0.1, 0.0), digital_channel="phone", offline_channel="branch"),
    EventKind("service_contact", (0.01, 0.01, 0.005, 0.002), topic="rates",
              boost=(0, 0.35, 0.02, 0.02, 0.0), digital_channel="phone",
              offline_channel="branch"),
    EventKind("service_contact", (0.02, 0.015, 0.02, 0.004), topic="card",
              digital_channel="phone", offline_channel="branch"),
    EventKind("service_contact", (0.01, 0.01, 0.01, 0.003), topic="service_quality",
              boost=(0, 0.02, 0.05, 0.8, 0.0), digital_channel="phone",
              offline_channel="branch"),
    EventKind("service_contact", (0.002, 0.002, 0.002, 0.001), topic="closing",
              boost=(0, 0.6, 0.6, 0.7, 0.4), power=2.0, digital_channel="phone",
              offline_channel="branch"),
    EventKind("service_contact", (0.03, 0.02, 0.02, 0.005), topic="general",
              digital_channel="phone", offline_channel="branch"),
    EventKind("complaint", (0.003, 0.003, 0.003, 0.001), topic="service_quality",
              boost=(0, 0.01, 0.03, 0.6, 0), digital_channel="web", offline_channel="phone"),
    EventKind("complaint", (0.002, 0.002, 0.003, 0.001), topic="fees",
              boost=(0, 0.0, 0.3, 0.05, 0), digital_channel="web", offline_channel="phone"),
    EventKind("campaign_open", (0.15, 0.15, 0.1, 0.03), decline=(0, 0.6, 0.6, 0.7, 0.9),
              digital_channel="email", offline_channel="email"),
    EventKind("campaign_response", (0.02, 0.015, 0.01, 0.002), decline=(0, 0.8, 0.8, 0.8, 0.95),
              digital_channel="email", offline_channel="email"),
)
assert all(k.event_type in EVENT_TYPES for k in EVENT_KINDS)
assert all(k.page in (None, *PAGES) and k.topic in (None, *TOPICS) for k in EVENT_KINDS)


@dataclass(frozen=True)
class SimulatedBank:
    """The tables of a simulated bank (DataFrames; events are written chunk by chunk)."""

    customers: pd.DataFrame
    campaign_log: pd.DataFrame
    truth: pd.DataFrame
    events_rows: int
    assignment_date: pd.Timestamp
    start_date: pd.Timestamp
    events: pd.DataFrame | None = None      # in memory when no events file was asked for


def annual_value(aum: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Default customer value (currency per year): 1% of AUM + 40 per product + 20."""
    return 0.01 * aum + 40.0 * products + 20.0


def _cum_disengagement(t: np.ndarray, onset: np.ndarray, ramp: np.ndarray) -> np.ndarray:
    """Integral of g(u)**2 du from -inf to t, with g a linear ramp from onset to onset+ramp."""
    x = np.clip(t - onset, 0.0, None)
    inside = np.minimum(x, ramp)
    return inside**3 / (3.0 * ramp**2) + np.clip(x - ramp, 0.0, None)


def cumulative_hazard(t: np.ndarray, params: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
    """Cumulative churn hazard at day ``t`` (days from the history start), no offer."""
    onset = np.asarray(params["onset_day"], dtype="float64")
    ramp = np.asarray(params["ramp_days"], dtype="float64")
    base = np.asarray(params["base_hazard"], dtype="float64")
    peak = np.asarray(params["peak_hazard"], dtype="float64")
    safe_onset = np.where(np.isfinite(onset), onset, 1e9)
    return base * t + peak * _cum_disengagement(t, safe_onset, ramp)


def _not_started_average(values: np.ndarray, not_started: np.ndarray, groups: np.ndarray
                         ) -> np.ndarray:
    """Replace ``values`` of customers whose disengagement has not started by the group mean
    over such customers."""
    out = values.copy()
    for g in np.unique(groups):
        sel = not_started & (groups == g)
        if sel.any():
            out[sel] = values[sel].mean(axis=0)
    return out


def true_churn_probability(
    truth: pd.DataFrame, as_of: pd.Timestamp | str, horizon_days: int = HORIZON_DAYS,
    gap_days: int = 0,
) -> np.ndarray:
    """True probability (no offer) of churning in [as_of+gap, as_of+gap+horizon), if open.

    This is the oracle score churn models are compared with. It knows every latent state at
    ``as_of`` (each customer's disengagement level, speed and hazard) but not the future: a
    customer whose disengagement has not started yet gets the average, over such customers of
    the same segment, of the chance that a future onset ends in churn inside the window.
    """
    start = pd.Timestamp(truth.attrs.get("start_date", DEFAULT_START))
    day = float((pd.Timestamp(as_of) - start).days)
    lo = np.full(len(truth), day + gap_days)
    hi = lo + horizon_days
    base = truth["base_hazard"].to_numpy(float) * horizon_days
    disengagement = (cumulative_hazard(hi, truth) - cumulative_hazard(lo, truth)) - base
    survive_dis = np.exp(-disengagement)
    onset = truth["onset_day"].to_numpy(float)
    not_started = ~(onset < day)
    segments = truth["segment"].astype(str).to_numpy()
    survive_dis = _not_started_average(survive_dis, not_started, segments)
    return 1.0 - np.exp(-base) * survive_dis


def true_policy_churn(truth: pd.DataFrame, customer_ids: pd.Series, arms: np.ndarray,
                      control: str = CONTROL_ARM) -> float:
    """True 30-day churn rate of the logged customers had each got ``arms`` (the policy's
    choice per row; ``control`` = no offer), from ``truth.parquet`` of the simulated bank.

    Uses the full-information probabilities (``p_churn_30d_latent``, ``delta_churn_latent_*``:
    future disengagement onsets known), because the policy's realised outcomes on these very
    customers average to those. The "knowable at assignment" columns average the onset risk
    over a segment; a policy whose choice correlates with a customer's own offer response would
    be scored against the segment's response instead (a bias of about 2% of the value)."""
    from uplift.ids import canonical_ids

    known = truth.set_index(canonical_ids(truth["customer_id"]).to_numpy())
    wanted = canonical_ids(customer_ids).to_numpy()
    absent = ~pd.Index(wanted).isin(known.index)
    if absent.any():
        raise InputError(f"{int(absent.sum()):,} of {len(wanted):,} logged customers are not "
                         f"in the truth file (first: data row {int(absent.argmax()) + 1}); "
                         "pass the truth of the simulated bank the log comes from")
    rows = known.loc[wanted]
    latent = "p_churn_30d_latent" in rows.columns
    prefix = "delta_churn_latent_" if latent else "delta_churn_"
    p = rows["p_churn_30d_latent" if latent else "p_churn_30d"].to_numpy().copy()
    for arm in set(arms) - {control}:
        mask = arms == arm
        p[mask] += rows[f"{prefix}{arm}"].to_numpy()[mask]
    return float(p.mean())


def _draw_customers(n: int, rng: np.random.Generator, history_days: int) -> dict[str, np.ndarray]:
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    aum = np.round(np.exp(rng.normal(AUM_LOG_MEAN[seg], AUM_LOG_SD[seg])), 2)
    products = 1 + rng.poisson(PRODUCTS_MEAN[seg])
    tenure_days = rng.exponential(TENURE_YEARS[seg] * 365.0)
    newcomer = (seg == 2) & (rng.random(n) < 0.06)
    open_day = np.where(newcomer, rng.uniform(0, history_days * 0.7, n), -tenure_days - 30)
    open_day = np.floor(open_day)
    age_idx = np.empty(n, dtype=np.int64)
    for s in range(len(SEGMENTS)):  # loop over 4 segments, vectorised inside
        mask = seg == s
        age_idx[mask] = rng.choice(len(AGE_BANDS), size=mask.sum(), p=AGE_MIX[s])
    digital = np.clip(rng.beta(4, 4, n) + DIGITAL_SHARE[seg] - 0.5, 0.02, 0.98)
    activity = np.exp(rng.normal(0.0, 0.35, n))
    consent = rng.random(n) < 0.92

    disengaged = rng.random(n) < DISENGAGE_SHARE[seg]
    reason = np.zeros(n, dtype=np.int64)
    for s in range(len(SEGMENTS)):
        mask = disengaged & (seg == s)
        reason[mask] = 1 + rng.choice(4, size=mask.sum(), p=REASON_MIX[s])
    # a background of disengagement spread over the history plus a recent wave (e.g. a
    # competitor's rate campaign and a fee rise) that puts many customers at risk at assignment
    wave = rng.random(n) < WAVE_SHARE
    onset = np.where(wave, rng.uniform(history_days - 120.0, history_days, n),
                     rng.uniform(-60.0, history_days + 45.0, n))
    onset = np.where(disengaged, onset, np.inf)
    onset = np.where(np.isfinite(onset), np.maximum(onset, open_day + 30), onset)
    ramp = np.where(reason == 4, rng.uniform(80.0, 120.0, n), rng.uniform(45.0, 75.0, n))
    base_hazard = MONTHLY_BASE_CHURN[seg] / 30.0 * np.exp(rng.normal(0, 0.3, n))
    peak_hazard = np.where(disengaged, rng.uniform(0.02, 0.035, n), 0.0)
    return {
        "seg": seg, "aum": aum, "products": products, "open_day": open_day, "age": age_idx,
        "digital": digital, "activity": activity, "consent": consent, "reason": reason,
        "onset_day": onset, "ramp_days": ramp, "base_hazard": base_hazard,
        "peak_hazard": peak_hazard,
    }


def _churn_day(c: dict[str, np.ndarray], exp_draw: np.ndarray, end_day: float) -> np.ndarray:
    """Day of churn within [open, end_day) by inverting the cumulative hazard; inf if none."""
    start = np.maximum(c["open_day"], 0.0)
    h0 = cumulative_hazard(start, c)
    target = h0 + exp_draw
    churned = cumulative_hazard(np.full_like(start, end_day), c) >= target
    lo, hi = start.copy(), np.full_like(start, end_day)
    for _ in range(40):  # bisection, vectorised over customers
        mid = 0.5 * (lo + hi)
        above = cumulative_hazard(mid, c) >= target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(churned, np.floor(hi), np.inf)


def _offer_log_multipliers(c: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Per customer and offer: log factor on the 30-day hazard (negative = offer helps)."""
    n = len(c["seg"])
    log_aum = (np.log1p(c["aum"]) - 9.0) / 2.0
    young = (c["age"] == 0).astype(float)
    log_m = EFFECT_BY_REASON[c["reason"]] + EFFECT_BY_SEGMENT[c["seg"]]
    log_m[:, 2] -= 0.15 * log_aum                   # advisors help the wealthy more
    log_m[:, 3] -= 0.20 * young                     # digital health report suits the young
    log_m[:, 0] -= 0.10 * log_aum                   # a coupon matters more on big balances
    return log_m + rng.normal(0.0, EFFECT_NOISE_SD, (n, len(OFFERS)))


OUTFLOW_TYPES = ("withdrawal", "transfer_out", "transfer_out_competitor", "card_spend",
                 "product_buy")


def _balanced_deposit_size(c: dict[str, np.ndarray]) -> np.ndarray:
    """Mean deposit (currency) that balances an engaged customer's expected weekly flows.

    Engaged customers' balances then wander around their starting AUM; disengaging ones drain
    (deposits fall while withdrawals and competitor transfers rise).
    """
    seg, aum = c["seg"], c["aum"]
    net_out = np.zeros(len(seg))
    deposit_rate = np.zeros(len(seg))
    for kind in EVENT_KINDS:
        rate = np.asarray(kind.base)[seg]
        size = kind.amount_aum_share * aum + kind.amount_fixed
        if kind.event_type in OUTFLOW_TYPES:
            net_out += rate * size
        elif kind.event_type == "product_redeem":
            net_out -= rate * size
        elif kind.event_type == "deposit":
            deposit_rate += rate
    return np.maximum(net_out / deposit_rate, 10.0)


def _events_chunk(
    c: dict[str, np.ndarray], ids: np.ndarray, churn_day: np.ndarray, history_days: int,
    start: pd.Timestamp, rng: np.random.Generator,
    trigger_rng: np.random.Generator | None = None,
) -> pa.Table:
    """Events of a chunk of customers; with ``trigger_rng``, also the trigger bursts of
    :mod:`uplift.simulate_triggers` (``c["trigger_day"]``) and night-time transfers."""
    weeks = int(np.ceil(history_days / 7))
    mid = np.arange(weeks) * 7.0 + 3.5
    onset = np.where(np.isfinite(c["onset_day"]), c["onset_day"], 1e9)
    g = np.clip((mid[None, :] - onset[:, None]) / c["ramp_days"][:, None], 0.0, 1.0)
    g_power = {p: g**p for p in {k.power for k in EVENT_KINDS}}
    first_day = np.maximum(c["open_day"], 0.0)
    live = ((np.arange(weeks) * 7.0)[None, :] + 7 > first_day[:, None]) & (
        (np.arange(weeks) * 7.0)[None, :] < churn_day[:, None])
    seg, reason = c["seg"], c["reason"]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("row", "day", "kind", "digital")}
    for k_idx, kind in enumerate(EVENT_KINDS):
        base = np.asarray(kind.base)[seg] * c["activity"]
        if kind.digital:
            base = base * (0.3 + c["digital"])
        decline = np.asarray(kind.decline, dtype=float)[reason]
        boost = np.asarray(kind.boost, dtype=float)[reason]
        rate = base[:, None] * np.clip(1.0 - decline[:, None] * g, 0.0, None)
        if boost.any():
            rate += boost[:, None] * g_power[kind.power]
        counts = rng.poisson(rate * live)
        row, week = np.nonzero(counts)
        reps = counts[row, week]
        row = np.repeat(row, reps)
        day = np.repeat(week, reps) * 7 + rng.integers(0, 7, row.size)
        parts["row"].append(row)
        parts["day"].append(day)
        parts["kind"].append(np.full(row.size, k_idx, dtype=np.int16))
        parts["digital"].append(rng.random(row.size) < c["digital"][row])
    row = np.concatenate(parts["row"])
    day = np.concatenate(parts["day"]).astype(np.float64)
    kind_idx = np.concatenate(parts["kind"])
    digital = np.concatenate(parts["digital"])
    keep = (day >= first_day[row]) & (day < churn_day[row]) & (day < history_days)
    row, day, kind_idx, digital = row[keep], day[keep], kind_idx[keep], digital[keep]
    # account closures: one event on the churn day
    closed = np.flatnonzero(churn_day < history_days)
    close_kind = len(EVENT_KINDS)
    row = np.concatenate([row, closed])
    day = np.concatenate([day, churn_day[closed]])
    kind_idx = np.concatenate([kind_idx, np.full(closed.size, close_kind, dtype=np.int16)])
    digital = np.concatenate([digital, np.zeros(closed.size, dtype=bool)])

    seconds = day.astype(np.int64) * 86400 + rng.integers(7 * 3600, 23 * 3600, row.size)
    order = np.argsort(row.astype(np.int64) * (history_days + 1) * 86400 + seconds,
                       kind="stable")
    row, seconds, kind_idx, digital = row[order], seconds[order], kind_idx[order], digital[order]

    n_kinds = len(EVENT_KINDS)
    share = np.array([k.amount_aum_share for k in EVENT_KINDS] + [0.0])
    fixed = np.array([k.amount_fixed for k in EVENT_KINDS] + [0.0])
    sd = np.array([k.amount_sd for k in EVENT_KINDS] + [0.0])
    scale = share[kind_idx] * c["aum"][row] + fixed[kind_idx]
    deposit_kind = next(i for i, k in enumerate(EVENT_KINDS) if k.event_type == "deposit")
    is_deposit = kind_idx == deposit_kind
    scale[is_deposit] = _balanced_deposit_size(c)[row[is_deposit]]
    amount = np.round(scale * np.exp(rng.normal(-0.5 * sd[kind_idx] ** 2, sd[kind_idx])), 2)
    amount = np.where(scale > 0, amount, 0.0)

    type_names = [k.event_type for k in EVENT_KINDS] + ["account_close"]
    type_codes = np.array([EVENT_TYPES.index(t) for t in type_names], dtype=np.int8)
    page_codes = np.array([PAGES.index(k.page) if k.page else -1 for k in EVENT_KINDS] + [-1],
                          dtype=np.int8)
    topic_codes = np.array([TOPICS.index(k.topic) if k.topic else -1 for k in EVENT_KINDS]
                           + [-1], dtype=np.int8)
    dig_ch = [CHANNELS.index(k.digital_channel) for k in EVENT_KINDS] + [CHANNELS.index("branch")]
    off_ch = [CHANNELS.index(k.offline_channel) for k in EVENT_KINDS] + [CHANNELS.index("branch")]
    channel_code = np.where(digital, np.array(dig_ch)[kind_idx], np.array(off_ch)[kind_idx])
    assert n_kinds + 1 == len(type_names)
    codes = {"type": type_codes[kind_idx], "page": page_codes[kind_idx],
             "topic": topic_codes[kind_idx], "channel": channel_code.astype(np.int8)}
    if trigger_rng is not None:
        codes, row, seconds, amount = _with_triggers(c, codes, row, seconds, amount, churn_day,
                                                     history_days, trigger_rng)
    ts = start.to_datetime64().astype("datetime64[s]") + seconds.astype("timedelta64[s]")

    def dictionary(codes: np.ndarray, values: tuple[str, ...]) -> pa.DictionaryArray:
        mask = codes < 0
        indices = pa.array(np.where(mask, 0, codes).astype(np.int8), mask=mask)
        return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))

    return pa.table({
        "customer_id": pa.array(ids[row]),
        "ts": pa.array(ts.astype("datetime64[us]")),
        "event_type": dictionary(codes["type"], EVENT_TYPES),
        "amount": pa.array(amount),
        "channel": dictionary(codes["channel"], CHANNELS),
        "page": dictionary(codes["page"], PAGES),
        "topic": dictionary(codes["topic"], TOPICS),
    })


def _with_triggers(c: dict[str, np.ndarray], codes: dict[str, np.ndarray], row: np.ndarray,
                   seconds: np.ndarray, amount: np.ndarray, churn_day: np.ndarray,
                   history_days: int, rng: np.random.Generator,
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The chunk's events plus trigger bursts, with some ordinary transfers moved to night."""
    from uplift import simulate_triggers as trig

    transfers = [EVENT_TYPES.index("transfer_out"), EVENT_TYPES.index("transfer_out_competitor")]
    seconds = trig.night_seconds(seconds, np.isin(codes["type"], transfers), rng)
    extra = trig.trigger_events(c["seg"], c["reason"], c["trigger_day"], c["aum"],
                                history_days, rng)
    day = extra.seconds // 86400
    first_day = np.maximum(c["open_day"], 0.0)
    keep = ((day >= first_day[extra.row]) & (day < churn_day[extra.row])
            & (day < history_days))

    def code(values: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(vocabulary)}
        return np.array([lookup.get(v, -1) for v in values[keep]], dtype=np.int8)

    out = {"type": code(extra.event_type, EVENT_TYPES), "page": code(extra.page, PAGES),
           "topic": code(extra.topic, TOPICS), "channel": code(extra.channel, CHANNELS)}
    row = np.concatenate([row, extra.row[keep]])
    seconds = np.concatenate([seconds, extra.seconds[keep]])
    amount = np.concatenate([amount, extra.amount[keep]])
    merged = {k: np.concatenate([codes[k], out[k]]) for k in codes}
    order = np.argsort(row.astype(np.int64) * (history_days + 1) * 86400 + seconds,
                       kind="stable")
    return {k: v[order] for k, v in merged.items()}, row[order], seconds[order], amount[order]


def simulate_bank(
    n_customers: int,
    months: int = 12,
    *,
    seed: int = 0,
    start_date: str = DEFAULT_START,
    events_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    triggers: bool = True,
) -> SimulatedBank:
    """Simulate a bank of ``n_customers`` over ``months`` of history with a campaign at the end.

    With ``triggers`` (the default) a share of the disengagement onsets get an observable start
    (:mod:`uplift.simulate_triggers`); without, the bank of the same seed is the same except for
    those events (and the night hours of some transfers). Events are written to
    ``events_path`` (Parquet, one row group per chunk of customers) when given, so memory stays
    bounded; otherwise they are returned in memory with the other tables. ``progress(done,
    total)`` is
    called after each chunk.
    """
    if n_customers < 1:
        raise InputError(f"the number of customers must be at least 1, got {n_customers}")
    if not 1 <= months <= 60:
        raise InputError(f"the months of history must be between 1 and 60, got {months}")
    start = pd.Timestamp(start_date)
    assign = start + pd.DateOffset(months=months)
    history_days = int((assign - start).days)
    root = np.random.SeedSequence(seed)
    customer_seed, outcome_seed, *chunk_seeds = root.spawn(
        2 + int(np.ceil(n_customers / CHUNK_CUSTOMERS)))
    rng = np.random.default_rng(customer_seed)
    c = _draw_customers(n_customers, rng, history_days)
    ids = np.arange(1, n_customers + 1, dtype=np.int64) + 10_000_000
    exp_draw = rng.exponential(1.0, n_customers)
    churn_day = _churn_day(c, exp_draw, float(history_days))
    log_m = _offer_log_multipliers(c, rng)
    from uplift import simulate_triggers as trig

    c["trigger_day"] = np.full(n_customers, np.nan)
    if triggers:
        c["trigger_day"] = trig.trigger_days(c["seg"], c["reason"], c["onset_day"],
                                             np.random.default_rng(np.random.SeedSequence(
                                                 seed, spawn_key=(trig.CUSTOMER_STREAM,))))

    events_rows = 0
    kept: list[pa.Table] = []
    writer: pq.ParquetWriter | None = None
    try:
        for i, chunk_seed in enumerate(chunk_seeds):
            lo, hi = i * CHUNK_CUSTOMERS, min((i + 1) * CHUNK_CUSTOMERS, n_customers)
            part = {k: v[lo:hi] for k, v in c.items()}
            trigger_rng = (np.random.default_rng(np.random.SeedSequence(
                seed, spawn_key=(trig.EVENT_STREAM, i))) if triggers else None)
            table = _events_chunk(part, ids[lo:hi], churn_day[lo:hi], history_days, start,
                                  np.random.default_rng(chunk_seed), trigger_rng)
            events_rows += table.num_rows
            if events_path is None:
                kept.append(table)
            else:
                if writer is None:
                    writer = pq.ParquetWriter(events_path, table.schema, compression="zstd")
                writer.write_table(table)
            if progress is not None:
                progress(hi, n_customers)
    finally:
        if writer is not None:
            writer.close()

    # --- campaign at the assignment date ------------------------------------------------
    out_rng = np.random.default_rng(outcome_seed)
    alive = np.isinf(churn_day) & (c["open_day"] < history_days)
    h_assign = cumulative_hazard(np.full(n_customers, float(history_days)), c)
    h_end = cumulative_hazard(np.full(n_customers, float(history_days + HORIZON_DAYS)), c)
    window_hazard = h_end - h_assign
    multiplier_all = np.exp(log_m)
    # truth is what was knowable at assignment: for customers whose disengagement has not
    # started, the disengagement part of the hazard is replaced by its average effect over
    # such customers of the segment (see true_churn_probability); the base part stays personal
    base_part = c["base_hazard"] * HORIZON_DAYS
    dis_part = window_hazard - base_part
    not_started = ~(c["onset_day"] < history_days)
    seg_names = np.asarray(SEGMENTS)[c["seg"]]
    survive_dis0 = _not_started_average(np.exp(-dis_part), not_started, seg_names)
    survive_dis = _not_started_average(np.exp(-dis_part[:, None] * multiplier_all), not_started,
                                       seg_names)
    p0 = 1.0 - np.exp(-base_part) * survive_dis0
    p_offer = 1.0 - np.exp(-base_part[:, None] * multiplier_all) * survive_dis
    delta_churn = p_offer - p0[:, None]
    # the same with the future onset known: what each customer's realised outcome averages to
    # (the target of policy evaluation on the logged customers)
    p0_latent = 1.0 - np.exp(-window_hazard)
    p_offer_latent = 1.0 - np.exp(-window_hazard[:, None] * multiplier_all)

    base_new_business = 0.001 * c["aum"] + 5.0
    extra = np.zeros((n_customers, len(OFFERS)))
    wealthy = np.isin(c["seg"], [0, 1])
    extra[:, 2] = np.where(wealthy, 0.003 * c["aum"], 0.0)
    extra[:, 3] = 2.0
    value_control = (1 - p0) * base_new_business
    value_offer = (1 - p_offer) * (base_new_business[:, None] + extra)
    delta_value = value_offer - value_control[:, None]

    cumulative = np.cumsum(PROPENSITY[c["seg"]], axis=1)
    u = out_rng.random(n_customers)
    arm = (u[:, None] > cumulative).sum(axis=1)
    propensity = PROPENSITY[c["seg"], arm]
    remaining = exp_draw - (h_assign - cumulative_hazard(np.maximum(c["open_day"], 0.0), c))
    multiplier = np.where(arm == 0, 1.0, np.exp(log_m[np.arange(n_customers),
                                                     np.maximum(arm - 1, 0)]))
    churned = (window_hazard * multiplier >= remaining).astype(np.int8)
    extra_arm = np.where(arm == 0, 0.0, extra[np.arange(n_customers), np.maximum(arm - 1, 0)])
    value_after = (1 - churned) * (base_new_business + extra_arm) * out_rng.lognormal(
        -0.5 * 0.4**2, 0.4, n_customers)

    day = lambda d: start + pd.to_timedelta(d, unit="D")  # noqa: E731
    open_date = day(c["open_day"]).normalize()
    close_date = pd.Series(pd.NaT, index=range(n_customers), dtype="datetime64[us]")
    closed = np.isfinite(churn_day)
    close_date[closed] = day(churn_day[closed])
    customers = pd.DataFrame({
        "customer_id": ids,
        "segment": pd.Categorical.from_codes(c["seg"], SEGMENTS),
        "open_date": open_date.astype("datetime64[us]"),
        "close_date": close_date,
        "age_band": pd.Categorical.from_codes(c["age"], AGE_BANDS),
        "aum": c["aum"],
        "products_held": c["products"].astype(np.int64),
        "digital_share": np.round(c["digital"], 3),
        "marketing_consent": c["consent"],
    })
    in_campaign = alive
    campaign_log = pd.DataFrame({
        "customer_id": ids[in_campaign],
        "campaign_id": f"retention_{assign:%Y_%m}",
        "arm": np.asarray(ARMS, dtype=object)[arm[in_campaign]],
        "assigned_at": pd.Timestamp(assign).as_unit("us"),
        "propensity": propensity[in_campaign],
        "churned": churned[in_campaign],
        "value_after": np.round(value_after[in_campaign], 2),
    })
    onset_date = pd.Series(pd.NaT, index=range(n_customers), dtype="datetime64[us]")
    has_onset = np.isfinite(c["onset_day"])
    onset_date[has_onset] = day(c["onset_day"][has_onset]).floor("D")
    truth = pd.DataFrame({
        "customer_id": ids,
        "segment": customers["segment"],
        "latent_reason": pd.Categorical.from_codes(c["reason"], REASONS),
        "onset_day": c["onset_day"],
        "onset_date": onset_date,
        "trigger_day": c["trigger_day"],
        "ramp_days": c["ramp_days"],
        "base_hazard": c["base_hazard"],
        "peak_hazard": c["peak_hazard"],
        "open_at_assignment": alive,
        "p_churn_30d": np.where(alive, p0, np.nan),
        "annual_value": annual_value(c["aum"], c["products"]),
    })
    for k, offer in enumerate(OFFERS):
        truth[f"delta_churn_{offer}"] = np.where(alive, delta_churn[:, k], np.nan)
    for k, offer in enumerate(OFFERS):
        truth[f"delta_value_{offer}"] = np.where(alive, delta_value[:, k], np.nan)
    truth["p_churn_30d_latent"] = np.where(alive, p0_latent, np.nan)
    for k, offer in enumerate(OFFERS):
        truth[f"delta_churn_latent_{offer}"] = np.where(
            alive, p_offer_latent[:, k] - p0_latent, np.nan)
    truth.attrs["start_date"] = str(start.date())
    events = pa.concat_tables(kept).to_pandas() if kept else None
    return SimulatedBank(customers, campaign_log, truth, events_rows, assign, start, events)


def write_bank(bank: SimulatedBank, out_dir: Path) -> dict[str, int]:
    """Write the non-event tables of ``bank`` into ``out_dir``; returns row counts."""
    bank.customers.to_parquet(out_dir / "customers.parquet", index=False)
    bank.campaign_log.to_parquet(out_dir / "campaign_log.parquet", index=False)
    truth = bank.truth.copy()
    truth.to_parquet(out_dir / "truth.parquet", index=False)
    return {
        "customers.parquet": len(bank.customers),
        "events.parquet": bank.events_rows,
        "campaign_log.parquet": len(bank.campaign_log),
        "truth.parquet": len(bank.truth),
    }


def read_bank_table(path: Path) -> pd.DataFrame:
    """A simulated bank's table with ids as canonical text, so it joins with the product's
    outputs (which carry ids as text, :mod:`uplift.ids`)."""
    from uplift.ids import canonical_ids

    table = pd.read_parquet(path)
    table["customer_id"] = canonical_ids(table["customer_id"])
    return table


def read_truth(path: Path) -> pd.DataFrame:
    """Read ``truth.parquet`` (ids as canonical text, like every table the product reads) and
    restore the history start date used by the oracle helpers."""
    truth = read_bank_table(path)
    manifest = path.parent / "manifest.json"
    if manifest.exists():
        import json

        truth.attrs["start_date"] = json.loads(manifest.read_text())["start_date"]
    return truth


def simulate_plan_response(truth: pd.DataFrame, plan: pd.DataFrame, start: str | pd.Timestamp,
                           *, seed: int = 0, horizon_days: int = HORIZON_DAYS,
                           control: str = CONTROL_ARM) -> pd.DataFrame:
    """Events of the campaign window after a plan was carried out on the simulated bank.

    Each selected customer churns within ``horizon_days`` of ``start`` with the true
    probability given the arm they got (the offer when contacted, none when held out; the
    full-information columns of ``truth``: ``p_churn_30d_latent`` + ``delta_churn_latent_*``),
    and a churner gets one ``account_close`` event on a uniform day of the window (the others
    one ``login``). Returns events (customer_id, ts, event_type, amount, channel) for the
    planned customers only."""
    rng = np.random.default_rng(seed)
    from uplift.ids import canonical_ids

    rows = truth.set_index(canonical_ids(truth["customer_id"])).loc[
        canonical_ids(plan["customer_id"]).to_numpy()]
    held = plan["holdout"].astype(int).to_numpy() == 1
    offer_col = "planned_offer" if "planned_offer" in plan.columns else "offer"
    arms = np.where(held, control, plan[offer_col].astype(str).to_numpy())
    p = rows["p_churn_30d_latent"].to_numpy(float).copy()
    for arm in set(arms) - {control}:
        mask = arms == arm
        p[mask] += rows[f"delta_churn_latent_{arm}"].to_numpy(float)[mask]
    churn = rng.random(len(p)) < np.clip(p, 0.0, 1.0)
    days = rng.uniform(0, horizon_days, len(p))
    ts = pd.Timestamp(start) + pd.to_timedelta(days, unit="D")
    return pd.DataFrame({"customer_id": plan["customer_id"].to_numpy(),
                         "ts": ts.astype("datetime64[us]"),
                         "event_type": np.where(churn, "account_close", "login"),
                         "amount": 0.0, "channel": np.where(churn, "branch", "app")})
