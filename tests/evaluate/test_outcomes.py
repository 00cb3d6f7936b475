"""The measurement recipe end to end on a simulated bank: plan -> carry it out (simulated
response with the known truth) -> `uplift outcomes` -> `uplift evaluate`, which recovers the
true campaign effect within its interval without hand joins."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run
from uplift.errors import SchemaError
from uplift.evaluate.outcomes import build_outcomes
from uplift.simulate import read_bank_table, read_truth, simulate_plan_response

OFFERS = ["rate_coupon", "fee_waiver", "advisor_visit", "health_report"]


def oracle_scores(bank, seed: int = 0) -> pd.DataFrame:
    """Gains from the simulator's truth with noise: a plan that targets real effects."""
    truth = read_truth(bank / "truth.parquet")
    customers = read_bank_table(bank / "customers.parquet")
    table = truth[truth["open_at_assignment"]].merge(
        customers[["customer_id", "aum", "products_held"]], on="customer_id")
    rng = np.random.default_rng(seed)
    out = table[["customer_id", "segment"]].copy()
    out["segment"] = out["segment"].astype(str)
    out["customer_value"] = table["annual_value"].to_numpy()
    for k, offer in enumerate(OFFERS):
        cost = [2.0, 24.0, 180.0, 0.5][k]
        delta = table[f"delta_churn_{offer}"].to_numpy()
        gain = -delta * table["annual_value"].to_numpy() - cost
        out[f"gain_{offer}"] = gain + rng.normal(0, 5, len(out))
        out[f"cost_{offer}"] = cost
        out[f"delta_churn_{offer}"] = delta
    return out


@pytest.fixture(scope="module")
def measured(small_bank_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("outcomes")
    start = json.loads((small_bank_dir / "manifest.json").read_text())["assignment_date"]
    oracle_scores(small_bank_dir).to_parquet(work / "scores.parquet")
    (work / "spec.yaml").write_text(json.dumps({
        "name": "measured", "holdout_fraction": 0.4, "require_consent": False,
        "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in OFFERS]}))
    assert run(["--quiet", "allocate", "--scores", str(work / "scores.parquet"), "--campaign",
                str(work / "spec.yaml"), "--budget", "20000", "--as-of", start, "--out",
                str(work / "plan.csv")]) == 0
    plan = pd.read_csv(work / "plan.csv", dtype={"customer_id": str})
    truth = read_truth(small_bank_dir / "truth.parquet")
    events = simulate_plan_response(truth, plan, start, seed=3)
    events.to_parquet(work / "events_after.parquet")
    end = str((pd.Timestamp(start) + pd.Timedelta(days=30)).date())
    assert run(["outcomes", "--plan", str(work / "plan.csv"), "--events",
                str(work / "events_after.parquet"), "--as-of", end, "--data",
                str(small_bank_dir), "--out", str(work / "outcomes.csv")]) == 0
    assert run(["evaluate", "--outcomes", str(work / "outcomes.csv"), "--json",
                str(work / "result.json")]) == 0
    result = json.loads((work / "result.json").read_text())
    contacted = plan[plan["holdout"] == 0]
    rows = truth.set_index("customer_id").loc[contacted["customer_id"]]
    kept = -float(np.sum([rows[f"delta_churn_latent_{o}"].to_numpy()[i]
                          for i, o in enumerate(contacted["planned_offer"])]))
    return work, plan, result, kept


def test_outcomes_evaluate_recovers_the_true_effect_within_its_interval(measured):
    _, plan, result, true_kept = measured
    total = result["campaign"]
    assert result["strata"] == "stratum"                 # taken from the outcomes' manifest
    assert total["treated_total"] == int((plan["holdout"] == 0).sum())
    left_out = sum(c["treated"] for c in total["left_out"].values())
    assert total["treated"] == total["treated_total"] - left_out
    assert total["incremental_low"] <= true_kept <= total["incremental_high"]
    assert true_kept > 5                                 # the plan keeps customers, truly
    assert total["incremental_high"] - total["incremental_low"] < 6 * true_kept


def test_outcomes_table_matches_the_plan(measured):
    work, plan, _, _ = measured
    table = pd.read_csv(work / "outcomes.csv")
    assert len(table) == len(plan)
    held = table["arm"] == "control"
    assert held.sum() == plan["holdout"].sum()
    assert (table.loc[held, "cost"] == 0).all()
    assert set(table.loc[~held, "arm"]) <= set(OFFERS)
    manifest = json.loads((work / "outcomes.csv.manifest.json").read_text())
    assert manifest["evaluate"]["strata"] == "stratum"


def test_outcomes_refuse_a_window_the_events_do_not_cover(measured, small_bank_dir, capsys):
    work, *_ = measured
    code = run(["outcomes", "--plan", str(work / "plan.csv"), "--events",
                str(work / "events_after.parquet"), "--as-of", "2031-01-01", "--out",
                str(work / "late.csv")])
    assert code == 2
    assert "before the measurement date 2031-01-01" in capsys.readouterr().err
    assert not (work / "late.csv").exists()


def test_outcomes_refuse_planned_customers_missing_from_the_customers_table():
    plan = pd.DataFrame({"customer_id": [1, 2, 3], "holdout": [0, 0, 1],
                         "planned_offer": ["a", "a", "a"],
                         "assignment_probability": [0.6, 0.6, 0.4], "cost": [1.0, 1.0, 0.0]})
    events = pd.DataFrame({"customer_id": [1, 2, 3], "ts": ["2026-02-01"] * 3,
                           "event_type": ["login"] * 3, "amount": [0.0] * 3})
    with pytest.raises(SchemaError, match=r"1 of 3 planned customers \(33.3%\) name customers "
                       r"not in customers"):
        build_outcomes(plan, events, start="2026-01-01", end="2026-02-01",
                       customers=pd.DataFrame({"customer_id": [1, 2]}))


def small_plan() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["0001", "0002", "0003", "0004"],
                         "holdout": [0, 0, 1, 0], "planned_offer": ["a"] * 4,
                         "assignment_probability": [0.75] * 4, "cost": [1.0, 1.0, 0.0, 1.0]})


def small_events(ids: list) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "ts": ["2026-01-05", "2026-01-09", "2026-01-20",
                                                    "2026-02-02"],
                         "event_type": ["account_close", "product_buy", "login", "login"],
                         "amount": [0.0, 500.0, 0.0, 0.0]})


