"""The Spark engine against the single-machine one, on local Spark (``local[2]``).

Features: the same SQL transpiled; every value within 1e-12 (relative) of DuckDB's, ids, counts,
dates and ranks identical, and the models' inputs (:func:`model_inputs`) identical but for the
rare value whose last-bit difference straddles a rounding step. Scores: to 1e-9, reasons
identical. Plans: the value of the Spark plan is within the certified gaps of
the single-machine plan's. ``UPLIFT_REQUIRE_SPARK=1`` (set by `.ci/run`) turns a missing
PySpark or Java into a failure instead of a skip.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uplift.features import FeatureInputs, build_features
from uplift.features.table import model_inputs

warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas")


@pytest.fixture(scope="module")
def spark():
    from uplift.spark.session import spark_available, spark_session

    if not spark_available():
        if os.environ.get("UPLIFT_REQUIRE_SPARK") == "1":
            pytest.fail("UPLIFT_REQUIRE_SPARK=1 but PySpark or Java is missing")
        pytest.skip("PySpark or Java is missing")
    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory) -> Path:
    """400 simulated customers (seed 5): the Parquet files the simulator writes."""
    from uplift.cli import run

    out = tmp_path_factory.mktemp("spark") / "bank"
    assert run(["--quiet", "simulate", "--customers", "400", "--seed", "5", "--out",
                str(out)]) == 0
    return out


ID_STYLES = {"padded": lambda v: f"{v:09d}", "float": lambda v: f"{v}.0"}


def bank_shaped_otherwise(bank: Path, folder: Path, ids: str = "padded") -> Path:
    """The same bank as a bank's export: semicolon CSV, ids as zero-padded text or as floats
    (``123.0``), times with a +02:00 offset (the same instants), flags and amounts as text."""
    folder.mkdir()
    written = ID_STYLES[ids]
    customers = pd.read_parquet(bank / "customers.parquet")
    customers["customer_id"] = customers["customer_id"].map(written)
    customers.to_csv(folder / "customers.csv", sep=";", index=False)
    events = pd.read_parquet(bank / "events.parquet")
    events["customer_id"] = events["customer_id"].map(written)
    local = events["ts"] + pd.Timedelta(hours=2)
    events["ts"] = local.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    events.to_csv(folder / "events.csv", sep=";", index=False)
    log = pd.read_parquet(bank / "campaign_log.parquet")
    log["customer_id"] = log["customer_id"].map(written)
    log.to_csv(folder / "campaign_log.csv", sep=";", index=False)
    return folder


def assert_features_agree(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(duck.columns) == list(spark.columns)
    assert duck["customer_id"].tolist() == spark["customer_id"].tolist()
    assert (duck["open_at_as_of"].to_numpy() == spark["open_at_as_of"].to_numpy()).all()
    floats = [c for c in duck.columns if duck[c].dtype.kind == "f"]
    a, b = duck[floats].to_numpy(), spark[floats].to_numpy(dtype=float)
    close = np.isclose(a, b, rtol=1e-12, atol=1e-15, equal_nan=True)
    assert close.all(), [floats[j] for j in np.flatnonzero(~close.all(axis=0))]
    # most values are identical to the last bit; sums added in another order, ln and moments
    # may differ by an ulp or two
    assert (a == b).mean() > 0.97
    # the models see 40 significant bits: identical but where an ulp straddles a rounding step
    seen_a, seen_b = model_inputs(a), model_inputs(b)
    differ = (seen_a != seen_b) & ~(np.isnan(seen_a) & np.isnan(seen_b))
    assert differ.mean() < 1e-3
    assert (np.abs(seen_a - seen_b)[differ] <= 2.0 ** -39 * np.abs(seen_a)[differ]).all()


def test_features_equal_duckdb(scored):
    """The simulator's Parquet files (the Parquet folder Spark wrote for the scores)."""
    on_spark = pd.read_parquet(scored["features"]).sort_values("customer_id",
                                                               ignore_index=True)
    assert_features_agree(scored["duck_features"], on_spark.astype({"as_of": "datetime64[us]"}))


@pytest.mark.parametrize("ids", ["padded", "float"])
def test_features_equal_duckdb_on_a_banks_export(spark, tiny_bank, tmp_path, ids):
    """Semicolon CSV, zero-padded text ids or float ids (``123.0``), times with an offset."""
    inputs = FeatureInputs.from_folder(bank_shaped_otherwise(tiny_bank, tmp_path / "b", ids))
    duck = build_features(inputs, "2025-09-01")
    on_spark = build_features(inputs, "2025-09-01", spark=spark)
    assert_features_agree(duck, on_spark)
    original = pd.read_parquet(tiny_bank / "customers.parquet")["customer_id"]
    expected = sorted(original.map(ID_STYLES["padded"] if ids == "padded" else str))
    assert sorted(duck["customer_id"]) == expected   # padded kept as written, floats whole


def test_regexp_replace_groups_are_written_for_java():
    from uplift.features.spark import to_spark_sql
    from uplift.ids import CANONICAL_SQL

    spark_sql = to_spark_sql("SELECT " + CANONICAL_SQL.format(col="x") + " FROM t")
    assert "'$1'" in spark_sql and "\\1'" not in spark_sql


