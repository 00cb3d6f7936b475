"""The simulated bank: determinism, realism, heterogeneity and ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from uplift.cli import run
from uplift.schema import CAMPAIGN_LOG, CUSTOMERS, EVENTS, validate
from uplift.simulate import ARMS, OFFERS, simulate_bank, true_churn_probability

TABLES = ("customers", "events", "campaign_log", "truth")


@pytest.fixture(scope="module")
def bank_5000(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("sim") / "a"
    assert run(["--quiet", "simulate", "--customers", "5000", "--seed", "7", "--out",
                str(out)]) == 0
    return out


def test_same_seed_gives_identical_tables(bank_5000, tmp_path):
    again = tmp_path / "b"
    assert run(["--quiet", "simulate", "--customers", "5000", "--seed", "7", "--out",
                str(again)]) == 0
    for name in TABLES:
        first = pd.read_parquet(bank_5000 / f"{name}.parquet")
        second = pd.read_parquet(again / f"{name}.parquet")
        pd.testing.assert_frame_equal(first, second)


def test_different_seed_gives_different_bank(bank_5000):
    other = simulate_bank(5000, 12, seed=8)
    first = pd.read_parquet(bank_5000 / "customers.parquet")
    assert not np.allclose(first["aum"], other.customers["aum"])


def test_outputs_meet_their_contracts(bank_5000):
    validate(pd.read_parquet(bank_5000 / "customers.parquet"), CUSTOMERS, source="customers")
    validate(pd.read_parquet(bank_5000 / "campaign_log.parquet"), CAMPAIGN_LOG, source="log")
    events = pd.read_parquet(bank_5000 / "events.parquet")
    validate(events.head(50_000), EVENTS, source="events")
    assert (events["amount"] >= 0).all()
    manifest = (bank_5000 / "manifest.json").read_text()
    assert '"seed": 7' in manifest and '"events.parquet"' in manifest


def test_campaign_has_all_arms_and_plausible_control_churn(bank_5000):
    log = pd.read_parquet(bank_5000 / "campaign_log.parquet")
    assert set(log["arm"]) == set(ARMS)
    control_churn = log.loc[log["arm"] == "control", "churned"].mean()
    assert 0.05 <= control_churn <= 0.25
    # logged propensities are the assignment probabilities: per arm, the inverse-propensity
    # weights of its rows add up to the whole campaign (Horvitz-Thompson), and within each
    # segment the arm's share matches its mean logged propensity (fails if they were, say, 0.5)
    segment = log["customer_id"].map(pd.read_parquet(bank_5000 / "customers.parquet")
                                     .set_index("customer_id")["segment"])
    for arm in ARMS:
        rows = log["arm"] == arm
        weights = (1 / log.loc[rows, "propensity"]).sum()
        assert abs(weights / len(log) - 1) < 0.1, (arm, weights, len(log))
        for name, group in log[rows].groupby(segment[rows]):
            share = rows[segment == name].mean()
            assert abs(share - group["propensity"].mean()) < 0.05, (arm, name)
    share_by_segment = pd.crosstab(log["customer_id"].map(
        pd.read_parquet(bank_5000 / "customers.parquet").set_index("customer_id")["segment"]),
        log["arm"], normalize="index")
    assert share_by_segment.loc["young_retail", "advisor_visit"] < 0.10
    assert share_by_segment.loc["private_banking", "advisor_visit"] > 0.25


def test_true_effects_are_heterogeneous(bank_5000):
    truth = pd.read_parquet(bank_5000 / "truth.parquet")
    open_ = truth[truth["open_at_assignment"]]
    delta = open_[[f"delta_churn_{o}" for o in OFFERS]].to_numpy()
    best_share = np.bincount(delta.argmin(axis=1), minlength=len(OFFERS)) / len(open_)
    assert (best_share >= 0.10).all(), dict(zip(OFFERS, best_share, strict=True))
    harmed = (delta > 0).any(axis=1).mean()
    assert harmed >= 0.05
    # each offer helps its own latent group most
    by_reason = open_.groupby("latent_reason", observed=True)[
        [f"delta_churn_{o}" for o in OFFERS]].mean()
    assert by_reason.loc["rate_seeking"].idxmin() == "delta_churn_rate_coupon"
    assert by_reason.loc["fee_sensitivity"].idxmin() == "delta_churn_fee_waiver"
    assert by_reason.loc["service_dissatisfaction"].idxmin() == "delta_churn_advisor_visit"
    assert by_reason.loc["drift_to_silence"].idxmin() == "delta_churn_health_report"


def test_realised_outcomes_agree_with_truth(bank_5000):
    log = pd.read_parquet(bank_5000 / "campaign_log.parquet")
    truth = pd.read_parquet(bank_5000 / "truth.parquet").set_index("customer_id")
    control = log[log["arm"] == "control"]
    expected = truth.loc[control["customer_id"], "p_churn_30d"].mean()
    observed = control["churned"].mean()
    se = np.sqrt(expected * (1 - expected) / len(control))
    assert abs(observed - expected) < 4 * se
    logged = truth.loc[log["customer_id"]]
    latent = logged["p_churn_30d_latent"].to_numpy().copy()
    for arm in set(log["arm"]) - {"control"}:
        mask = (log["arm"] == arm).to_numpy()
        latent[mask] += logged[f"delta_churn_latent_{arm}"].to_numpy()[mask]
    # every customer's realised outcome is a draw with its full-information probability
    z = (log["churned"].sum() - latent.sum()) / np.sqrt((latent * (1 - latent)).sum())
    assert abs(z) < 4
    oracle = true_churn_probability(truth.reset_index(), "2026-01-01")
    open_ = truth["open_at_assignment"].to_numpy()
    assert np.allclose(oracle[open_], truth.loc[open_, "p_churn_30d"], atol=1e-9)


def _naive_features(events: pd.DataFrame, ids: pd.Series, as_of: pd.Timestamp) -> pd.DataFrame:
    recent = events[events["ts"] >= as_of - pd.Timedelta(days=30)]
    before = events[(events["ts"] < as_of - pd.Timedelta(days=30))
                    & (events["ts"] >= as_of - pd.Timedelta(days=120))]
    counts = []
    for frame, tag in ((recent, "r"), (before, "b")):
        key = frame["event_type"].astype(str) + "_" + frame["page"].astype(str) + "_" + tag
        counts.append(pd.crosstab(frame["customer_id"], key))
    table = pd.concat(counts, axis=1).reindex(ids).fillna(0)
    return table


def test_naive_model_predicts_churn_better_than_chance(small_bank_dir):
    events = pd.read_parquet(small_bank_dir / "events.parquet")
    log = pd.read_parquet(small_bank_dir / "campaign_log.parquet")
    log = log[log["arm"] == "control"].reset_index(drop=True)
    X = _naive_features(events, log["customer_id"], pd.Timestamp("2026-01-01"))
    model = HistGradientBoostingClassifier(max_iter=60, learning_rate=0.1, random_state=0)
    score = cross_val_predict(model, X, log["churned"], cv=3, method="predict_proba")[:, 1]
    assert roc_auc_score(log["churned"], score) > 0.70


def test_churn_signals_precede_the_exit_and_nothing_follows_it(small_bank_dir):
    events = pd.read_parquet(small_bank_dir / "events.parquet")
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    closed = customers.dropna(subset=["close_date"]).set_index("customer_id")["close_date"]
    ev = events[events["customer_id"].isin(closed.index)].copy()
    exit_day = closed.reindex(ev["customer_id"]).to_numpy()
    ev["days_to_exit"] = (exit_day - ev["ts"].dt.floor("D")).dt.days
    assert (ev["days_to_exit"] >= 0).all()
    on_exit_day = ev[ev["days_to_exit"] == 0]
    assert set(on_exit_day["event_type"]) == {"account_close"}
    assert len(on_exit_day) == closed.size
    closing = ev["page"] == "account_closing"
    last_month = closing[(ev["days_to_exit"] <= 30)].sum() / closed.size
    six_months_before = closing[(ev["days_to_exit"] > 150) & (ev["days_to_exit"] <= 180)].sum()
    assert last_month > 0.3
    assert last_month > 5 * six_months_before / max(closed.size, 1)
    competitor = ev["event_type"] == "transfer_out_competitor"
    assert competitor[ev["days_to_exit"] <= 30].sum() > 3 * competitor[
        (ev["days_to_exit"] > 150) & (ev["days_to_exit"] <= 180)].sum()


def test_simulator_rejects_nonsense_sizes():
    assert run(["--quiet", "simulate", "--customers", "0", "--out", "never"]) == 2


def test_simulate_without_triggers_is_the_earlier_bank_of_the_seed(tmp_path):
    """`simulate --no-triggers` writes the bank `simulate_bank(triggers=False)` gives; with
    `--triggers` the customers and campaign are the same and only events are added."""
    import pandas as pd

    from uplift.simulate import simulate_bank

    plain, triggered = tmp_path / "plain", tmp_path / "triggered"
    assert run(["--quiet", "simulate", "--customers", "400", "--seed", "3", "--no-triggers",
                "--out", str(plain)]) == 0
    assert run(["--quiet", "simulate", "--customers", "400", "--seed", "3", "--triggers",
                "--out", str(triggered)]) == 0
    expected = simulate_bank(400, seed=3, triggers=False)
    events = pd.read_parquet(plain / "events.parquet")
    pd.testing.assert_frame_equal(events.reset_index(drop=True),
                                  expected.events.reset_index(drop=True))
    for table in ("customers", "campaign_log"):
        pd.testing.assert_frame_equal(pd.read_parquet(plain / f"{table}.parquet"),
                                      pd.read_parquet(triggered / f"{table}.parquet"))
    more = pd.read_parquet(triggered / "events.parquet")
    assert len(more) > len(events)
    assert (more["event_type"] == "profile_change").any()
