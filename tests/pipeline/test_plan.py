"""`uplift plan` end to end on a small simulated bank: outputs, reuse, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from uplift.cli import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def planned(small_bank_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("plan")
    cache = work / "cache"
    import os

    os.environ["UPLIFT_CACHE"] = str(cache)
    args = ["plan", "--budget", "20000", "--data", str(small_bank_dir), "--out",
            str(work / "plan.csv"), "--report", str(work / "report.html"), "--json"]
    assert run(["--quiet", *args]) == 0
    return work, args


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
                    "Will the expected gain come true?"):
        assert section in html
    assert "<script" not in html and 'src="http' not in html and "url(http" not in html
    manifest = json.loads((work / "plan.csv.manifest.json").read_text())
    assert manifest["summary"]["gap"] <= 1e-3
    backtest = manifest["summary"]["backtest"]
    assert backtest["logged_customers"] > 0 and backtest["chosen"] > 0
    low, high = backtest["realisation_interval"]
    assert low <= backtest["realisation"] <= high


def test_second_run_reuses_models_and_gives_the_identical_plan(planned, capsys):
    work, args = planned
    first = (work / "plan.csv").read_bytes()
    second_args = [a if a != str(work / "plan.csv") else str(work / "plan2.csv") for a in args]
    assert run(second_args) == 0
    assert "reusing models" in capsys.readouterr().err
    assert (work / "plan2.csv").read_bytes() == first


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
    assert len(plan) > 0 and set(plan["offer"]) <= set(offers)
    assert plan.loc[plan["holdout"] == 0, "cost"].sum() <= 20000
    assert "<svg" in report.read_text()