def test_bad_events_are_refused_by_row_as_on_duckdb(spark, tiny_bank, tmp_path):
    from uplift.errors import SchemaError

    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "customers.parquet").write_bytes((tiny_bank / "customers.parquet").read_bytes())
    events = pd.read_parquet(tiny_bank / "events.parquet").head(50).astype({"amount": object})
    events.loc[3, "amount"] = "12,50"
    events.to_csv(folder / "events.csv", index=False)
    inputs = FeatureInputs.from_folder(folder)
    with pytest.raises(SchemaError) as duck:
        build_features(inputs, "2025-09-01")
    with pytest.raises(SchemaError) as on_spark:
        build_features(inputs, "2025-09-01", spark=spark)
    assert "row 4" in str(duck.value) and "row 4" in str(on_spark.value)


@pytest.fixture(scope="module")
def scored(spark, tiny_bank, trained_models):
    """Single-machine and Spark scores of the tiny bank with the session's trained models."""
    from uplift.campaign import load_campaign_spec
    from uplift.config import Settings
    from uplift.features.build import write_features_spark
    from uplift.pipeline import load_models, planning_date, read_customers, score_customers
    from uplift.planner import default_campaign
    from uplift.spark.scoring import score_frame

    inputs = FeatureInputs.from_folder(tiny_bank)
    models = load_models(trained_models["models"])
    spec = load_campaign_spec(default_campaign())
    settings = Settings()
    day = planning_date(tiny_bank, inputs, None)
    duck_features = build_features(inputs, day)
    local = score_customers(inputs, day, models, spec, settings, features=duck_features)
    folder = tiny_bank.parent / "features.parquet"
    write_features_spark(inputs, day, folder, spark)
    frame = score_frame(spark, spark.read.parquet(str(folder)), read_customers(inputs), models,
                        spec, settings).persist()
    return {"local": local, "frame": frame, "spec": spec, "as_of": pd.Timestamp(day),
            "features": folder, "duck_features": duck_features}


def test_scores_equal_single_machine(scored):
    local = scored["local"].sort_values("customer_id", ignore_index=True)
    remote = scored["frame"].toPandas().sort_values("customer_id", ignore_index=True)
    assert list(local.columns) == list(remote.columns)
    for column in local.columns:
        if pd.api.types.is_float_dtype(local[column]):
            np.testing.assert_allclose(remote[column].to_numpy(float),
                                       local[column].to_numpy(float), rtol=1e-9, atol=1e-9,
                                       err_msg=column)
        else:
            assert local[column].astype(str).tolist() == remote[column].astype(str).tolist(), \
                column


@pytest.mark.parametrize("budget", [1_500.0, 8_000.0])
def test_plan_within_the_certified_gap(spark, scored, budget):
    from uplift.allocate import allocate
    from uplift.spark.allocate import allocate_frame

    local = allocate(scored["local"], scored["spec"], budget=budget, as_of=scored["as_of"])
    remote = allocate_frame(spark, scored["frame"], scored["spec"], budget=budget,
                            as_of=scored["as_of"], curve_points=0)
    assert remote.customers == len(scored["local"])
    assert remote.candidates <= remote.customers
    assert remote.bound >= local.solution.value - 1e-6        # a bound on the whole bank
    slack = remote.gap * remote.bound + local.solution.gap * local.solution.bound + 1e-6
    assert abs(remote.value - local.solution.value) <= slack
    plan = remote.allocation.plan
    assert plan["cost"].sum() <= budget + 1e-6


def test_cli_features_and_plan_on_spark(spark, tiny_bank, trained_models, tmp_path,
                                        monkeypatch):
    """`uplift features` / `uplift plan` with `--engine spark --spark-master local[2]`."""
    import json

    from uplift.cli import run

    monkeypatch.setenv("UPLIFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "features.parquet"
    assert run(["--quiet", "features", "--data", str(tiny_bank), "--as-of", "2025-09-01",
                "--out", str(out), "--engine", "spark", "--spark-master", "local[2]"]) == 0
    assert out.is_dir() and len(pd.read_parquet(out)) == 400
    assert run(["--quiet", "features", "--data", str(tiny_bank), "--as-of", "2025-09-01",
                "--out", str(tmp_path / "f.csv"), "--engine", "spark"]) == 2
    assert run(["--quiet", "features", "--data", str(tiny_bank), "--as-of", "2025-09-01",
                "--out", str(tmp_path / "g.parquet"), "--engine", "sparky"]) == 2
    plan = tmp_path / "plan.csv"
    assert run(["--quiet", "plan", "--budget", "1500", "--data", str(tiny_bank), "--model",
                str(trained_models["models"]), "--out", str(plan), "--report",
                str(tmp_path / "plan.html"), "--engine", "spark", "--spark-master",
                "local[2]"]) == 0
    summary = json.loads((tmp_path / "plan.csv.manifest.json").read_text())["summary"]
    assert summary["engine"]["name"] == "spark" and summary["customers_scored"] > 0
    # a 400-customer bank at 1,500 EUR: the bound is the LP's, a few percent above any plan
    assert 0 <= summary["gap"] < 0.05 and summary["bound"] >= summary[
        "plan_value_before_holdout"] - 1e-6
    assert pd.read_csv(plan)["cost"].sum() <= 1500 + 1e-6
