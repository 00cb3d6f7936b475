"""Load input tables through their contracts, with cross-table checks.

Used by ``uplift validate`` and by every stage that reads user data, so a bad file is
rejected the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

from uplift import io
from uplift.campaign import CampaignSpec, load_campaign_spec
from uplift.errors import InputError, SpecError
from uplift.ids import check_join
from uplift.schema import (
    CAMPAIGN_LOG,
    CONTRACTS,
    CUSTOMERS,
    DO_NOT_CONTACT,
    EVENTS,
    MIN_EVENT_MATCH,
    OUTCOMES,
    Contract,
    check_arms,
    validate,
)


def load_column_map(path: Path | None) -> dict[str, dict[str, str]]:
    """Read ``{table: {canonical: actual}}`` from YAML (empty when no file is given)."""
    if path is None:
        return {}
    if not path.exists():
        raise InputError(f"{path}: column map not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected {{table: {{canonical: your_column}}}}")
    for table, mapping in raw.items():
        if table not in CONTRACTS:
            raise SpecError(f"{path}: unknown table {table!r}; tables are "
                            f"{', '.join(CONTRACTS)}")
        if not isinstance(mapping, dict):
            raise SpecError(f"{path}: {table}: expected a mapping canonical -> your column")
        known = {c.name for c in CONTRACTS[table].columns}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise SpecError(f"{path}: {table}: unknown column(s) {', '.join(unknown)}; "
                            f"contract columns are {', '.join(sorted(known))}")
    return {t: {str(k): str(v) for k, v in m.items()} for t, m in raw.items()}


def find_table(folder: Path, name: str) -> Path | None:
    """The ``name`` table in ``folder`` (Parquet preferred over CSV), or None."""
    for suffix in (".parquet", ".csv", ".csv.gz"):
        candidate = folder / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def load_table(
    path: Path, contract: Contract, *, rename: Mapping[str, str] | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read ``path`` and validate it against ``contract`` (canonical names and types)."""
    ids = (dict(rename or {}).get("customer_id", "customer_id"),)
    frame = io.read_table(path, encoding=encoding, ids=ids)
    return validate(frame, contract, source=str(path), rename=rename)


# columns a plan adds to the customers table before eligibility rules are evaluated
PLAN_COLUMNS = ("churn_risk", "tier", "customer_value", "exit_signal", "reason_1", "reason_2",
                "reason_3")


def check_spec_columns(spec: CampaignSpec, customers: pd.DataFrame, *, source: str
                       ) -> list[str]:
    """Every column the spec's eligibility rules, quotas and holdout strata name must be in the
    customers table (or be one the plan adds), a spec requiring consent needs the consent
    column (consent is never assumed), and each rule must evaluate on it; returns
    summary lines, raises :class:`InputError` naming the offer, rule and column."""
    from uplift.allocate.rules import CONSENT_MISSING
    from uplift.campaign import eligible, expression_columns

    known = set(customers.columns) | set(PLAN_COLUMNS)
    problems = []
    if spec.require_consent and "marketing_consent" not in customers.columns:
        problems.append(CONSENT_MISSING)
    for offer in spec.offers:
        if offer.eligibility is None:
            continue
        missing = sorted(expression_columns(offer.eligibility) - known)
        if missing:
            problems.append(f"offer {offer.name!r} eligibility {offer.eligibility!r} names "
                            f"column(s) {', '.join(missing)}, which the table lacks")
    for i, quota in enumerate(spec.segment_quotas):
        if quota.column not in known:
            problems.append(f"segment_quotas[{i}] uses column {quota.column!r}, which the "
                            "table lacks")
        elif quota.segment not in set(customers[quota.column].astype(str)):
            problems.append(f"segment_quotas[{i}]: no customer has {quota.column} = "
                            f"{quota.segment!r}")
    for col in spec.holdout_stratify:
        if col not in known:
            problems.append(f"holdout_stratify names column {col!r}, which the table lacks")
    if problems:
        raise InputError(f"{source}: the campaign spec does not fit this table:\n"
                         + "\n".join(f"  - {p}" for p in problems))
    lines = []
    for offer in spec.offers:
        if offer.eligibility is None or expression_columns(offer.eligibility) - set(
                customers.columns):
            continue                      # rules on plan columns are checked at plan time
        try:
            share = float(eligible(customers, offer, source=source).mean())
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{source}: offer {offer.name!r} eligibility "
                             f"{offer.eligibility!r} cannot be evaluated on this table "
                             f"({type(exc).__name__}: {exc})") from exc
        lines.append(f"  offer {offer.name}: {share:.1%} of customers eligible "
                     f"({offer.eligibility})")
    return lines


