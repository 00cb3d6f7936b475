"""The feature registry: every feature's name, family, one-line description and SQL.

Conventions (all features are computed as of a date T from events with ``ts < T``):

* ``age`` of an event is ``T - event date`` in days (an event yesterday has age 1); a window
  of ``w`` days holds events with ``1 <= age <= w``; the previous window ``w+1 .. 2w``.
* Amounts are in currency units; counts are events; rates/shares are in [0, 1].
* ``days_since_*`` is capped at :data:`DAYS_CAP` (730) when the event never happened.
* Trends are ``ln(1 + recent) - ln(1 + previous)`` (0 = flat, > 0 rising).
* A customer with no events gets 0 for counts, amounts, trends and shares, and the cap for
  ``days_since_*`` features. External features are 0 (and ``ext_data_present`` = 0) when the
  bank supplies no external table.

``kind`` says where the SQL runs: ``agg`` is an aggregate over the customer's events (``ev``),
``monthly`` an aggregate over the customer's 30-day buckets, ``campaign`` over past campaign
rows, ``external`` over the optional tables, ``derived`` an expression over already computed
features and customer columns, ``rank`` a window function across customers (RFM scores).
"""

from __future__ import annotations

from dataclasses import dataclass

DAYS_CAP = 730
WINDOWS = (7, 30, 90, 365)
INFLOW = ("deposit", "product_redeem")
OUTFLOW = ("withdrawal", "transfer_out", "transfer_out_competitor", "card_spend", "product_buy")
MONETARY = INFLOW + OUTFLOW
PAGES_TRACKED = ("home", "accounts", "cards", "products", "rates", "rate_comparison", "fees",
                 "transfer_limit", "account_closing", "other")
TOPICS_TRACKED = ("fees", "rates", "card", "service_quality", "closing", "general")
FAMILIES = ("transaction", "behaviour", "interaction", "external")
#: an event is at night when its time of day is after 00:00:00 and before this hour; a ``ts``
#: of exactly midnight is a date without a time (many exports) and never counts as night
NIGHT_END_HOUR = 6
TRANSFERS = ("transfer_out", "transfer_out_competitor")
#: events that often mark the start of an exit (each also happens without one)
TRIGGER_SQL = ("(event_type IN ('profile_change', 'complaint', 'transfer_out_competitor') "
               "OR (event_type = 'page_view' AND page IN ('rate_comparison', 'transfer_limit', "
               "'account_closing')) OR (event_type = 'service_contact' AND topic = 'closing') "
               "OR (event_type IN ('transfer_out', 'transfer_out_competitor') AND night))")


@dataclass(frozen=True)
class Feature:
    """One named feature."""

    name: str
    family: str
    description: str
    sql: str
    kind: str = "agg"
    fill: float = 0.0


def _in(types: tuple[str, ...]) -> str:
    return "event_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def _type(t: str) -> str:
    return f"event_type = '{t}'"


def _count(cond: str, lo: int, hi: int) -> str:
    return f"sum(CASE WHEN {cond} AND age BETWEEN {lo} AND {hi} THEN 1 ELSE 0 END)"


def _sum(cond: str, lo: int, hi: int) -> str:
    return f"sum(CASE WHEN {cond} AND age BETWEEN {lo} AND {hi} THEN amount ELSE 0 END)"


def _days_since(cond: str) -> str:
    return f"coalesce(min(CASE WHEN {cond} THEN age END), {DAYS_CAP})"


def _trend(expr_recent: str, expr_previous: str) -> str:
    return f"ln(1 + greatest({expr_recent}, 0)) - ln(1 + greatest({expr_previous}, 0))"


SIGNED_AMOUNT = (f"CASE WHEN {_in(INFLOW)} THEN amount WHEN {_in(OUTFLOW)} THEN -amount "
                 "ELSE 0 END")


