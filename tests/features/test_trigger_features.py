"""Exit-trigger features: hand-computed values, midnight dates are not night, no leakage."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.features.test_features import AS_OF, by_number, write_bank
from uplift.features import FeatureInputs, build_features
from uplift.features.registry import DAYS_CAP

TRIGGER_LOG = [
    (1, "2025-05-30 10:00", "profile_change", 0.0, "app", None, "phone"),        # age 2
    (1, "2025-05-10 10:00", "profile_change", 0.0, "branch", None, "address"),   # age 22
    (1, "2025-05-28 02:30", "transfer_out", 200.0, "app", None, None),           # age 4, night
    (1, "2025-05-28 03:10", "transfer_out", 300.0, "app", None, None),           # age 4, night
    (1, "2025-05-20 14:00", "transfer_out", 100.0, "app", None, None),           # age 12, day
    (1, "2025-05-01 00:00", "transfer_out", 100.0, "app", None, None),           # age 31: date
    (1, "2025-05-25 11:00", "page_view", 0.0, "app", "transfer_limit", None),    # age 7
    (1, "2025-04-20 11:00", "complaint", 0.0, "web", None, "fees"),              # age 42
    (1, "2025-05-31 12:00", "login", 0.0, "app", None, None),                    # not a trigger
    (2, "2025-05-31 00:00", "transfer_out", 50.0, "app", None, None),            # midnight: date
    (2, "2025-05-31 10:00", "login", 0.0, "app", None, None),
]
FUTURE = [
    (1, "2025-06-01 01:00", "transfer_out", 900.0, "app", None, None),
    (1, "2025-06-01 09:00", "profile_change", 0.0, "app", None, "phone"),
    (2, "2025-06-02 02:00", "profile_change", 0.0, "app", None, "address"),
    (2, "2025-06-03 09:00", "complaint", 0.0, "web", None, "fees"),
]


@pytest.fixture()
def trig(tmp_path):
    data = write_bank(tmp_path / "bank", TRIGGER_LOG)
    return by_number(build_features(FeatureInputs.from_folder(data), AS_OF))


def test_trigger_features_match_hand_counts(trig):
    one = trig.loc[1]
    assert one["beh_profile_change_phone_7d"] == 1
    assert one["beh_profile_change_phone_30d"] == 1
    assert one["beh_profile_change_address_7d"] == 0
    assert one["beh_profile_change_address_30d"] == 1
    assert one["beh_days_since_profile_change"] == 2
    assert one["txn_night_transfers_7d"] == 2
    assert one["txn_night_transfers_30d"] == 2
    assert one["txn_night_transfer_share_30d"] == pytest.approx(2 / 3)
    assert one["txn_night_transfer_share_90d"] == pytest.approx(2 / 4)
    # triggers: phone change (2), 2 night transfers (4), transfer-limit look-up (7),
    # address change (22), fee complaint (42); the login is none
    assert one["beh_trigger_count_7d"] == 4
    assert one["beh_trigger_count_14d"] == 4
    assert one["beh_trigger_count_30d"] == 5
    assert one["beh_trigger_days_14d"] == 3
    assert one["beh_days_since_first_trigger_60d"] == 42
    assert one["beh_days_since_trigger"] == 2


def test_a_date_without_time_is_not_a_night_transfer(trig):
    two = trig.loc[2]
    assert two["txn_night_transfers_7d"] == 0
    assert two["txn_night_transfer_share_30d"] == 0
    assert two["beh_trigger_count_30d"] == 0
    assert two["beh_days_since_first_trigger_60d"] == DAYS_CAP
    assert two["beh_days_since_profile_change"] == DAYS_CAP


def test_trigger_features_ignore_events_from_the_as_of_date_on(tmp_path, trig):
    data = write_bank(tmp_path / "future", TRIGGER_LOG + FUTURE)
    later = by_number(build_features(FeatureInputs.from_folder(data), AS_OF))
    cols = [c for c in trig.columns if any(k in c for k in ("trigger", "night", "profile"))]
    assert len(cols) == 16
    pd.testing.assert_frame_equal(later[cols], trig[cols])
