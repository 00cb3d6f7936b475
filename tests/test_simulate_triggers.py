"""Observable starts of disengagement in the simulated bank (fixed seed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.simulate import REASONS, simulate_bank
from uplift.simulate_triggers import BASE_NIGHT_SHARE, TRIGGER_SHARE


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triggers")
    new = simulate_bank(6000, seed=11, events_path=folder / "new.parquet")
    old = simulate_bank(6000, seed=11, events_path=folder / "old.parquet", triggers=False)
    return new, old, pd.read_parquet(folder / "new.parquet"), pd.read_parquet(
        folder / "old.parquet")


def test_trigger_share_per_reason_matches_the_stated_share(banks):
    new, *_ = banks
    truth = new.truth
    disengaged = truth["latent_reason"].astype(str) != "none"
    assert truth.loc[~disengaged, "trigger_day"].isna().all()
    seg_share = truth.loc[disengaged, "segment"].value_counts(normalize=True)
    for r, reason in enumerate(REASONS[1:]):
        rows = truth[truth["latent_reason"].astype(str) == reason]
        segs = rows["segment"].astype(str)
        from uplift.schema import SEGMENTS
        expected = np.mean([TRIGGER_SHARE[r, SEGMENTS.index(s)] for s in segs])
        observed = rows["trigger_day"].notna().mean()
        assert observed == pytest.approx(expected, abs=4 * np.sqrt(0.25 / len(rows)))
    assert len(seg_share) == 4
    onset = truth["onset_day"].to_numpy(float)
    lag = truth["trigger_day"].to_numpy(float) - onset
    assert np.nanmin(lag) >= 0 and np.nanmax(lag) < 4


def test_triggers_only_add_events_and_keep_the_campaign(banks):
    new, old, ev_new, ev_old = banks
    pd.testing.assert_frame_equal(new.campaign_log, old.campaign_log)
    pd.testing.assert_frame_equal(new.customers, old.customers)
    assert len(ev_new) > len(ev_old)
    assert not (ev_old["event_type"] == "profile_change").any()
    # the old events are all there, on the same day (some transfers moved to night hours)
    key = ["customer_id", "event_type", "amount"]
    common = ev_new.assign(day=ev_new["ts"].dt.floor("D")).merge(
        ev_old.assign(day=ev_old["ts"].dt.floor("D")), on=[*key, "day"], how="right",
        indicator=True)
    assert (common["_merge"] == "both").all()
    night = ev_old["ts"].dt.hour < 6
    assert not night.any()
    transfers = ev_new["event_type"].isin(["transfer_out", "transfer_out_competitor"])
    night_new = (ev_new["ts"].dt.hour < 6) & transfers
    assert BASE_NIGHT_SHARE <= night_new.sum() / transfers.sum() < 3 * BASE_NIGHT_SHARE


def test_triggered_customers_show_bursts_right_after_the_onset(banks):
    new, _, ev, _ = banks
    truth = new.truth.set_index("customer_id")
    start = pd.Timestamp(truth.attrs["start_date"])
    ev = ev.join(truth[["trigger_day", "latent_reason"]], on="customer_id")
    day = (ev["ts"] - start).dt.days
    near = ev[(day >= ev["trigger_day"] - 0.5) & (day < ev["trigger_day"] + 14)]
    per = near.groupby("customer_id").size()
    triggered = truth[truth["trigger_day"].between(0, 300)].index
    assert per.reindex(triggered).fillna(0).gt(0).mean() > 0.9
    rate = near[near["latent_reason"] == "rate_seeking"]
    assert (rate["event_type"] == "transfer_out_competitor").any()