def _transaction() -> list[Feature]:
    out: list[Feature] = []
    add = out.append
    for t in MONETARY:
        for w in WINDOWS:
            add(Feature(f"txn_{t}_count_{w}d", "transaction",
                        f"number of {t.replace('_', ' ')} events in the last {w} days",
                        _count(_type(t), 1, w)))
            add(Feature(f"txn_{t}_amount_{w}d", "transaction",
                        f"total {t.replace('_', ' ')} amount in the last {w} days (currency)",
                        _sum(_type(t), 1, w)))
    for w in WINDOWS:
        add(Feature(f"txn_net_flow_{w}d", "transaction",
                    f"inflows minus outflows in the last {w} days (currency)",
                    f"sum(CASE WHEN age <= {w} THEN {SIGNED_AMOUNT} ELSE 0 END)"))
    for w in (30, 90, 365):
        add(Feature(f"txn_competitor_share_{w}d", "transaction",
                    f"share of outflow amount sent to competitor banks, last {w} days",
                    f"{_sum(_type('transfer_out_competitor'), 1, w)} / "
                    f"greatest({_sum(_in(OUTFLOW), 1, w)}, 1)"))
    trend_targets = {
        "deposit_amount": ("sum", _type("deposit")),
        "card_spend_amount": ("sum", _type("card_spend")),
        "card_spend_count": ("count", _type("card_spend")),
        "withdrawal_amount": ("sum", _type("withdrawal")),
        "outflow_amount": ("sum", _in(OUTFLOW)),
        "competitor_amount": ("sum", _type("transfer_out_competitor")),
        "redeem_amount": ("sum", _type("product_redeem")),
        "txn_count": ("count", _in(MONETARY)),
    }
    for label, (how, cond) in trend_targets.items():
        fn = _sum if how == "sum" else _count
        add(Feature(f"txn_{label}_trend_mom", "transaction",
                    f"{label.replace('_', ' ')}: last 30 days vs the 30 before (log ratio)",
                    _trend(fn(cond, 1, 30), fn(cond, 31, 60))))
        add(Feature(f"txn_{label}_trend_qoq", "transaction",
                    f"{label.replace('_', ' ')}: last 90 days vs the 90 before (log ratio)",
                    _trend(fn(cond, 1, 90), fn(cond, 91, 180))))
    for label, col in (("deposit_amount", "dep"), ("card_spend_amount", "card"),
                       ("txn_count", "n")):
        add(Feature(f"txn_{label}_monthly_cv", "transaction",
                    f"coefficient of variation of monthly {label.replace('_', ' ')} over 12 "
                    "months", f"sqrt(greatest(sum({col}*{col})/12 - pow(sum({col})/12, 2), 0)) "
                    f"/ (sum({col})/12 + 1)", kind="monthly"))
    add(Feature("txn_net_flow_monthly_std", "transaction",
                "standard deviation of monthly net flow over 12 months (currency)",
                "sqrt(greatest(sum(net*net)/12 - pow(sum(net)/12, 2), 0))", kind="monthly"))
    add(Feature("txn_net_flow_slope_6m", "transaction",
                "slope of monthly net flow over the last 6 months (currency per month)",
                "-(sum(m*net) FILTER (WHERE m < 6) - 2.5*coalesce(sum(net) FILTER "
                "(WHERE m < 6), 0)) / 17.5", kind="monthly"))
    add(Feature("txn_count_slope_12m", "transaction",
                "slope of monthly transaction count over 12 months (events per month)",
                "-(sum(m*n) - 5.5*sum(n)) / 143.0", kind="monthly"))
    for w in (90, 365):
        add(Feature(f"txn_product_net_{w}d", "transaction",
                    f"product buys minus redemptions in the last {w} days (currency)",
                    f"{_sum(_type('product_buy'), 1, w)} - {_sum(_type('product_redeem'), 1, w)}"))
    add(Feature("txn_redeem_to_buy_ratio_365d", "transaction",
                "redemption amount / (buy amount + 1) over the last 365 days",
                f"{_sum(_type('product_redeem'), 1, 365)} / "
                f"({_sum(_type('product_buy'), 1, 365)} + 1)"))
    add(Feature("txn_avg_card_ticket_90d", "transaction",
                "average card spend per transaction, last 90 days (currency)",
                f"coalesce(avg(CASE WHEN {_type('card_spend')} AND age <= 90 THEN amount END), 0)"))
    add(Feature("txn_avg_deposit_90d", "transaction",
                "average deposit, last 90 days (currency)",
                f"coalesce(avg(CASE WHEN {_type('deposit')} AND age <= 90 THEN amount END), 0)"))
    for w in (30, 90):
        add(Feature(f"txn_active_days_{w}d", "transaction",
                    f"days with at least one transaction in the last {w} days",
                    f"count(DISTINCT CASE WHEN {_in(MONETARY)} AND age <= {w} THEN age END)"))
    add(Feature("txn_days_since_last", "transaction",
                f"days since the last transaction (capped at {DAYS_CAP})",
                _days_since(_in(MONETARY)), fill=DAYS_CAP))
    add(Feature("txn_days_since_deposit", "transaction",
                f"days since the last deposit (capped at {DAYS_CAP})",
                _days_since(_type("deposit")), fill=DAYS_CAP))
    add(Feature("txn_days_since_card_spend", "transaction",
                f"days since the last card payment (capped at {DAYS_CAP})",
                _days_since(_type("card_spend")), fill=DAYS_CAP))
    # balance: starting AUM (0 when the customers table has none) + all net flows before T
    add(Feature("bal_net_flow_all", "transaction",
                "net flow of all events before the as-of date (currency)",
                f"coalesce(sum({SIGNED_AMOUNT}), 0)"))
    add(Feature("bal_level", "transaction",
                "estimated balance at the as-of date: starting AUM + all net flows (currency)",
                "c_aum + bal_net_flow_all", kind="derived"))
    add(Feature("bal_level_30d_ago", "transaction",
                "estimated balance 30 days before the as-of date (currency)",
                "c_aum + bal_net_flow_all - txn_net_flow_30d", kind="derived"))
    add(Feature("bal_change_90d", "transaction",
                "balance change over the last 90 days (currency)", "txn_net_flow_90d",
                kind="derived"))
    add(Feature("bal_velocity_30d", "transaction",
                "relative balance change over 30 days: net flow / |balance 30 days ago|",
                "txn_net_flow_30d / greatest(abs(c_aum + bal_net_flow_all - txn_net_flow_30d), "
                "100)", kind="derived"))
    add(Feature("bal_velocity_90d", "transaction",
                "relative balance change over 90 days: net flow / |balance 90 days ago|",
                "txn_net_flow_90d / greatest(abs(c_aum + bal_net_flow_all - txn_net_flow_90d), "
                "100)", kind="derived"))
    add(Feature("bal_to_start_ratio", "transaction",
                "estimated balance / starting AUM (1 = unchanged; 1 when AUM is unknown)",
                "CASE WHEN c_aum > 0 THEN (c_aum + bal_net_flow_all) / c_aum ELSE 1 END",
                kind="derived", fill=1.0))
    add(Feature("cust_tenure_days", "transaction", "days since the relationship started",
                "greatest(c_tenure_days, 0)", kind="derived"))
    add(Feature("cust_aum", "transaction", "assets under management at history start "
                "(currency; 0 when not supplied)", "c_aum", kind="derived"))
    add(Feature("cust_products_held", "transaction", "number of products held (0 when not "
                "supplied)", "c_products", kind="derived"))
    add(Feature("rfm_recency_score", "transaction",
                "RFM recency quintile score (5 = most recent transaction)",
                "txn_days_since_last DESC", kind="rank", fill=1.0))
    add(Feature("rfm_frequency_score", "transaction",
                "RFM frequency quintile score on transactions in 365 days (5 = most)",
                "txn_count_365d_all", kind="rank", fill=1.0))
    add(Feature("rfm_monetary_score", "transaction",
                "RFM monetary quintile score on money moved in 365 days (5 = most)",
                "txn_amount_365d_all", kind="rank", fill=1.0))
    add(Feature("rfm_segment", "transaction",
                "combined RFM segment code 100*R + 10*F + M (111 .. 555)",
                "100*rfm_recency_score + 10*rfm_frequency_score + rfm_monetary_score",
                kind="rank_derived", fill=111.0))
    return out