@pytest.mark.parametrize("written", ["text", "float", "int"])
def test_outcomes_read_ids_of_any_storage_alike(written):
    """Ids stored as floats or integers are the customers of the plan's text ids (before,
    a float id matched no one: churned 0%, exit 0)."""
    plan = small_plan().assign(customer_id=["1", "2", "3", "4"])
    ids = {"text": ["1", "2", "3", "4"], "float": [1.0, 2.0, 3.0, 4.0],
           "int": [1, 2, 3, 4]}[written]
    out = build_outcomes(plan, small_events(ids), start="2026-01-01", end="2026-02-01",
                         customers=pd.DataFrame({"customer_id": ids}))
    assert out["customer_id"].tolist() == ["1", "2", "3", "4"]
    assert out["churned"].tolist() == [1, 0, 0, 0]
    assert out["new_business"].tolist() == [0.0, 500.0, 0.0, 0.0]


def test_outcomes_read_a_holdout_written_as_flags():
    plan = small_plan().assign(holdout=["N", "n", "J", "no"])
    out = build_outcomes(plan, small_events(["0001", "0002", "0003", "0004"]),
                         start="2026-01-01", end="2026-02-01")
    assert out["arm"].tolist() == ["a", "a", "control", "a"]


def test_validate_refuses_outcomes_whose_arm_is_not_the_planned_offer(tmp_path, capsys):
    table = pd.DataFrame({"customer_id": ["1", "2", "3"], "arm": ["a", "control", "b"],
                          "planned_offer": ["a", "a", "a"], "churned": [0, 1, 0]})
    table.to_csv(tmp_path / "o.csv", index=False)
    assert run(["validate", "--outcomes", str(tmp_path / "o.csv")]) == 2
    assert "an offer other than the customer's planned_offer in row 3" in (
        capsys.readouterr().err)


def test_outcomes_refuse_a_held_out_row_edited_to_contacted():
    plan = small_plan().assign(offer=["a", "a", "", "a"], holdout=[0, 0, 0, 0])
    with pytest.raises(SchemaError, match=r"0 \(contacted\) but no offer in row 3"):
        build_outcomes(plan, small_events(["0001", "0002", "0003", "0004"]),
                       start="2026-01-01", end="2026-02-01")


def test_outcomes_refuse_events_whose_ids_lost_their_zero_padding():
    with pytest.raises(SchemaError, match=r"planned customers .* not in events.*leading zeros"):
        build_outcomes(small_plan(), small_events([1, 2, 3, 4]), start="2026-01-01",
                       end="2026-02-01")


def test_outcomes_refuse_customers_whose_ids_lost_their_zero_padding():
    with pytest.raises(SchemaError, match=r"not in customers.*leading zeros"):
        build_outcomes(small_plan(), small_events(["0001", "0002", "0003", "0004"]),
                       start="2026-01-01", end="2026-02-01",
                       customers=pd.DataFrame({"customer_id": [1, 2, 3, 4]}))


def test_outcomes_refuse_a_plan_naming_a_customer_twice():
    plan = small_plan().assign(customer_id=["0001", "0002", "0002", "0004"])
    with pytest.raises(SchemaError, match=r"the same customer in rows 2, 3"):
        build_outcomes(plan, small_events(["0001", "0002", "0003", "0004"]),
                       start="2026-01-01", end="2026-02-01")


