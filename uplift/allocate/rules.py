"""The campaign's absolute rules, applied before any optimisation: budget check,
do-not-contact (the spec's list, loaded by the caller, and/or a column), marketing consent,
contact limit (with a contact history), eligibility expressions, minimum ROI per offer and,
when asked, confident effects only. A customer excluded here can never be in a plan."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from uplift.campaign import CampaignSpec, eligible
from uplift.errors import InputError, SchemaError
from uplift.ids import canonical_ids, check_join
from uplift.schema import (
    DO_NOT_CONTACT,
    MAX_ABS_VALUE,
    DataWarning,
    parse_date_column,
    parse_flags,
    validate,
)
from uplift.security.pseudonym import is_pseudonym, protect_ids

CONSENT_MISSING = ("missing column 'marketing_consent': the campaign requires consent "
                   "(set require_consent: false in the spec only if consent is handled "
                   "upstream)")


def check_budget(budget: float | None) -> None:
    """A budget is a positive, finite amount below 10^15 (currency); anything else is refused."""
    if budget is None or not budget > 0:
        raise InputError(f"the budget must be a positive amount (got {budget}); give the "
                         "campaign's budget")
    if not np.isfinite(budget) or budget > MAX_ABS_VALUE:
        raise InputError(f"the budget {budget:g} is not a plausible amount (at most "
                         f"{MAX_ABS_VALUE:g}); give the campaign's real budget")


def excluded_customers(
    scores: pd.DataFrame, spec: CampaignSpec, *, contacts: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None, do_not_contact: pd.DataFrame | None = None,
    source: str = "scores",
) -> tuple[np.ndarray, dict[str, int]]:
    """Customers no offer may reach (absolute rules) and the count per reason.
    ``do_not_contact``: the spec's list, loaded (required when the spec names one)."""
    n = len(scores)
    blocked = np.zeros(n, dtype=bool)
    reasons: dict[str, int] = {}
    customer_ids = canonical_ids(scores["customer_id"])
    if spec.do_not_contact is not None:
        if do_not_contact is None:
            raise InputError(f"campaign {spec.name!r} names the do-not-contact list "
                             f"{spec.do_not_contact}, but it was not loaded; pass it (read by "
                             "uplift.tasks.allocation.read_do_not_contact)")
        dnc_source = do_not_contact.attrs.get("source", str(spec.do_not_contact))
        if "customer_id" not in do_not_contact.columns:
            raise SchemaError(dnc_source, ["missing required column 'customer_id'"])
        listed = checked_do_not_contact(do_not_contact, scores, dnc_source, source,
                                        customer_ids)
        hit = customer_ids.isin(listed).to_numpy(dtype=bool, na_value=False)
        reasons["do-not-contact list"] = int(hit.sum())
        blocked |= hit
    if "do_not_contact" in scores.columns:
        # the bank convention: a marker (X, J, 1, yes...) flags, blank means not flagged
        hit = parse_flags(scores["do_not_contact"], "do_not_contact", source, blank=False)
        reasons["do-not-contact flag"] = int((hit & ~blocked).sum())
        blocked |= hit
    if spec.require_consent:
        if "marketing_consent" not in scores.columns:
            raise SchemaError(source, [CONSENT_MISSING])
        consent = parse_flags(scores["marketing_consent"], "marketing_consent", source,
                              blank=False)
        reasons["no marketing consent"] = int((~consent & ~blocked).sum())
        blocked |= ~consent
    if spec.contact_limit is not None and contacts is not None:
        if as_of is None:
            raise InputError("a contact history needs the planning date (as_of) to apply the "
                             "contact limit")
        history = getattr(contacts, "attrs", {}).get("source", "contact history")
        when = parse_date_column(contacts["contacted_at"], "contacted_at", history)
        contacted_ids = same_ids(contacts, scores, history, source)
        if len(contacted_ids):
            check_join(contacted_ids, customer_ids, what="contact-history rows",
                       source=history, reference=source, min_share=0.0,
                       refuse_diagnosed=True)
        # a contact of unknown date counts as recent: an unknown never allows a contact
        in_window = (when.isna() | ((when < as_of) & (when >= as_of - pd.Timedelta(
            days=spec.contact_limit.window_days)))).to_numpy(dtype=bool, na_value=True)
        window = pd.DataFrame({"customer_id": contacted_ids.to_numpy()[in_window]})
        counts = window.groupby("customer_id").size()
        recent = customer_ids.map(counts).fillna(0).to_numpy(dtype=float)
        hit = recent >= spec.contact_limit.max_contacts
        reasons["contact limit reached"] = int((hit & ~blocked).sum())
        blocked |= hit
    return blocked, reasons