def _behaviour() -> list[Feature]:
    out: list[Feature] = []
    add = out.append
    login = _type("login")
    for w in WINDOWS:
        add(Feature(f"beh_logins_{w}d", "behaviour", f"logins in the last {w} days",
                    _count(login, 1, w)))
    add(Feature("beh_login_trend_mom", "behaviour",
                "logins: last 30 days vs the 30 before (log ratio)",
                _trend(_count(login, 1, 30), _count(login, 31, 60))))
    add(Feature("beh_login_trend_qoq", "behaviour",
                "logins: last 90 days vs the 90 before (log ratio)",
                _trend(_count(login, 1, 90), _count(login, 91, 180))))
    add(Feature("beh_days_since_login", "behaviour",
                f"days since the last login (capped at {DAYS_CAP})", _days_since(login),
                fill=DAYS_CAP))
    add(Feature("beh_login_days_30d", "behaviour", "distinct days with a login, last 30 days",
                f"count(DISTINCT CASE WHEN {login} AND age <= 30 THEN age END)"))
    add(Feature("beh_login_app_share_90d", "behaviour",
                "share of logins through the app, last 90 days",
                f"{_count(login + ' AND channel = ' + chr(39) + 'app' + chr(39), 1, 90)} / "
                f"greatest({_count(login, 1, 90)}, 1)"))
    for page in PAGES_TRACKED:
        cond = f"{_type('page_view')} AND page = '{page}'"
        for w in (30, 90):
            add(Feature(f"beh_page_{page}_{w}d", "behaviour",
                        f"views of the {page.replace('_', ' ')} page, last {w} days",
                        _count(cond, 1, w)))
    for w in WINDOWS:
        add(Feature(f"beh_page_views_{w}d", "behaviour", f"page views in the last {w} days",
                    _count(_type("page_view"), 1, w)))
    risky = (f"{_type('page_view')} AND page IN ('transfer_limit', 'account_closing', "
             "'rate_comparison')")
    for w in (30, 90):
        add(Feature(f"beh_exit_page_share_{w}d", "behaviour",
                    f"share of page views on transfer-limit, closing or rate-comparison pages, "
                    f"last {w} days",
                    f"{_count(risky, 1, w)} / greatest({_count(_type('page_view'), 1, w)}, 1)"))
    for page in ("account_closing", "transfer_limit", "rate_comparison"):
        add(Feature(f"beh_days_since_{page}_page", "behaviour",
                    f"days since the last {page.replace('_', ' ')} page view (capped at "
                    f"{DAYS_CAP})", _days_since(f"{_type('page_view')} AND page = '{page}'"),
                    fill=DAYS_CAP))
    closing = f"{_type('page_view')} AND page = 'account_closing'"
    add(Feature("beh_closing_page_trend", "behaviour",
                "account-closing page views: last 30 days vs the 60 before (log ratio, per "
                "30 days)", _trend(_count(closing, 1, 30), f"{_count(closing, 31, 90)} / 2")))
    for w in (30, 90, 365):
        add(Feature(f"beh_branch_visits_{w}d", "behaviour", f"branch visits, last {w} days",
                    _count(_type("branch_visit"), 1, w)))
    add(Feature("beh_days_since_branch_visit", "behaviour",
                f"days since the last branch visit (capped at {DAYS_CAP})",
                _days_since(_type("branch_visit")), fill=DAYS_CAP))
    for topic in TOPICS_TRACKED:
        cond = f"{_type('service_contact')} AND topic = '{topic}'"
        for w in (90, 365):
            add(Feature(f"beh_service_{topic}_{w}d", "behaviour",
                        f"service contacts about {topic.replace('_', ' ')}, last {w} days",
                        _count(cond, 1, w)))
    for w in (30, 90):
        add(Feature(f"beh_service_contacts_{w}d", "behaviour",
                    f"service contacts (any topic), last {w} days",
                    _count(_type("service_contact"), 1, w)))
    add(Feature("beh_days_since_service_contact", "behaviour",
                f"days since the last service contact (capped at {DAYS_CAP})",
                _days_since(_type("service_contact")), fill=DAYS_CAP))
    add(Feature("beh_digital_share_90d", "behaviour",
                "share of events through app or web, last 90 days",
                _count("channel IN ('app', 'web')", 1, 90) + " / "
                f"greatest({_count('TRUE', 1, 90)}, 1)"))
    add(Feature("beh_events_trend_mom", "behaviour",
                "all events: last 30 days vs the 30 before (log ratio)",
                _trend(_count("TRUE", 1, 30), _count("TRUE", 31, 60))))
    baseline = {
        "logins": login, "card_payments": _type("card_spend"), "deposits": _type("deposit"),
        "page_views": _type("page_view"), "events": "TRUE",
    }
    for label, cond in baseline.items():
        add(Feature(f"beh_{label}_vs_baseline", "behaviour",
                    f"{label.replace('_', ' ')}: last 30 days vs the customer's own monthly "
                    "average over days 91-365 (log ratio)",
                    _trend(_count(cond, 1, 30), f"{_count(cond, 91, 365)} * 30.0 / 275.0")))
    return out


