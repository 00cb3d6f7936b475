"""Data contracts: every problem reported at once, with column and rows named."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift.errors import SchemaError
from uplift.schema import CAMPAIGN_LOG, CUSTOMERS, EVENTS, validate


def customers(**overrides):
    data = {
        "customer_id": [1, 2, 3],
        "segment": ["silent", "young_retail", "silent"],
        "open_date": ["2020-01-01", "2021-05-03", "2019-07-30"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_valid_table_gets_canonical_types():
    out = validate(customers(), CUSTOMERS, source="c.csv")
    assert str(out["open_date"].dtype).startswith("datetime64")
    assert out["customer_id"].tolist() == ["1", "2", "3"]   # canonical text (uplift.ids)


def test_missing_column_is_named_with_the_columns_present():
    frame = customers().drop(columns="customer_id")
    with pytest.raises(SchemaError) as err:
        validate(frame, CUSTOMERS, source="c.csv")
    text = str(err.value)
    assert "c.csv" in text and "missing required column 'customer_id'" in text
    assert "segment" in text


def test_all_problems_are_reported_together_with_rows():
    frame = customers(customer_id=[1, 1, 3], open_date=["2020-01-01", "yesterday", "31/12/2020"])
    with pytest.raises(SchemaError) as err:
        validate(frame, CUSTOMERS, source="c.csv")
    assert len(err.value.problems) == 2
    text = str(err.value)
    assert "unparseable dates" in text and "rows 2, 3" in text
    assert "duplicate customer_id" in text and "rows 1, 2" in text


def test_column_names_are_configurable():
    frame = customers().rename(columns={"customer_id": "cust_no", "segment": "seg"})
    out = validate(frame, CUSTOMERS, source="c.csv",
                   rename={"customer_id": "cust_no", "segment": "seg"})
    assert {"customer_id", "segment"} <= set(out.columns)


def test_dates_out_of_order_are_rejected():
    frame = customers(close_date=["2019-01-01", None, None])
    with pytest.raises(SchemaError, match="close_date before open_date in row 1"):
        validate(frame, CUSTOMERS, source="c.csv")


def test_events_reject_text_amounts_infinities_and_negative_money():
    frame = pd.DataFrame({
        "customer_id": [1, 1, 2, 2],
        "ts": ["2025-01-01T10:00:00", "2025-01-02", "2025-01-03", "2025-01-04"],
        "event_type": ["deposit", "login", "withdrawal", "deposit"],
        "amount": ["10.5", "abc", "-3", "inf"],
        "channel": ["app", "app", "atm", "branch"],
    })
    with pytest.raises(SchemaError) as err:
        validate(frame, EVENTS, source="e.csv")
    text = str(err.value)
    assert "'abc'" in text and "row 2" in text
    assert "infinite values in row 4" in text
    assert ">= 0.0" in text and "row 3" in text


def test_unknown_event_types_warn_instead_of_failing():
    frame = pd.DataFrame({
        "customer_id": [1, 1], "ts": ["2025-01-01"] * 2, "event_type": ["atm_fee", "login"],
        "amount": [1.0, 0.0], "channel": ["atm", "app"],
    })
    with pytest.warns(UserWarning, match="atm_fee"):
        validate(frame, EVENTS, source="e.csv")
    with pytest.raises(SchemaError, match="100% of events have types outside"), \
            pytest.warns(UserWarning):
        validate(frame.iloc[:1], EVENTS, source="e.csv")


def test_campaign_log_needs_control_and_valid_propensity():
    frame = pd.DataFrame({
        "customer_id": [1, 2], "campaign_id": ["c1", "c1"], "arm": ["coupon", "coupon"],
        "assigned_at": ["2025-01-01", "2025-01-01"], "propensity": [0.5, 1.5],
        "churned": [0, 2], "value_after": [1.0, 2.0],
    })
    with pytest.raises(SchemaError) as err:
        validate(frame, CAMPAIGN_LOG, source="log.csv")
    text = str(err.value)
    assert "no 'control' rows" in text
    assert "propensity" in text and "<= 1.0" in text
    assert "expected 0 or 1" in text


@pytest.mark.parametrize(("written", "read"), [
    (["J", "n", "N"], [1, 0, 0]), (["yes", "no", "No"], [1, 0, 0]),
    (["true", "FALSE", "0"], [1, 0, 0]), ([1, 0, 0], [1, 0, 0])])
def test_a_0_1_column_reads_the_flag_spellings_of_the_customers_table(written, read):
    """churned written J/N or yes/no is read like 0/1 (the flags' vocabulary), by validate
    and by training alike; a blank or another word is refused with its rows."""
    frame = pd.DataFrame({
        "customer_id": [1, 2, 3], "campaign_id": "c1", "arm": ["coupon", "control", "control"],
        "assigned_at": "2025-01-01", "propensity": 0.5, "churned": written,
        "value_after": 1.0})
    assert validate(frame, CAMPAIGN_LOG, source="log.csv")["churned"].tolist() == read
    for bad, where in (("", "missing values in row 2"), ("maybe", "'maybe'")):
        broken = frame.assign(churned=[written[0], bad, written[2]])
        with pytest.raises(SchemaError, match=rf"column 'churned': .*{where}"):
            validate(broken, CAMPAIGN_LOG, source="log.csv")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
def test_duplicates_reported_exactly_when_present(ids):
    frame = pd.DataFrame({"customer_id": ids, "segment": "silent", "open_date": "2020-01-01"})
    has_duplicates = len(set(ids)) < len(ids)
    if has_duplicates:
        with pytest.raises(SchemaError, match="duplicate customer_id"):
            validate(frame, CUSTOMERS, source="c.csv")
    else:
        assert len(validate(frame, CUSTOMERS, source="c.csv")) == len(ids)