def checked_do_not_contact(listed: pd.DataFrame, customers: pd.DataFrame, list_source: str,
                           customers_source: str,
                           customer_ids: pd.Series | None = None) -> pd.Series:
    """The do-not-contact list's ids in the customers' id space (:func:`same_ids`), checked:
    unmatched entries are counted in a warning; a list of which none match, or whose ids
    differ from the customers' by zero padding or pseudonyms, is refused (a contact rule is
    never applied to ids written another way)."""
    ids = same_ids(listed, customers, list_source, customers_source)
    if len(ids):
        known = customer_ids if customer_ids is not None else canonical_ids(
            customers["customer_id"])
        check_join(ids, known, what="do-not-contact entries", source=list_source,
                   reference=customers_source, min_share=0.0, refuse_diagnosed=True)
    return ids


def allowed_matrix(
    scores: pd.DataFrame, spec: CampaignSpec, gains: np.ndarray, costs: np.ndarray,
    blocked: np.ndarray, *, lower: np.ndarray | None, source: str,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which (customer, offer) pairs may be chosen; ``lower`` = gain lower bounds when only
    confident effects may be acted on."""
    allowed = np.ones(gains.shape, dtype=bool) & ~blocked[:, None]
    counts: dict[str, int] = {}
    for k, offer in enumerate(spec.offers):
        ok = eligible(scores, offer, source=source)
        if offer.eligibility is not None and len(ok) and not ok.any():
            warnings.warn(f"{source}: offer {offer.name!r}: eligibility {offer.eligibility!r} "
                          "matches no customer (a typo in a value?); the offer is not used",
                          DataWarning, stacklevel=2)
        counts[f"not eligible for {offer.name}"] = int((~ok & ~blocked).sum())
        allowed[:, k] &= ok
        floor = spec.min_roi.get(offer.name)
        if floor is not None:
            roi = np.divide(gains[:, k], costs[:, k], out=np.full(len(gains), np.inf),
                            where=costs[:, k] > 0)
            low = roi < floor
            counts[f"ROI below {floor} for {offer.name}"] = int((low & allowed[:, k]).sum())
            allowed[:, k] &= ~low
    if lower is not None:
        unsure = (lower <= 0) & allowed & (gains > 0)
        counts["effect not confident (gain lower bound <= 0)"] = int(unsure.any(axis=1).sum())
        allowed &= lower > 0
    return allowed, counts


def same_ids(listed: pd.DataFrame, scores: pd.DataFrame, list_source: str,
             scores_source: str) -> pd.Series:
    """The ``customer_id`` of a side table (do-not-contact list, contact history) as canonical
    text (:mod:`uplift.ids`) in the same id space as ``scores``: pseudonymised with the
    configured key when the scores carry pseudonyms. A list that cannot be matched is an error,
    never silently ignored."""
    if not len(listed):
        return pd.Series([], dtype="string")
    ids = validate(listed[["customer_id"]], DO_NOT_CONTACT, source=list_source)
    scores_pseudo = is_pseudonym(scores["customer_id"]).all()
    ids = protect_ids(ids, source=list_source) if scores_pseudo else ids
    if scores_pseudo and not is_pseudonym(ids["customer_id"]).all():
        raise InputError(f"{list_source}: holds raw customer ids but {scores_source} carries "
                         "pseudonyms; configure the pseudonym key (UPLIFT_PSEUDONYM_KEY_FILE) "
                         "so the list can be applied")
    return ids["customer_id"].reset_index(drop=True)