def _interaction() -> list[Feature]:
    out: list[Feature] = []
    add = out.append
    opened, responded = _type("campaign_open"), _type("campaign_response")
    for w in (90, 365):
        add(Feature(f"int_campaign_opens_{w}d", "interaction",
                    f"campaign messages opened, last {w} days", _count(opened, 1, w)))
        add(Feature(f"int_campaign_responses_{w}d", "interaction",
                    f"campaign responses, last {w} days", _count(responded, 1, w)))
    add(Feature("int_response_rate_365d", "interaction",
                "campaign responses / opens over the last 365 days",
                f"{_count(responded, 1, 365)} / greatest({_count(opened, 1, 365)}, 1)"))
    add(Feature("int_open_trend_qoq", "interaction",
                "campaign opens: last 90 days vs the 90 before (log ratio)",
                _trend(_count(opened, 1, 90), _count(opened, 91, 180))))
    add(Feature("int_days_since_response", "interaction",
                f"days since the last campaign response (capped at {DAYS_CAP})",
                _days_since(responded), fill=DAYS_CAP))
    for w in (30, 90, 365):
        add(Feature(f"int_complaints_{w}d", "interaction", f"complaints, last {w} days",
                    _count(_type("complaint"), 1, w)))
    for topic in ("fees", "service_quality"):
        add(Feature(f"int_complaints_{topic}_365d", "interaction",
                    f"complaints about {topic.replace('_', ' ')}, last 365 days",
                    _count(f"{_type('complaint')} AND topic = '{topic}'", 1, 365)))
    add(Feature("int_days_since_complaint", "interaction",
                f"days since the last complaint (capped at {DAYS_CAP})",
                _days_since(_type("complaint")), fill=DAYS_CAP))
    add(Feature("int_past_offers", "interaction",
                "offers received in past campaigns whose outcome window has closed",
                "count(*) FILTER (WHERE arm <> 'control')", kind="campaign"))
    add(Feature("int_past_advisor_visits", "interaction",
                "advisor visits received in past campaigns",
                "count(*) FILTER (WHERE arm = 'advisor_visit')", kind="campaign"))
    add(Feature("int_past_offer_retained", "interaction",
                "past offers after which the customer stayed (advisor/offer outcome)",
                "count(*) FILTER (WHERE arm <> 'control' AND churned = 0)", kind="campaign"))
    add(Feature("int_days_since_offer", "interaction",
                f"days since the last offer received (capped at {DAYS_CAP})",
                f"coalesce(min(camp_age) FILTER (WHERE arm <> 'control'), {DAYS_CAP})",
                kind="campaign", fill=DAYS_CAP))
    return out


