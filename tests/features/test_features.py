"""Feature table: registry, point-in-time correctness, hand-computed values, bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uplift.cli import run
from uplift.errors import InputError, SchemaError
from uplift.features import FEATURES, FeatureInputs, build_features, registry_frame
from uplift.features.registry import DAYS_CAP, FAMILIES
from uplift.schema import EVENT_TYPES, PAGES, TOPICS

AS_OF = "2025-06-01"


def write_bank(folder: Path, events: list[tuple], customers: list[tuple] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    customers = customers or [(1, "silent", "2020-01-01", 1000.0), (2, "young_retail",
                                                                    "2024-01-01", 0.0)]
    pd.DataFrame(customers, columns=["customer_id", "segment", "open_date", "aum"]).assign(
        open_date=lambda d: pd.to_datetime(d["open_date"])).to_parquet(
        folder / "customers.parquet")
    frame = pd.DataFrame(events, columns=["customer_id", "ts", "event_type", "amount", "channel",
                                          "page", "topic"])
    frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")
    frame.to_parquet(folder / "events.parquet")
    return folder


HAND_LOG = [
    (1, "2025-05-31 09:00", "deposit", 500.0, "app", None, None),          # age 1
    (1, "2025-05-20 10:00", "card_spend", 40.0, "pos", None, None),        # age 12
    (1, "2025-05-20 18:00", "card_spend", 60.0, "pos", None, None),        # age 12
    (1, "2025-04-15 10:00", "transfer_out_competitor", 300.0, "app", None, None),  # age 47
    (1, "2025-03-01 10:00", "withdrawal", 100.0, "atm", None, None),       # age 92
    (1, "2025-05-30 08:00", "login", 0.0, "app", None, None),              # age 2
    (1, "2025-05-29 08:00", "page_view", 0.0, "web", "account_closing", None),  # age 3
    (1, "2025-05-10 08:00", "complaint", 0.0, "phone", None, "fees"),      # age 22
    (1, "2025-06-01 00:00", "deposit", 9999.0, "app", None, None),         # on the as-of date
    (2, "2024-02-01 10:00", "login", 0.0, "app", None, None),              # age 486
]


@pytest.fixture()
def hand_features(tmp_path):
    data = write_bank(tmp_path / "bank", HAND_LOG)
    frame = build_features(FeatureInputs.from_folder(data), AS_OF)
    return by_number(frame)


def by_number(frame: pd.DataFrame) -> pd.DataFrame:
    """Features indexed by the integer id (the product returns ids as canonical text)."""
    return frame.assign(customer_id=frame["customer_id"].astype(int)).set_index("customer_id")


def test_registry_has_at_least_160_documented_features():
    reg = registry_frame()
    assert len(reg) >= 160
    assert reg["name"].is_unique
    assert set(reg["family"]) == set(FAMILIES)
    assert (reg["description"].str.len() > 10).all()


def test_hand_computed_values(hand_features):
    one = hand_features.loc[1]
    assert one["txn_deposit_count_7d"] == 1 and one["txn_deposit_amount_7d"] == 500
    assert one["txn_card_spend_count_30d"] == 2 and one["txn_card_spend_amount_30d"] == 100
    assert one["txn_card_spend_count_7d"] == 0
    assert one["txn_net_flow_30d"] == 500 - 100
    assert one["txn_net_flow_90d"] == 500 - 100 - 300
    assert one["txn_net_flow_365d"] == 500 - 100 - 300 - 100
    assert one["txn_competitor_share_90d"] == pytest.approx(300 / 400)
    assert one["txn_days_since_last"] == 1
    assert one["txn_active_days_30d"] == 2
    assert one["txn_avg_card_ticket_90d"] == 50
    assert one["bal_level"] == 1000 + 0
    assert one["beh_days_since_login"] == 2
    assert one["beh_page_account_closing_30d"] == 1
    assert one["beh_exit_page_share_30d"] == 1
    assert one["int_complaints_30d"] == 1 and one["int_complaints_fees_365d"] == 1
    assert one["int_days_since_complaint"] == 22
    assert one["txn_card_spend_amount_trend_mom"] == pytest.approx(np.log(101))
    assert one["cust_aum"] == 1000 and one["open_at_as_of"] == 1


def test_customer_without_recent_events_gets_documented_neutral_values(hand_features):
    two = hand_features.loc[2]
    assert two["txn_days_since_last"] == DAYS_CAP
    assert two["beh_days_since_login"] == 486
    assert two["beh_logins_365d"] == 0
    assert two["txn_net_flow_30d"] == 0 and two["txn_competitor_share_30d"] == 0
    assert two["ext_data_present"] == 0 and two["int_past_offers"] == 0
    assert not hand_features.isna().any().any()
    assert hand_features.shape[1] == len(FEATURES) + 2  # + as_of, open_at_as_of


event_strategy = st.tuples(
    st.sampled_from([1, 2]),
    st.integers(min_value=0, max_value=400 * 24 * 60),   # minutes after the as-of date
    st.sampled_from(EVENT_TYPES),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from(["app", "web", "pos", "branch"]),
    st.sampled_from([*PAGES, None]),
    st.sampled_from([*TOPICS, None]),
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(event_strategy, min_size=1, max_size=25))
def test_events_after_the_as_of_date_change_nothing(tmp_path_factory, hand_features, future):
    late = [(c, str(pd.Timestamp(AS_OF) + pd.Timedelta(minutes=m)), t, a, ch, p, tp)
            for c, m, t, a, ch, p, tp in future]
    data = write_bank(tmp_path_factory.mktemp("leak") / "bank", HAND_LOG + late)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = by_number(build_features(FeatureInputs.from_folder(data), AS_OF))
    pd.testing.assert_frame_equal(hand_features, after)


CHANNELS = ["app", "web", "branch", "phone", "atm", "pos", "email"]   # the schema's vocabulary
WIDE_CUSTOMERS = [(1, "silent", "2020-01-01", 1000.0), (2, "young_retail", "2024-01-01", 0.0),
                  (3, "private_banking", "2010-05-05", 2.5e6),
                  (4, "mass_affluent", "2019-03-01", 80000.0),
                  (5, "young_retail", "2025-05-30", 10.0),          # opened two days before
                  (6, "silent", "2025-06-01", 0.0)]                 # opens on the as-of date
WIDE_LOG = HAND_LOG + [
    (3, "2025-05-02 11:00", "deposit", 120000.0, "branch", None, None),
    (3, "2025-04-11 09:30", "product_buy", 50000.0, "phone", None, None),
    (4, "2025-05-31 23:59", "login", 0.0, "email", None, None),
    (4, "2024-12-24 12:00", "withdrawal", 700.0, "atm", None, None),
    (5, "2025-05-31 08:00", "page_view", 0.0, "web", "transfer_limit", None),
]


@pytest.fixture(scope="module")
def wide_features(tmp_path_factory):
    data = write_bank(tmp_path_factory.mktemp("wide") / "bank", WIDE_LOG, WIDE_CUSTOMERS)
    return by_number(build_features(FeatureInputs.from_folder(data), AS_OF))


wide_event = st.tuples(
    st.sampled_from([c[0] for c in WIDE_CUSTOMERS]),
    st.integers(min_value=0, max_value=400 * 24 * 60),   # minutes after the as-of date
    st.sampled_from(EVENT_TYPES),
    st.floats(min_value=0, max_value=1e7, allow_nan=False),
    st.sampled_from(CHANNELS),
    st.sampled_from([*PAGES, None]),
    st.sampled_from([*TOPICS, None]),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(wide_event, min_size=1, max_size=60))
def test_no_feature_of_any_customer_or_channel_sees_past_the_as_of_date(
        tmp_path_factory, wide_features, future):
    """Six customers (one opened two days before, one on the as-of date), every channel of
    the vocabulary, up to 60 events after the date: no feature changes."""
    late = [(c, str(pd.Timestamp(AS_OF) + pd.Timedelta(minutes=m)), t, a, ch, p, tp)
            for c, m, t, a, ch, p, tp in future]
    data = write_bank(tmp_path_factory.mktemp("leak") / "bank", WIDE_LOG + late,
                      WIDE_CUSTOMERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after = by_number(build_features(FeatureInputs.from_folder(data), AS_OF))
    pd.testing.assert_frame_equal(wide_features, after)


def test_unknown_event_types_and_customers_are_reported(tmp_path):
    data = write_bank(tmp_path / "bank", HAND_LOG + [
        (1, "2025-05-01", "atm_fee", 2.0, "atm", None, None),
        (1, "2025-05-02", "atm_fee", 2.0, "atm", None, None),
        (99, "2025-05-02", "login", 0.0, "app", None, None),
    ] + [(2, "2025-05-03", "login", 0.0, "app", None, None)] * 100)
    with pytest.warns(UserWarning) as caught:
        frame = build_features(FeatureInputs.from_folder(data), AS_OF)
    messages = " | ".join(str(w.message) for w in caught)
    assert "'atm_fee' x2" in messages
    assert "1 of 113 events (0.9%) name customers not in" in messages and "'99'" in messages
    assert sorted(frame["customer_id"]) == ["1", "2"]


def test_events_mostly_of_unknown_customers_are_refused(tmp_path):
    data = write_bank(tmp_path / "bank", HAND_LOG + [
        (99, "2025-05-02", "login", 0.0, "app", None, None)])
    with pytest.raises(SchemaError, match=r"1 of 11 events .* name customers not in"):
        build_features(FeatureInputs.from_folder(data), AS_OF)


@pytest.mark.parametrize(("column", "written", "meant"), [
    ("page", "Account_Closing", "account_closing"),
    ("page", "account closing", "account_closing"),
    ("topic", " Fees", "fees"),
    ("channel", "APP", "app"),
    ("event_type", "Page-View", "page_view"),
])
def test_a_vocabulary_word_in_other_case_is_refused_naming_rows(tmp_path, column, written,
                                                                 meant):
    """'Account_Closing' would match no feature (they compare exact text): refused, naming
    the column, the value, the word meant and the rows, by the features and by validate."""
    from uplift.validation import validate_inputs

    data = write_bank(tmp_path / "bank", HAND_LOG)
    events = pd.read_parquet(data / "events.parquet").astype({"ts": str})
    original = events[column].copy()
    events.loc[[3, 6], column] = written
    events.to_csv(data / "events.csv", index=False)
    (data / "events.parquet").unlink()
    # (validate's reader trims outer spaces before the check)
    pattern = rf"column '{column}': ' ?{re.escape(written.strip())}'.*write '{meant}'.*rows 4, 7"
    with pytest.raises(SchemaError, match=pattern):
        build_features(FeatureInputs.from_folder(data), AS_OF)
    with pytest.raises(SchemaError, match=pattern):
        validate_inputs(events=data / "events.csv")
    events[column] = original                        # the exact words pass
    events.to_csv(data / "events.csv", index=False)
    build_features(FeatureInputs.from_folder(data), AS_OF)


def test_unparseable_timestamps_name_the_rows(tmp_path):
    data = write_bank(tmp_path / "bank", HAND_LOG)
    events = pd.read_parquet(data / "events.parquet").astype({"ts": str})
    events.loc[[2, 5], "ts"] = "31/05/2025 bad"
    events.to_csv(data / "events.csv", index=False)
    (data / "events.parquet").unlink()
    with pytest.raises(SchemaError, match=r"column 'ts'.*rows 3, 6"):
        build_features(FeatureInputs.from_folder(data), AS_OF)


def test_as_of_outside_the_data_is_exit_2_and_writes_nothing(tmp_path, capsys):
    data = write_bank(tmp_path / "bank", HAND_LOG)
    out = tmp_path / "f.parquet"
    assert run(["features", "--data", str(data), "--as-of", "2030-01-01", "--out",
                str(out)]) == 2
    assert "outside the data range" in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".f") for p in tmp_path.iterdir())
    with pytest.raises(InputError):
        build_features(FeatureInputs.from_folder(data), "2020-01-01")


def test_cli_writes_features_registry_and_manifest(small_bank_dir, tmp_path):
    out = tmp_path / "features.parquet"
    assert run(["--quiet", "features", "--data", str(small_bank_dir), "--as-of", "2025-12-01",
                "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    assert len(frame) == len(customers) and frame["customer_id"].is_unique
    assert not frame.isna().any().any()
    assert len(pd.read_csv(tmp_path / "features.parquet.registry.csv")) == len(FEATURES)
    assert (tmp_path / "features.parquet.manifest.json").exists()


def test_features_separate_churners_from_stayers(small_bank_dir):
    frame = build_features(FeatureInputs.from_folder(small_bank_dir), "2026-01-01")
    log = pd.read_parquet(small_bank_dir / "campaign_log.parquet")
    joined = log.astype({"customer_id": str}).merge(frame, on="customer_id")
    churn = joined.groupby("churned")[["beh_page_account_closing_30d", "beh_logins_30d"]].mean()
    assert churn.loc[1, "beh_page_account_closing_30d"] > 3 * churn.loc[0,
                                                                        "beh_page_account_closing_30d"]


@pytest.mark.parametrize("written", ["2025-05-31T23:30:00", "2025-06-01T01:30:00+02:00",
                                     "2025-05-31T23:30:00Z"])
def test_event_times_with_an_offset_are_read_in_utc(tmp_path, written):
    """The events contract's times are UTC: an offset is applied, not dropped (01:30 at +02:00
    is 23:30 the day before, a night transfer of that day is not one), as the service reads
    posted events."""
    from uplift.service.events import _ts

    (tmp_path / "customers.csv").write_text(
        "customer_id,segment,open_date\n1,mass,2020-01-01\n2,mass,2020-01-01\n")
    (tmp_path / "events.csv").write_text(
        "customer_id,ts,event_type,amount,channel,page,topic\n"
        f"1,{written},transfer_out,100,app,,\n2,2025-05-30T10:00:00,deposit,5,app,,\n")
    features = build_features(FeatureInputs.from_folder(tmp_path), "2025-06-01")
    one = features.set_index("customer_id").loc["1"]
    assert one["txn_transfer_out_count_7d"] == 1              # 2025-05-31 23:30 UTC: counted
    assert one["txn_night_transfers_7d"] == 0                 # 23:30 is not night
    assert one["txn_days_since_last"] == 1
    assert _ts(written) == pd.Timestamp("2025-05-31T23:30:00").to_pydatetime()


def test_inputs_restricted_to_a_sample_compute_its_rows_alike(small_bank_dir):
    """A training sample's features equal the whole bank's for those customers, but for the
    RFM quintiles (ranked within the sample); the checks still cover every event."""
    inputs = FeatureInputs.from_folder(small_bank_dir)
    full = build_features(inputs, "2025-09-01")
    ids = full["customer_id"].iloc[::7]
    part = build_features(inputs.restricted_to(ids), "2025-09-01")
    assert part["customer_id"].tolist() == ids.tolist()
    ranked = {f.name for f in FEATURES if f.kind in ("rank", "rank_derived")}
    same = [c for c in full.columns if c not in ranked]
    pd.testing.assert_frame_equal(part[same].reset_index(drop=True),
                                  full.loc[ids.index, same].reset_index(drop=True))
    assert ranked and all(part[c].between(1, 5).all() for c in ranked
                          if c.startswith("rfm_") and c.endswith("_score"))


def test_the_duckdb_memory_limit_comes_from_the_environment(monkeypatch):
    from uplift.errors import InputError
    from uplift.features.build import duckdb_connection

    monkeypatch.setenv("UPLIFT_DUCKDB_MEMORY_LIMIT", "1GB")
    con = duckdb_connection()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].endswith("MiB")
    monkeypatch.setenv("UPLIFT_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="UPLIFT_DUCKDB_MEMORY_LIMIT"):
        duckdb_connection()


def test_without_a_limit_duckdb_gets_15_percent_of_the_ram(monkeypatch):
    """No limit given: 15% of the physical RAM, not DuckDB's 80% (a large bank's feature
    query took most of it, leaving no room for the features, models and scores)."""
    import os

    from uplift.features.build import default_memory_limit, duckdb_connection

    monkeypatch.delenv("UPLIFT_DUCKDB_MEMORY_LIMIT", raising=False)
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**2
    limit = default_memory_limit()
    assert limit == f"{max(1024, int(ram_mb * 0.15))}MiB"
    text = duckdb_connection().execute("SELECT current_setting('memory_limit')").fetchone()[0]
    number, unit = text.split()                 # e.g. "4.4 GiB": one decimal, truncated
    shown = float(number) * {"MiB": 1, "GiB": 1024}[unit]
    assert 0 <= int(limit[:-3]) - shown < 0.1 * 1024 + 1


def test_model_inputs_round_any_layout_alike():
    """Row-major, column-major, strided and 1-D inputs round alike (40 significant bits)."""
    from uplift.features.table import model_inputs

    rng = np.random.default_rng(3)
    base = rng.normal(size=(2000, 60)) * 10.0 ** rng.integers(-20, 20, size=(2000, 60))
    base[0, :3] = [1e-13, -8.9e-16, np.nan]
    mantissa, exponent = np.frexp(base)
    expected = np.ldexp(np.round(np.ldexp(mantissa, 40)), exponent - 40)
    expected[np.abs(base) < 2.0 ** -40] = 0.0
    cases = [(base, expected), (np.asfortranarray(base), expected),
             (base[:, ::2], expected[:, ::2]), (base[:, 5], expected[:, 5])]
    for layout, want in cases:
        np.testing.assert_array_equal(model_inputs(layout), want)
    assert model_inputs(base)[0, 0] == 0.0 and np.isnan(model_inputs(base)[0, 2])