def test_outcomes_with_start_need_no_manifest_and_refuse_another_plans_one(tmp_path, capsys):
    """--start measures a plan without its manifest; a manifest recording another number of
    rows (another plan's, or the plan edited) is refused unless --start is given."""
    plan = small_plan()
    plan.to_csv(tmp_path / "plan.csv", index=False)
    small_events(["0001", "0002", "0003", "0004"]).to_csv(tmp_path / "events.csv", index=False)
    base = ["outcomes", "--plan", str(tmp_path / "plan.csv"), "--events",
            str(tmp_path / "events.csv"), "--as-of", "2026-02-01"]
    assert run([*base, "--out", str(tmp_path / "o1.csv")]) == 2
    assert "--start" in capsys.readouterr().err and not (tmp_path / "o1.csv").exists()
    assert run([*base, "--start", "2026-01-01", "--out", str(tmp_path / "o1.csv")]) == 0
    first = pd.read_csv(tmp_path / "o1.csv", dtype={"customer_id": str})
    assert first["customer_id"].tolist() == ["0001", "0002", "0003", "0004"]
    assert first["churned"].tolist() == [1, 0, 0, 0]
    (tmp_path / "plan.csv.manifest.json").write_text(json.dumps({
        "outputs": {"plan.csv": 9}, "summary": {"as_of": "2026-01-01"}}))
    assert run([*base, "--out", str(tmp_path / "o2.csv")]) == 2
    assert "records 9 plan rows, the plan has 4" in capsys.readouterr().err
    # the same when the plan was renamed since (its manifest names the file it wrote)
    (tmp_path / "plan.csv.manifest.json").write_text(json.dumps({
        "outputs": {"first.csv": 9}, "arguments": {"out": "runs/first.csv"},
        "summary": {"as_of": "2026-01-01"}}))
    assert run([*base, "--out", str(tmp_path / "o2.csv")]) == 2
    assert "records 9 plan rows, the plan has 4" in capsys.readouterr().err
    assert not (tmp_path / "o2.csv").exists()
    assert run([*base, "--start", "2026-01-01", "--out", str(tmp_path / "o2.csv")]) == 0


def test_evaluate_the_past_campaign_log_with_segment_strata_without_a_hand_join(
        small_bank_dir, tmp_path, capsys):
    log = small_bank_dir / "campaign_log.parquet"
    base = ["evaluate", "--outcomes", str(log), "--arm", "arm", "--control", "control",
            "--metric", "churned", "--propensity", "propensity", "--json",
            str(tmp_path / "r.json")]
    assert run(base) == 2                                   # design varies by segment
    assert "--customers" in capsys.readouterr().err
    assert run([*base, "--customers", str(small_bank_dir / "customers.parquet"), "--strata",
                "segment"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["strata"] == "segment" and result["campaign"]["treated"] > 0
    assert all(r["stratified"] for r in result["arms"].values())
    stray = pd.read_parquet(log).head(5).assign(customer_id=-1)
    stray.to_csv(tmp_path / "stray.csv", index=False)
    assert run(["evaluate", "--outcomes", str(tmp_path / "stray.csv"), "--arm", "arm",
                "--control", "control", "--metric", "churned", "--customers",
                str(small_bank_dir / "customers.parquet")]) == 2
    assert "5 of 5 rows (100.0%) name customers not in" in capsys.readouterr().err
    padded = pd.read_parquet(log).head(5)
    padded["customer_id"] = padded["customer_id"].astype(str).str.zfill(12)
    padded.to_csv(tmp_path / "padded.csv", index=False)
    assert run(["evaluate", "--outcomes", str(tmp_path / "padded.csv"), "--arm", "arm",
                "--control", "control", "--metric", "churned", "--customers",
                str(small_bank_dir / "customers.parquet")]) == 2
    assert "leading zeros" in capsys.readouterr().err


def test_outcomes_start_validate_outcomes_and_evaluate_seed(measured, small_bank_dir,
                                                            tmp_path, capsys):
    """--start equal to the plan's date rebuilds the same table; validate --outcomes accepts
    it; evaluate --seed fixes the bootstrap (same seed, same interval; another seed, another)."""
    work, *_ = measured
    start = json.loads((small_bank_dir / "manifest.json").read_text())["assignment_date"]
    end = str((pd.Timestamp(start) + pd.Timedelta(days=30)).date())
    out = tmp_path / "outcomes.csv"
    assert run(["--quiet", "outcomes", "--plan", str(work / "plan.csv"), "--events",
                str(work / "events_after.parquet"), "--as-of", end, "--start", start,
                "--data", str(small_bank_dir), "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(work / "outcomes.csv"))
    assert run(["validate", "--outcomes", str(out)]) == 0
    capsys.readouterr()
    intervals = []
    for seed in ("1", "1", "2"):
        assert run(["--quiet", "evaluate", "--outcomes", str(out), "--value", "retained_value",
                    "--seed", seed, "--json", str(tmp_path / "r.json")]) == 0
        money = json.loads((tmp_path / "r.json").read_text())["money"]
        intervals.append({a: (m.get("roi_boot_low"), m.get("roi_boot_high"))
                          for a, m in money.items()})
    capsys.readouterr()
    assert intervals[0] == intervals[1] and intervals[0] != intervals[2]