def _triggers() -> list[Feature]:
    """Short-window signs of an exit starting: profile changes, night transfers, triggers."""
    out: list[Feature] = []
    add = out.append
    for topic in ("phone", "address"):
        for w in (7, 30):
            add(Feature(f"beh_profile_change_{topic}_{w}d", "behaviour",
                        f"changes of the bound {topic} in the last {w} days",
                        _count(f"{_type('profile_change')} AND topic = '{topic}'", 1, w)))
    add(Feature("beh_days_since_profile_change", "behaviour",
                f"days since the last phone or address change (capped at {DAYS_CAP})",
                _days_since(_type("profile_change")), fill=DAYS_CAP))
    night = f"{_in(TRANSFERS)} AND night"
    for w in (7, 30):
        add(Feature(f"txn_night_transfers_{w}d", "transaction",
                    f"transfers sent between midnight and {NIGHT_END_HOUR}:00, last {w} days",
                    _count(night, 1, w)))
    for w in (30, 90):
        add(Feature(f"txn_night_transfer_share_{w}d", "transaction",
                    f"share of transfers sent between midnight and {NIGHT_END_HOUR}:00, last "
                    f"{w} days", f"{_count(night, 1, w)} / greatest({_count(_in(TRANSFERS), 1, w)}"
                    ", 1)"))
    for w in (7, 14, 30):
        add(Feature(f"beh_trigger_count_{w}d", "behaviour",
                    f"exit triggers in the last {w} days (profile changes, complaints, "
                    "competitor or night transfers, rate-comparison, transfer-limit or closing "
                    "look-ups)", _count(TRIGGER_SQL, 1, w)))
    add(Feature("beh_trigger_days_14d", "behaviour",
                "distinct days with an exit trigger, last 14 days",
                f"count(DISTINCT CASE WHEN {TRIGGER_SQL} AND age <= 14 THEN age END)"))
    add(Feature("beh_days_since_first_trigger_60d", "behaviour",
                "days since the first exit trigger of the last 60 days (capped at "
                f"{DAYS_CAP} when none)",
                f"coalesce(max(CASE WHEN {TRIGGER_SQL} AND age <= 60 THEN age END), {DAYS_CAP})",
                fill=DAYS_CAP))
    add(Feature("beh_days_since_trigger", "behaviour",
                f"days since the last exit trigger (capped at {DAYS_CAP})",
                _days_since(TRIGGER_SQL), fill=DAYS_CAP))
    add(Feature("beh_trigger_vs_baseline", "behaviour",
                "exit triggers: last 14 days vs the customer's own average per 14 days over days "
                "91-365 (log ratio)",
                _trend(_count(TRIGGER_SQL, 1, 14),
                       f"{_count(TRIGGER_SQL, 91, 365)} * 14.0 / 275.0")))
    return out


