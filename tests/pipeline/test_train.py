"""`uplift train`, and `uplift plan` on the models it wrote: --model, --as-of, --config and
--confident each change the plan the way they promise (values checked, not messages)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from uplift.cli import run

ROOT = Path(__file__).resolve().parents[2]


def test_train_writes_models_stamped_with_the_runs_fingerprint(trained_models):
    from uplift.churn import ChurnModel
    from uplift.effects.model import EffectsModel

    folder = trained_models["models"]
    stamp = json.loads((folder / "fingerprint.json").read_text())
    assert stamp["fingerprint"] == trained_models["key"]
    assert stamp["as_of"] == trained_models["as_of"] and stamp["seed"] == 0
    churn = ChurnModel.load(folder / "churn")
    # the simulator's disengagement leaves traces: a model that learned nothing scores 0.5
    assert churn.validation_["evaluation"]["roc_auc"] > 0.65
    effects = EffectsModel.load(folder / "effects_churn")
    spec = yaml.safe_load((ROOT / "campaigns" / "retention_demo.yaml").read_text())
    assert {o["name"] for o in spec["offers"]} <= set(effects.arms)


@pytest.fixture(scope="module")
def model_plans(small_bank_dir, trained_models, tmp_path_factory):
    """Two plans on the session's trained models, neither training again: one a fortnight
    before the data's last day with --confident, one with a settings file whose customer value
    differs from the models' (--config)."""
    work = tmp_path_factory.mktemp("model_plans")
    models = trained_models["models"]
    trained_at = (models / "fingerprint.json").stat().st_mtime_ns
    early = str((pd.Timestamp(trained_models["as_of"]) - pd.Timedelta(days=14)).date())
    settings = yaml.safe_load(trained_models["config"].read_text())
    settings["customer_value"] = {"aum_rate": 0.02, "per_product": 10.0, "base": 100.0}
    (work / "value.yaml").write_text(yaml.safe_dump(settings))
    common = ["plan", "--budget", "20000", "--data", str(small_bank_dir), "--model",
              str(models), "--json"]
    plans = {}
    for name, extra in {"confident": ["--as-of", early, "--confident"],
                        "config": ["--config", str(work / "value.yaml")]}.items():
        out = work / name
        code = run([*common, *extra, "--out", str(out / "plan.csv"), "--report",
                    str(out / "plan.html")])
        assert code == 0
        plans[name] = out
    assert (models / "fingerprint.json").stat().st_mtime_ns == trained_at   # not retrained
    return {"plans": plans, "early": early, "models": models}


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "plan.csv.manifest.json").read_text())


def test_plan_uses_the_given_model_folder(model_plans):
    for folder in model_plans["plans"].values():
        summary = _manifest(folder)["summary"]
        assert Path(summary["models"]) == model_plans["models"]


def test_plan_as_of_scores_customers_open_on_that_date(model_plans, small_bank_dir):
    folder = model_plans["plans"]["confident"]
    manifest = _manifest(folder)
    assert manifest["summary"]["as_of"] == model_plans["early"]
    assert manifest["arguments"]["as_of"] == model_plans["early"]
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    day = pd.Timestamp(model_plans["early"])
    open_then = customers[(pd.to_datetime(customers["open_date"]) < day)
                          & ~(pd.to_datetime(customers["close_date"]) < day)]
    assert manifest["summary"]["customers_scored"] <= len(open_then)
    plan = pd.read_csv(folder / "plan.csv")
    assert set(plan["customer_id"]) <= set(open_then["customer_id"])


def test_plan_confident_contacts_only_offers_with_a_positive_lower_bound(model_plans):
    plan = pd.read_csv(model_plans["plans"]["confident"] / "plan.csv")
    contacted = plan[plan["holdout"] == 0]
    assert len(contacted) > 0
    assert (contacted["expected_gain_low"] > 0).all()
    # without --confident the same models do contact customers whose lower bound is negative
    loose = pd.read_csv(model_plans["plans"]["config"] / "plan.csv")
    assert (loose.loc[loose["holdout"] == 0, "expected_gain_low"] <= 0).any()


def test_plan_config_sets_the_customer_value(model_plans, small_bank_dir):
    plan = pd.read_csv(model_plans["plans"]["config"] / "plan.csv")
    customers = pd.read_parquet(small_bank_dir / "customers.parquet").set_index("customer_id")
    rows = customers.loc[plan["customer_id"]]
    by_hand = 0.02 * rows["aum"].to_numpy() + 10.0 * rows["products_held"].to_numpy() + 100.0
    assert plan["customer_value"].to_numpy() == pytest.approx(by_hand, abs=0.01)


def test_large_banks_train_the_churn_model_on_a_stratified_sample(small_bank_dir):
    from uplift.config import Settings, Training
    from uplift.features import FeatureInputs
    from uplift.pipeline import training_sample

    inputs = FeatureInputs.from_folder(small_bank_dir)
    customers = inputs.read("customers")
    settings = Settings(training=Training(sample_customers=1000))
    lines: list[str] = []
    sample = training_sample(inputs, settings, seed=3, progress=lines.append)
    assert sample.only is not None and abs(len(sample.only) - 1000) <= 10
    chosen = customers[customers["customer_id"].isin(sample.only)]
    shares = chosen["segment"].astype(str).value_counts(normalize=True)
    whole = customers["segment"].astype(str).value_counts(normalize=True)
    assert (shares - whole).abs().max() < 0.01           # stratified by segment
    assert "random sample of" in lines[0]
    again = training_sample(inputs, settings, seed=3)
    assert again.only == sample.only                     # seeded
    assert training_sample(inputs, Settings(), seed=3) is inputs   # small bank: everyone


def test_large_banks_train_the_effect_models_on_a_sample_of_the_campaign(small_bank_dir):
    from uplift.features import FeatureInputs
    from uplift.pipeline import campaign_table

    inputs = FeatureInputs.from_folder(small_bank_dir)
    log = inputs.read("campaign_log")
    lines: list[str] = []
    table = campaign_table(inputs, sample=1000, seed=2, progress=lines.append)
    assert abs(len(table) - 1000) <= 10 and table["customer_id"].is_unique
    shares = table["arm"].value_counts(normalize=True)
    whole = log["arm"].value_counts(normalize=True)
    assert (shares - whole).abs().max() < 0.01           # every arm keeps its share
    assert any("campaign rows" in line for line in lines)
    assert len(campaign_table(inputs, sample=None)) == len(log)
