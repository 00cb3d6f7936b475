"""`uplift plan` end to end on a small simulated bank: outputs, reuse, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from uplift.cli import run

from .truth import replayed_plan_truth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def planned(small_bank_dir, trained_models, tmp_path_factory):
    work = tmp_path_factory.mktemp("plan")
    patch = pytest.MonkeyPatch()          # the cache setting is undone after this module
    patch.setenv("UPLIFT_CACHE", str(trained_models["cache"]))   # the session's trained models
    args = ["plan", "--budget", "20000", "--data", str(small_bank_dir), "--out",
            str(work / "plan.csv"), "--report", str(work / "report.html"), "--json"]
    assert run(["--quiet", *args]) == 0
    yield work, args
    patch.undo()


def test_plan_outputs(planned, small_bank_dir):
    work, _ = planned
    plan = pd.read_csv(work / "plan.csv")
    expected = {"customer_id", "offer", "holdout", "assignment_probability", "expected_gain",
                "expected_gain_low", "cost", "churn_risk", "tier", "reason_1"}
    assert expected <= set(plan.columns)
    assert plan["cost"].sum() <= 20000
    assert plan["holdout"].mean() == pytest.approx(0.1, abs=0.03)
    customers = pd.read_parquet(small_bank_dir / "customers.parquet").set_index("customer_id")
    assert customers.loc[plan["customer_id"], "marketing_consent"].all()
    html = (work / "report.html").read_text()
    for section in ("Who gets what", "Budget curve", "How good is this plan",
                    "Who was left out", "Model checks", "<svg",
                    "What the bank should expect", "Words used on this page",
                    "Why the forecast is below the model's estimate",
                    "not worth contacting"):
        assert section in html
    # the first screen leads with what to expect, before any table of the plan
    assert html.index("What the bank should expect") < html.index("Who gets what")
    assert "customers kept" in html and "1e6" not in html and "shadow_price" not in html
    assert "<script" not in html and 'src="http' not in html and "url(http" not in html
    manifest = json.loads((work / "plan.csv.manifest.json").read_text())
    assert manifest["summary"]["gap"] <= 1e-3
    backtest = manifest["summary"]["backtest"]
    assert backtest["logged_customers"] > 0 and backtest["chosen"] > 0
    low, high = backtest["realisation_interval"]
    assert low == pytest.approx(backtest["realised_low"] / backtest["predicted"])
    assert high == pytest.approx(backtest["realised_high"] / backtest["predicted"])
    # the replayed plan's true net gain on the logged customers, from the simulator's truth,
    # lies inside the backtest's interval of what it realised
    truth = replayed_plan_truth(Path(manifest["summary"]["models"]), small_bank_dir,
                                budget=20000, planned=manifest["summary"]["customers_scored"])
    assert truth["chosen"] == backtest["chosen"]
    assert truth["predicted"] == pytest.approx(backtest["predicted"])
    assert backtest["realised_low"] <= truth["true_net_gain"] <= backtest["realised_high"]


def test_call_list_has_contacted_customers_only_ranked_and_flagged(planned):
    work, _ = planned
    plan = pd.read_csv(work / "plan.csv", keep_default_na=False)
    calls = pd.read_csv(work / "contacts.csv", keep_default_na=False)
    held = pd.read_csv(work / "holdout.csv")
    holdout_ids = set(plan.loc[plan["holdout"] == 1, "customer_id"])
    assert holdout_ids and not holdout_ids & set(calls["customer_id"])       # never the holdout
    assert set(held["customer_id"]) == holdout_ids
    assert len(calls) == int((plan["holdout"] == 0).sum())
    assert list(calls["priority"]) == list(range(1, len(calls) + 1))
    assert calls["expected_net_gain"].is_monotonic_decreasing
    for col in ("offer", "channel", "offer_description", "main_reason", "exit_signal",
                "confidence", "gain_lower_bound"):
        assert col in calls.columns
    assert ((calls["confidence"] == "ok") == (calls["gain_lower_bound"] >= 0)).all()
    assert (calls["offer"] != "").all() and (calls["channel"] != "").all()
    # held-out rows of the plan do not look like contacts
    rows = plan[plan["holdout"] == 1]
    assert (rows["offer"] == "").all() and (rows["channel"] == "").all()
    assert rows["action"].str.startswith("hold out").all()
    assert (rows["planned_offer"] != "").all()


def test_console_and_json_lead_with_what_to_expect(planned):
    work, _ = planned
    summary = json.loads((work / "plan.csv.manifest.json").read_text())["summary"]
    outlook = summary["outlook"]
    parts = outlook["retained_value"] + outlook["new_business_margin"] - outlook["cost"]
    assert parts == pytest.approx(outlook["expected_gain"], rel=1e-6)
    assert outlook["forecast"] == pytest.approx(outlook["expected_gain"]
                                                * summary["backtest"]["realisation"])
    assert outlook["customers_kept_low"] < outlook["customers_kept"] < \
        outlook["customers_kept_high"]
    assert summary["spend"] <= summary["budget_used"] <= summary["budget"] + 1e-6
    assert sum(summary["left_out"].values()) == summary["customers_scored"] - summary["selected"]
    for c in summary["constraints"]:
        if c["shadow_price"] is not None:
            assert c["binding"] == (c["shadow_price"] > 1e-9)


def test_contact_history_applies_the_contact_limit(planned, small_bank_dir, capsys):
    work, args = planned
    plan = pd.read_csv(work / "plan.csv")
    busy = plan["customer_id"].head(25).tolist()
    history = pd.DataFrame({"customer_id": busy * 2 + [plan["customer_id"].iloc[30]],
                            "contacted_at": ["2025-12-01"] * 25 + ["2025-12-20"] * 25
                            + ["2025-12-20"]})
    history.to_csv(work / "history.csv", index=False)
    out = work / "limited" / "plan.csv"
    limited = [a if a != str(work / "plan.csv") else str(out) for a in args]
    assert run([*limited, "--contacts", str(work / "history.csv"), "--left-out",
                str(work / "limited" / "left_out.csv")]) == 0
    summary = json.loads(capsys.readouterr().out)
    again = pd.read_csv(out)
    assert not set(busy) & set(again["customer_id"])         # 2 contacts in 90 days: limit 2
    assert plan["customer_id"].iloc[30] in set(again["customer_id"])     # one contact: fine
    assert summary["excluded"]["contact limit reached"] == 25
    assert summary["left_out"]["contact limit reached"] == 25
    dropped = pd.read_csv(work / "limited" / "left_out.csv")
    assert set(busy) <= set(dropped.loc[dropped["left_out_because"] == "contact limit reached",
                                        "customer_id"])
    assert len(dropped) == summary["customers_scored"] - summary["selected"]
    assert not set(dropped["customer_id"]) & set(again["customer_id"])


def test_second_run_reuses_models_and_gives_the_identical_plan(planned, capsys):
    work, args = planned
    first = (work / "plan.csv").read_bytes()
    second_args = [a if a != str(work / "plan.csv") else str(work / "plan2.csv") for a in args]
    assert run(second_args) == 0
    captured = capsys.readouterr()
    assert "reusing models" in captured.err
    assert (work / "plan2.csv").read_bytes() == first
    # --json prints the summary on stdout: its numbers are the plan's, by hand
    summary = json.loads(captured.out)
    plan = pd.read_csv(work / "plan2.csv")
    contacted = plan[plan["holdout"] == 0]
    assert summary["treated"] == len(contacted) and summary["held_out"] == int(plan["holdout"]
                                                                               .sum())
    assert summary["spend"] == pytest.approx(contacted["cost"].sum())
    assert summary["expected_gain"] == pytest.approx(contacted["expected_gain"].sum())
    per_offer = contacted.groupby("offer")["cost"].sum()
    for offer, numbers in summary["per_offer"].items():
        assert numbers["spend"] == pytest.approx(per_offer.get(offer, 0.0))


@pytest.mark.parametrize("change, message", [
    (lambda a, w: a[:2] + ["0"] + a[3:], "positive amount"),
    (lambda a, w: a[:2] + ["-5"] + a[3:], "positive amount"),
    (lambda a, w: a[:4] + [str(w / "missing")] + a[5:], "data folder not found"),
])
def test_bad_top_level_input(planned, capsys, change, message):
    work, args = planned
    out = work / "never.csv"
    bad = change([a if a != str(work / "plan.csv") else str(out) for a in args], work)
    assert run(bad) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_campaign_with_an_offer_the_model_does_not_know(planned, capsys):
    work, args = planned
    spec = (ROOT / "campaigns" / "retention_demo.yaml").read_text()
    spec = spec.replace("  - name: health_report", "  - name: cashback\n    channel: email\n"
                        "    cost: {fixed: 3.0}\n  - name: health_report")
    (work / "new.yaml").write_text(spec)
    out = work / "never2.csv"
    code = run([*[a if a != str(work / "plan.csv") else str(out) for a in args],
                "--campaign", str(work / "new.yaml")])
    assert code == 2
    assert "cashback" in capsys.readouterr().err
    assert not out.exists()


def test_packaged_demo_campaign_matches_the_repository_copy():
    packaged = ROOT / "uplift" / "data" / "retention_demo.yaml"
    assert packaged.read_text() == (ROOT / "campaigns" / "retention_demo.yaml").read_text()


@pytest.mark.parametrize("offers", [["fee_waiver"], ["fee_waiver", "advisor_visit"]])
def test_plan_with_one_or_two_offers(planned, offers):
    import yaml

    work, args = planned
    spec = yaml.safe_load((ROOT / "campaigns" / "retention_demo.yaml").read_text())
    spec["offers"] = [o for o in spec["offers"] if o["name"] in offers]
    spec["capacities"] = [c for c in spec["capacities"] if c["offer"] in offers]
    path = work / f"spec{len(offers)}.yaml"
    path.write_text(yaml.safe_dump(spec))
    out, report = work / f"plan{len(offers)}.csv", work / f"report{len(offers)}.html"
    changed = [str(out) if a == str(work / "plan.csv") else str(report)
               if a == str(work / "report.html") else a for a in args]
    assert run(["--quiet", *changed, "--campaign", str(path)]) == 0
    plan = pd.read_csv(out)
    assert len(plan) > 0 and set(plan.loc[plan["holdout"] == 0, "offer"]) <= set(offers)
    assert set(plan["planned_offer"]) <= set(offers)
    assert plan.loc[plan["holdout"] == 0, "cost"].sum() <= 20000
    assert "<svg" in report.read_text()


def test_plan_seed_call_list_holdout_list_and_export(planned, trained_models, small_bank_dir,
                                                     capsys):
    """--seed redraws the holdout only (same models via --model, same selection); the call
    list and holdout list go where --call-list and --holdout-list say; `export` of the raw-id
    plan lists the contacted customers only, or every selected one with --include-holdout."""
    work, args = planned
    first = pd.read_csv(work / "plan.csv")
    out = work / "seeded" / "plan.csv"
    calls, held = work / "lists" / "calls.csv", work / "lists" / "held.csv"
    seeded_args = [str(out) if a == str(work / "plan.csv") else a for a in args]
    assert run([*seeded_args, "--model", str(trained_models["models"]), "--seed", "5",
                "--call-list", str(calls), "--holdout-list", str(held)]) == 0
    capsys.readouterr()
    seeded = pd.read_csv(out)
    assert set(seeded["customer_id"]) == set(first["customer_id"])      # the same selection
    assert set(seeded.loc[seeded["holdout"] == 1, "customer_id"]) != set(
        first.loc[first["holdout"] == 1, "customer_id"])                # another holdout draw
    assert set(pd.read_csv(calls)["customer_id"]) == set(
        seeded.loc[seeded["holdout"] == 0, "customer_id"])
    assert set(pd.read_csv(held)["customer_id"]) == set(
        seeded.loc[seeded["holdout"] == 1, "customer_id"])
    assert not (out.parent / "contacts.csv").exists()
    listed = work / "export" / "list.csv"
    assert run(["--quiet", "export", "--plan", str(out), "--data", str(small_bank_dir),
                "--out", str(listed)]) == 0
    exported = pd.read_csv(listed)
    assert list(exported["customer_id"]) == list(pd.read_csv(calls)["customer_id"])
    everyone = work / "export" / "everyone.csv"
    assert run(["--quiet", "export", "--plan", str(out), "--data", str(small_bank_dir),
                "--include-holdout", "--out", str(everyone)]) == 0
    assert set(pd.read_csv(everyone)["customer_id"]) == set(seeded["customer_id"])


def test_plan_says_per_offer_which_effects_it_used_and_why(planned):
    work, _ = planned
    manifest = json.loads((work / "plan.csv.manifest.json").read_text())
    rows = manifest["summary"]["offer_effects"]
    offers = {"rate_coupon", "fee_waiver", "advisor_visit", "health_report"}
    assert {(e["offer"], e["outcome"]) for e in rows} == {
        (o, outcome) for o in offers for outcome in ("churn", "value")}
    for e in rows:
        assert e["use"] in ("per-customer", "group average")
        if e["use"] == "per-customer":       # kept only with slopes above 0 at 5%
            assert e["slope"] - 1.645 * e["slope_se"] > 0
            assert e["gain_slope"] - 1.645 * e["gain_slope_se"] > 0
        assert e["why"]
    saved = json.loads((Path(manifest["summary"]["models"]) / "calibration.json").read_text())
    assert saved == rows
    html = (work / "report.html").read_text()
    assert "Which offers use per-customer effects" in html


def test_standard_errors_for_the_selected_customers_only_give_the_same_plan(small_bank_dir,
                                                                             trained_models,
                                                                             monkeypatch):
    """`plan` computes the effects' standard errors after the allocation, for the selected
    customers only and their chosen offer only: the plan (intervals included) equals scoring
    everyone with them; scoring in blocks changes nothing."""
    from uplift.allocate import allocate
    from uplift.campaign import load_campaign_spec
    from uplift.config import Settings
    from uplift.features import FeatureInputs, build_features
    from uplift.pipeline import load_models, score_customers, scoring, with_uncertainty
    from uplift.planner import default_campaign

    inputs = FeatureInputs.from_folder(small_bank_dir)
    models = load_models(trained_models["models"])
    spec, settings, day = load_campaign_spec(default_campaign()), Settings(), \
        trained_models["as_of"]
    features = build_features(inputs, day)
    everyone = score_customers(inputs, day, models, spec, settings, features=features)
    expected = allocate(everyone, spec, budget=6000, as_of=pd.Timestamp(day)).plan
    lazy = scoring(inputs, day, models, spec, settings, features=features, with_se=False)
    assert not [c for c in lazy.table.columns if c.startswith("se_churn_")]
    allocation = allocate(lazy.table, spec, budget=6000, as_of=pd.Timestamp(day))
    allocation, scores = with_uncertainty(allocation, lazy, models, spec, settings)
    pd.testing.assert_frame_equal(allocation.plan.reset_index(drop=True),
                                  expected.reset_index(drop=True))
    assert (allocation.plan["expected_gain_low"] < allocation.plan["expected_gain"]).mean() > 0.9
    assert not [c for c in scores.columns if c.startswith("gain_lo_")]
    # scored in blocks of 7 customers (memory bounded by the block): the same scores and plan
    monkeypatch.setattr("uplift.pipeline.SCORING_CHUNK", 7)
    blocks = scoring(inputs, day, models, spec, settings, features=features, with_se=False)
    pd.testing.assert_frame_equal(blocks.table, lazy.table)
    allocation = allocate(blocks.table, spec, budget=6000, as_of=pd.Timestamp(day))
    allocation, _ = with_uncertainty(allocation, blocks, models, spec, settings)
    pd.testing.assert_frame_equal(allocation.plan.reset_index(drop=True),
                                  expected.reset_index(drop=True))


@pytest.mark.parametrize("written", ["2026-01-01T00:59:43+02:00", "2025-12-31T22:59:43",
                                     "2025-12-31 22:59:43Z"])
def test_the_default_planning_date_is_the_day_after_the_last_event_in_utc(tmp_path, written):
    """The same last instant written with an offset, in UTC, or with Z: the same planning
    date (an offset's local date once moved it a day later than the features' data)."""
    from uplift.features import FeatureInputs
    from uplift.pipeline import planning_date

    folder = tmp_path / "bank"
    folder.mkdir()
    (folder / "customers.csv").write_text(
        "customer_id;segment;open_date;marketing_consent\n7;mass;2024-01-01;J\n")
    (folder / "events.csv").write_text(
        "customer_id;ts;event_type;amount\n"
        "7;2025-12-01T10:00:00;deposit;100\n"
        f"7;{written};deposit;50\n")
    inputs = FeatureInputs.from_folder(folder)
    assert planning_date(folder, inputs, None) == "2026-01-01"


def test_a_campaign_assigned_after_the_planning_date_is_noted(tmp_path):
    """Effects learned from a campaign that had not happened on the planning date (a
    backtest at an earlier date) are said in the plan's notes; one on that date is not."""
    from uplift.config import Settings
    from uplift.features import FeatureInputs
    from uplift.pipeline import campaign_date_notes

    folder = tmp_path / "bank"
    folder.mkdir()
    (folder / "customers.csv").write_text(
        "customer_id,segment,open_date\n1,mass,2024-01-01\n2,mass,2024-01-01\n")
    (folder / "events.csv").write_text("customer_id,ts,event_type,amount\n1,2025-12-01,login,0\n")
    (folder / "campaign_log.csv").write_text(
        "customer_id,campaign_id,arm,assigned_at,propensity,churned,value_after\n"
        "1,c,control,2026-02-01,0.5,0,0\n2,c,coupon,2026-02-01,0.5,1,0\n")
    inputs = FeatureInputs.from_folder(folder)
    notes = campaign_date_notes(inputs, "2026-01-02", Settings())
    assert len(notes) == 1 and "2 of 2 past-campaign rows were assigned after the planning " \
        "date 2026-01-02 (from 2026-02-01)" in notes[0]
    assert campaign_date_notes(inputs, "2026-02-01", Settings()) == []