def _external() -> list[Feature]:
    return [
        Feature("ext_data_present", "external",
                "1 when an external table covers this customer, else 0", "1", kind="external"),
        Feature("ext_other_bank_accounts", "external",
                "accounts held at other banks opened before the as-of date",
                "count(*) FILTER (WHERE src = 'account')", kind="external"),
        Feature("ext_other_bank_accounts_90d", "external",
                "accounts opened at other banks in the last 90 days",
                "count(*) FILTER (WHERE src = 'account' AND age <= 90)", kind="external"),
        Feature("ext_credit_enquiries_90d", "external",
                "credit enquiries by other lenders, last 90 days",
                "count(*) FILTER (WHERE src = 'enquiry' AND age <= 90)", kind="external"),
        Feature("ext_credit_enquiries_365d", "external",
                "credit enquiries by other lenders, last 365 days",
                "count(*) FILTER (WHERE src = 'enquiry' AND age <= 365)", kind="external"),
        Feature("ext_days_since_enquiry", "external",
                f"days since the last credit enquiry (capped at {DAYS_CAP})",
                f"coalesce(min(age) FILTER (WHERE src = 'enquiry'), {DAYS_CAP})",
                kind="external", fill=DAYS_CAP),
    ]


FEATURES: tuple[Feature, ...] = tuple(_transaction() + _behaviour() + _interaction()
                                      + _triggers() + _external())
assert len({f.name for f in FEATURES}) == len(FEATURES), "feature names must be unique"


def registry_frame():  # -> pandas.DataFrame
    """The registry as a table: name, family, description, kind."""
    import pandas as pd

    return pd.DataFrame([(f.name, f.family, f.description, f.kind) for f in FEATURES],
                        columns=["name", "family", "description", "kind"])
