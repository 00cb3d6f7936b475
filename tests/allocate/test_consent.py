"""Consent and contact rules are absolute: no plan, under any budget or constraint set, holds
a customer without consent, flagged do-not-contact, on the do-not-contact list, or over the
contact limit (neither as treated nor as holdout) — with raw ids or pseudonyms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from uplift.allocate import allocate
from uplift.campaign import CampaignSpec
from uplift.errors import InfeasibleError
from uplift.security.pseudonym import protect_ids
from uplift.tasks.allocation import read_do_not_contact

OFFERS = ["coupon", "waiver", "visit"]
KEY = b"p" * 32
AS_OF = pd.Timestamp("2026-01-01")


@st.composite
def cases(draw):
    n = draw(st.integers(5, 120))
    rng = np.random.default_rng(draw(st.integers(0, 10**6)))
    ids = rng.choice(np.arange(10_000_000, 10_100_000), n, replace=False)
    scores = pd.DataFrame({
        "customer_id": ids, "segment": rng.choice(["a", "b", "c"], n),
        "marketing_consent": rng.choice(["yes", "no", "1", "0", "true", "", None], n),
        "do_not_contact": rng.choice([0, 1, 0, 0], n)})
    scores.loc[0, "segment"] = "a"
    for k, offer in enumerate(OFFERS):
        scores[f"gain_{offer}"] = rng.normal(3 * (k + 1), 10, n)
        scores[f"gain_lo_{offer}"] = scores[f"gain_{offer}"] - rng.uniform(0, 10, n)
        scores[f"cost_{offer}"] = rng.uniform(0.1, 30, n)
    listed = ids[rng.random(n) < draw(st.floats(0, 0.4))]
    contacts = pd.DataFrame({"customer_id": rng.choice(ids, 2 * n),
                             "contacted_at": AS_OF - pd.to_timedelta(
                                 rng.integers(1, 120, 2 * n), unit="D")})
    spec = {
        "name": "p", "holdout_fraction": draw(st.sampled_from([0.0, 0.1, 0.5])),
        "require_consent": True,
        "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in OFFERS],
        "contact_limit": {"max_contacts": draw(st.integers(1, 3)),
                          "window_days": draw(st.integers(10, 90))},
        "capacities": [{"offer": "visit", "max_count": draw(st.integers(0, n))}],
        "segment_quotas": [{"segment": "a", "max_budget_share": draw(st.floats(0.1, 1.0))}],
        "min_roi": {"waiver": draw(st.floats(-1, 2))},
    }
    return (scores, listed, contacts, spec, draw(st.floats(1, 3000)),
            draw(st.booleans()), draw(st.sampled_from(["auto", "exact", "lagrangian"])),
            draw(st.booleans()))


def blocked_ids(scores, listed, contacts, spec) -> set[str]:
    consent = scores["marketing_consent"].isin(["yes", "1", "true"])
    window = contacts[contacts["contacted_at"] >= AS_OF - pd.Timedelta(
        days=spec["contact_limit"]["window_days"])]
    over = window["customer_id"].value_counts()
    over = set(over[over >= spec["contact_limit"]["max_contacts"]].index.astype(str))
    bad = scores.loc[~consent | (scores["do_not_contact"] == 1), "customer_id"].astype(str)
    return set(bad) | set(listed.astype(str)) | over


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(case=cases())
def test_no_plan_ever_contains_a_blocked_customer(tmp_path_factory, case):
    scores, listed, contacts, raw_spec, budget, confident, solver, pseudonymised = case
    folder = tmp_path_factory.mktemp("dnc")
    pd.DataFrame({"customer_id": listed}).to_csv(folder / "dnc.csv", index=False)
    spec = CampaignSpec.model_validate({**raw_spec, "do_not_contact": str(folder / "dnc.csv")})
    blocked = blocked_ids(scores, listed, contacts, raw_spec)
    given_scores = scores
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("UPLIFT_PSEUDONYM_KEY", raising=False)
        if pseudonymised:           # scores carry pseudonyms, the list and history raw ids
            patch.setenv("UPLIFT_PSEUDONYM_KEY", KEY.hex())
            given_scores = protect_ids(scores, key=KEY)
            blocked = set(protect_ids(pd.DataFrame({"customer_id": sorted(blocked)}),
                                      key=KEY)["customer_id"]) if blocked else set()
        try:
            result = allocate(given_scores, spec, budget=budget, confident=confident,
                              solver=solver, contacts=contacts, as_of=AS_OF, seed=1,
                              do_not_contact=read_do_not_contact(spec))
        except InfeasibleError:
            event("infeasible constraint set")
            return
    planned = set(result.plan["customer_id"].astype(str))
    event(f"plan rows > 0: {len(planned) > 0}")
    assert not planned & blocked
    assert result.summary["spend"] <= budget + 1e-6


YES = ["X", "x", "J", "ja", "1", "TRUE", "y", "on", "Yes"]
NO = ["", "0", "n", "nein", "false", "off", None]
UNKNOWN = ["DNC", "2", "?", "maybe"]


def id_column(ids: np.ndarray, fmt: str) -> pd.Series:
    """The same customers written the way one export or another writes them."""
    if fmt == "int":
        return pd.Series(ids)
    if fmt == "float":
        return pd.Series(ids.astype(float))
    if fmt == "padded":
        return pd.Series([f"{i:012d}" for i in ids])
    return pd.Series([f"C-{i}" for i in ids])                    # alphanumeric


@st.composite
def shaped_cases(draw):
    n = draw(st.integers(1, 50))
    rng = np.random.default_rng(draw(st.integers(0, 10**6)))
    ids = rng.choice(np.arange(10_000, 99_999), n, replace=False)
    scores_fmt = draw(st.sampled_from(["int", "float", "padded", "alnum"]))
    list_fmt = draw(st.sampled_from([scores_fmt, scores_fmt, "int", "float", "padded"]))
    flag_unknown = draw(st.booleans()) and draw(st.booleans())
    dnc = rng.choice(YES + NO, n).astype(object)
    consent = rng.choice(YES + NO, n).astype(object)
    if flag_unknown:
        column = draw(st.sampled_from(["dnc", "consent"]))
        (dnc if column == "dnc" else consent)[rng.integers(n)] = draw(st.sampled_from(UNKNOWN))
    scores = pd.DataFrame({"customer_id": id_column(ids, scores_fmt), "segment": "a",
                           "marketing_consent": consent, "do_not_contact": dnc})
    for offer in OFFERS:
        scores[f"gain_{offer}"] = rng.uniform(1, 20, n)           # everyone worth contacting
        scores[f"cost_{offer}"] = 1.0
    listed = ids[rng.random(n) < draw(st.floats(0, 0.5))]
    return scores, ids, listed, list_fmt, draw(st.sampled_from(["csv", "parquet"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=shaped_cases())
def test_no_id_or_flag_format_lets_a_blocked_customer_through(tmp_path_factory, case):
    """Whatever the id format of the scores and of the list, and whatever flag spelling: either
    the run is refused with a data error, or nobody blocked (by canonical id) is planned."""
    from uplift.errors import SchemaError
    from uplift.ids import canonical_ids

    scores, ids, listed, list_fmt, file_fmt = case
    folder = tmp_path_factory.mktemp("shaped")
    path = folder / f"dnc.{file_fmt}"
    entries = pd.DataFrame({"customer_id": id_column(listed, list_fmt)})
    entries.to_csv(path, index=False) if file_fmt == "csv" else entries.to_parquet(path)
    spec = CampaignSpec.model_validate({
        "name": "s", "holdout_fraction": 0.0, "require_consent": True,
        "do_not_contact": str(path),
        "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in OFFERS]})
    text = scores["do_not_contact"].astype("string").str.strip().str.lower()
    flagged = text.isin([v.lower() for v in YES]).to_numpy()
    consent_text = scores["marketing_consent"].astype("string").str.strip().str.lower()
    consented = consent_text.isin([v.lower() for v in YES]).to_numpy(dtype=bool,
                                                                      na_value=False)
    canonical = canonical_ids(scores["customer_id"])
    on_list = canonical.isin(set(canonical_ids(entries["customer_id"]))).to_numpy()
    blocked = set(canonical[flagged | ~consented | on_list])
    try:
        result = allocate(scores, spec, budget=10_000.0, seed=1,
                          do_not_contact=read_do_not_contact(spec))
    except SchemaError:
        event("refused")
        return
    event("planned")
    planned = set(canonical_ids(result.plan["customer_id"]))
    assert not planned & blocked
    # a list written in another format than the scores never silently matches nothing
    if len(listed) and not on_list.any():
        pytest.fail("a do-not-contact list that matches no customer was accepted")


def test_a_named_list_that_was_not_loaded_is_refused(tmp_path):
    """The allocator never reads files; a spec naming a list that nobody loaded is refused,
    never planned as if the list were empty."""
    path = tmp_path / "dnc.csv"
    pd.DataFrame({"customer_id": ["1"]}).to_csv(path, index=False)
    spec = CampaignSpec.model_validate({
        "name": "s", "holdout_fraction": 0.0, "require_consent": False,
        "do_not_contact": str(path),
        "offers": [{"name": "a", "channel": "email", "cost": {"fixed": 1.0}}]})
    scores = pd.DataFrame({"customer_id": ["1", "2"], "gain_a": [5.0, 5.0],
                           "cost_a": [1.0, 1.0]})
    from uplift.errors import InputError

    with pytest.raises(InputError, match="not loaded"):
        allocate(scores, spec, budget=10.0)
    result = allocate(scores, spec, budget=10.0, do_not_contact=read_do_not_contact(spec))
    assert list(result.plan["customer_id"]) == ["2"]