def validate_inputs(
    *,
    customers: Path | None = None,
    events: Path | None = None,
    campaign_log: Path | None = None,
    outcomes: Path | None = None,
    campaign: Path | None = None,
    data: Path | None = None,
    column_map: Path | None = None,
    encoding: str | None = None,
) -> list[str]:
    """Validate whichever inputs are given; return summary lines. Raises on the first bad file."""
    if data is not None:
        if not data.is_dir():
            raise InputError(f"{data}: data folder not found")
        customers = customers or find_table(data, "customers")
        events = events or find_table(data, "events")
        campaign_log = campaign_log or find_table(data, "campaign_log")
        if customers is None and events is None and campaign_log is None:
            raise InputError(f"{data}: no customers, events or campaign_log table "
                             "(.parquet or .csv) in this folder")
    if not any([customers, events, campaign_log, outcomes, campaign]):
        raise InputError("nothing to validate: give a data folder, at least one table or a "
                         "campaign spec")
    mapping = load_column_map(column_map)
    lines: list[str] = []
    failures: list[InputError] = []

    @contextmanager
    def checking():
        """Run one input's checks; a problem is kept and the other inputs are still checked."""
        try:
            yield
        except InputError as exc:
            failures.append(exc)

    spec: CampaignSpec | None = None
    if campaign is not None:
        with checking():
            spec = load_campaign_spec(campaign)
            lines.append(f"{campaign}: campaign {spec.name!r}, {len(spec.offers)} "
                         f"offer{'s' if len(spec.offers) != 1 else ''} "
                         f"({', '.join(spec.offer_names)}), budget {spec.budget}, holdout "
                         f"{spec.holdout_fraction:.0%}")
    known_ids: pd.Series | None = None
    if customers is not None:
        with checking():
            table = load_table(customers, CUSTOMERS, rename=mapping.get("customers"),
                               encoding=encoding)
            known_ids = table["customer_id"]
            if spec is not None:
                lines += check_spec_columns(spec, table, source=str(customers))
            lines.append(f"{customers}: {len(table):,} customers, segments "
                         f"{', '.join(map(str, sorted(table['segment'].dropna().unique())))}")
    if events is not None:
        with checking():
            table = load_table(events, EVENTS, rename=mapping.get("events"), encoding=encoding)
            if known_ids is not None:
                check_join(table["customer_id"], known_ids, what="events", source=str(events),
                           reference=str(customers), min_share=MIN_EVENT_MATCH)
            lines.append(f"{events}: {len(table):,} events from {table['ts'].min()} to "
                         f"{table['ts'].max()}")
    if campaign_log is not None:
        with checking():
            table = load_table(campaign_log, CAMPAIGN_LOG, rename=mapping.get("campaign_log"),
                               encoding=encoding)
            notes = check_arms(table["arm"], spec.offer_names, source=str(campaign_log)) \
                if spec is not None else []
            lines += notes
            if known_ids is not None:
                check_join(table["customer_id"], known_ids, what="campaign rows",
                           source=str(campaign_log), reference=str(customers), min_share=1.0)
            arms = table["arm"].value_counts().sort_index()
            lines.append(f"{campaign_log}: {len(table):,} rows, arms "
                         + ", ".join(f"{a} {n:,}" for a, n in arms.items()))
    if spec is not None and spec.do_not_contact is not None and known_ids is not None:
        with checking():
            listed = io.read_table(spec.do_not_contact, allow_empty=True)
            matched = 0
            if len(listed):
                entries = validate(listed, DO_NOT_CONTACT, source=str(spec.do_not_contact))
                matched = check_join(entries["customer_id"], known_ids,
                                     what="do-not-contact entries",
                                     source=str(spec.do_not_contact),
                                     reference=str(customers), min_share=0.0).matched
            lines.append(f"{spec.do_not_contact}: {len(listed):,} do-not-contact entries, "
                         f"{matched:,} matching a customer")
    if outcomes is not None:
        with checking():
            table = load_table(outcomes, OUTCOMES, rename=mapping.get("outcomes"),
                               encoding=encoding)
            if known_ids is not None:
                check_join(table["customer_id"], known_ids, what="outcome rows",
                           source=str(outcomes), reference=str(customers), min_share=1.0)
            lines.append(f"{outcomes}: {len(table):,} rows")
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise InputError(f"{len(failures)} inputs with problems (every input was checked):\n"
                         + "\n".join(map(str, failures)))
    lines.append("all inputs meet their contracts")
    return lines
