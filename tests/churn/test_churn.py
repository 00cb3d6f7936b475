"""Churn model: bring-your-own tables, calibration, reasons, tiers, persistence, bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from uplift.churn import ChurnModel
from uplift.churn.metrics import expected_calibration_error
from uplift.churn.reasons import group_features, load_reason_rules
from uplift.cli import run
from uplift.config import assign_tiers
from uplift.errors import InputError, ModelError, SchemaError
from uplift.schema import DataWarning

from ..conftest import SHARED_DATA


def synthetic_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    balance = rng.lognormal(8, 1, n)
    active = rng.integers(0, 2, n)
    region = rng.choice(["north", "south", "east"], n)
    logit = -2 + 0.04 * (age - 45) - 1.2 * active + 0.8 * (region == "east")
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "row_id": np.arange(n), "client": [f"C{i:06d}" for i in range(n)],
        "name": [f"name {rng.integers(0, 10**6)}" for _ in range(n)], "age": age,
        "balance": balance, "active": active, "region": region, "constant": 1,
        "churned": churned,
    })


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ChurnModel(random_state=1).fit(synthetic_table(), label="churned",
                                              id_col="client", source="t.csv")


def test_id_like_text_and_constant_columns_are_excluded_with_a_warning():
    with pytest.warns(UserWarning, match="row_id: id-like") as caught:
        model = ChurnModel(random_state=1).fit(synthetic_table(), label="churned",
                                               id_col="client", source="t.csv")
    assert "name: free text" in str(caught[0].message)
    assert set(model.spec_.features) == {"age", "balance", "active", "region"}
    assert model.spec_.excluded["constant"] == "constant"


def test_model_learns_and_is_calibrated(fitted):
    table = synthetic_table(4000, seed=5)
    risk = fitted.predict_proba(table, source="new.csv")
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(table["churned"], risk) > 0.70
    assert expected_calibration_error(table["churned"].to_numpy(), risk) < 0.04
    assert fitted.validation_["evaluation"]["roc_auc"] > 0.68


def test_scores_have_tiers_and_reasons(fitted):
    scores = fitted.score(synthetic_table(200, seed=2), source="s.csv")
    assert list(scores.columns) == ["client", "churn_risk", "tier", "reason_1", "reason_2",
                                    "reason_3", "exit_signal"]
    assert set(scores["tier"]) <= {"red", "amber", "green"}
    risky = scores.sort_values("churn_risk").iloc[-1]
    assert risky["reason_1"] in {"age: high", "active: low", "region = east"}


def test_save_and_load_give_identical_scores(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    again = ChurnModel.load(tmp_path / "m")
    table = synthetic_table(300, seed=3)
    pd.testing.assert_frame_equal(fitted.score(table), again.score(table))
    assert (tmp_path / "m" / "booster.txt").read_text().startswith("tree")
    assert "ROC-AUC" in (tmp_path / "m" / "validation.html").read_text()


def test_newer_model_format_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="Retrain"):
        ChurnModel.load(tmp_path / "m")


def test_score_time_columns_must_match_training(fitted):
    table = synthetic_table(50)
    with pytest.raises(SchemaError, match="missing feature column"):
        fitted.score(table.drop(columns="age"))
    with pytest.warns(DataWarning, match="not trained on: surprise"):
        extra = fitted.score(table.assign(surprise=1))
    pd.testing.assert_frame_equal(extra, fitted.score(table))


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.drop(columns="churned"), "label column 'churned' not found"),
    (lambda t: t.assign(churned=np.arange(len(t)) % 3), "must be binary"),
    (lambda t: t.assign(churned=0), "only one class"),
])
def test_bad_labels_exit_2(tmp_path, capsys, mutate, message):
    path = tmp_path / "t.csv"
    mutate(synthetic_table(300)).to_csv(path, index=False)
    code = run(["churn", "fit", "--table", str(path), "--label", "churned", "--out",
                str(tmp_path / "m")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_fit_and_score_round_trip(tmp_path, capsys):
    table = synthetic_table(1500)
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["churn", "fit", "--table", str(tmp_path / "t.csv"), "--label", "churned",
                "--id", "client", "--out", str(tmp_path / "m")]) == 0
    assert "ROC-AUC" in capsys.readouterr().out
    table.drop(columns="churned").assign(extra=1).to_csv(tmp_path / "x.csv", index=False)
    assert run(["churn", "score", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    assert "ignoring 1 column(s) the model was not trained on: extra" in \
        capsys.readouterr().err
    with_extra = pd.read_csv(tmp_path / "s.csv")
    table.drop(columns="churned").to_csv(tmp_path / "x.csv", index=False)
    assert run(["--quiet", "churn", "score", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores["client"]) == list(table["client"])
    pd.testing.assert_frame_equal(scores, with_extra)


def test_scores_carry_the_detected_id_or_row_numbers(tmp_path, capsys):
    table = synthetic_table(600).drop(columns="client")
    table.insert(0, "CustomerId", [f"{i:08d}" for i in range(15_000_000, 15_000_600)])
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["--quiet", "churn", "fit", "--table", str(tmp_path / "t.csv"), "--label",
                "churned", "--out", str(tmp_path / "m")]) == 0
    table.drop(columns="churned").to_csv(tmp_path / "x.csv", index=False)
    assert run(["churn", "score", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    assert "id column 'CustomerId' (detected as id-like at fit)" in capsys.readouterr().err
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"CustomerId": str})
    assert scores.columns[0] == "CustomerId"
    assert list(scores["CustomerId"]) == list(table["CustomerId"])
    table.drop(columns=["churned", "CustomerId", "row_id", "name"]).to_csv(tmp_path / "x.csv",
                                                                  index=False)
    assert run(["--quiet", "churn", "score", "--model", str(tmp_path / "m"), "--table",
                str(tmp_path / "x.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    assert pd.read_csv(tmp_path / "s.csv")["row"].tolist() == list(range(1, 601))


def test_tiers_follow_thresholds():
    tiers = assign_tiers(np.array([0.05, 0.1, 0.29, 0.3, 0.9]), {"red": 0.3, "amber": 0.1})
    assert tiers.tolist() == ["green", "amber", "amber", "red", "red"]


def test_reason_dictionary_covers_the_feature_registry():
    from uplift.features import FEATURES

    mapping = group_features([f.name for f in FEATURES], load_reason_rules())
    unmapped = [f for f, r in mapping.items() if f == r]
    assert unmapped == []
    assert mapping["beh_page_account_closing_30d"].startswith("visits to the account-closing")
    assert mapping["txn_transfer_out_competitor_amount_30d"] == "competitor transfers rising"


def test_churn_on_simulated_snapshots(small_bank_dir, tmp_path):
    assert run(["--quiet", "churn", "dataset", "--data", str(small_bank_dir), "--as-of",
                "2025-10-01", "--as-of", "2025-11-01", "--as-of", "2025-12-01", "--out",
                str(tmp_path / "train.parquet")]) == 0
    assert run(["--quiet", "churn", "fit", "--table", str(tmp_path / "train.parquet"),
                "--label", "churned", "--id", "customer_id", "--time-col", "as_of", "--out",
                str(tmp_path / "m")]) == 0
    validation = json.loads((tmp_path / "m" / "validation.json").read_text())
    assert validation["scheme"].startswith("out-of-time")
    assert validation["evaluation"]["roc_auc"] > 0.65


@pytest.mark.skipif(not (SHARED_DATA / "bank_churn_modelling").exists(),
                    reason="Churn_Modelling.csv not available")
def test_bring_your_own_churn_modelling_table(tmp_path, capsys):
    path = SHARED_DATA / "bank_churn_modelling" / "Churn_Modelling.csv"
    assert run(["churn", "fit", "--table", str(path), "--label", "Exited", "--out",
                str(tmp_path / "m")]) == 0
    captured = capsys.readouterr()
    assert "RowNumber: id-like" in captured.err and "CustomerId: id-like" in captured.err
    assert "Surname: free text" in captured.err
    validation = json.loads((tmp_path / "m" / "validation.json").read_text())
    assert validation["evaluation"]["roc_auc"] > 0.83


def test_fit_rejects_tiny_classes():
    table = synthetic_table(300).assign(churned=0)
    table.loc[:4, "churned"] = 1
    with pytest.raises(InputError, match="at least 10 rows"):
        ChurnModel().fit(table, label="churned")


def test_detected_ids_prefer_columns_named_like_an_id():
    from uplift.features.table import TableSpec, id_like_columns

    spec = TableSpec(features=["age"], excluded={
        "RowNumber": "id-like (every value distinct)", "Surname": "free text (900 values)",
        "CustomerId": "id-like (every value distinct)", "flag": "constant"})
    assert id_like_columns(spec) == ["CustomerId", "RowNumber"]


def test_cli_fit_config_seed_threads_and_score_id(tmp_path, capsys):
    """--config sets the tier thresholds (checked by hand on the scores), --seed makes the
    fit repeatable, --threads changes no number, score --id names the id column."""
    import yaml

    table = synthetic_table(1500)
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(
        {"churn": {"tiers": {"red": 0.5, "amber": 0.2}}}))
    table.drop(columns="churned").to_csv(tmp_path / "x.csv", index=False)
    scored = {}
    for name, extra in {"one": ["--threads", "1"], "two": ["--threads", "2"]}.items():
        assert run(["--quiet", "churn", "fit", "--table", str(tmp_path / "t.csv"), "--label",
                    "churned", "--id", "client", "--config", str(tmp_path / "settings.yaml"),
                    "--seed", "7", *extra, "--out", str(tmp_path / name)]) == 0
        assert run(["--quiet", "churn", "score", "--model", str(tmp_path / name), "--table",
                    str(tmp_path / "x.csv"), "--id", "client", "--out",
                    str(tmp_path / f"{name}.csv")]) == 0
        scored[name] = pd.read_csv(tmp_path / f"{name}.csv")
    capsys.readouterr()
    scores = scored["one"]
    assert scores.columns[0] == "client" and list(scores["client"]) == list(table["client"])
    risk = scores["churn_risk"].to_numpy()
    by_hand = np.where(risk >= 0.5, "red", np.where(risk >= 0.2, "amber", "green"))
    assert (scores["tier"].to_numpy() == by_hand).all()
    assert {"red", "amber", "green"} <= set(scores["tier"])     # the thresholds matter here
    np.testing.assert_allclose(scored["two"]["churn_risk"], risk, atol=1e-9)


def _numeric_model():
    table = synthetic_table().drop(columns=["region"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return table, ChurnModel(random_state=1).fit(table, label="churned", id_col="client",
                                                     source="t.csv")


def test_scores_from_a_matrix_equal_scores_from_the_table(fitted):
    """The online path (a float matrix, columns in any order, more than the model takes)
    gives what ``score`` gives; it declines (None) what only the table path can name."""
    table, model = _numeric_model()
    new = synthetic_table(300, seed=4).drop(columns=["region"])
    expected = model.score(new, source="s.csv")
    columns = ["constant", "balance", "age", "active", "extra"]
    matrix = np.column_stack([new[c].to_numpy(float) for c in columns[:-1]]
                             + [np.zeros(len(new))])
    risk, tier, reasons, signal = model.score_inputs(model.inputs_of(matrix, columns))
    np.testing.assert_array_equal(risk, expected["churn_risk"].to_numpy())
    assert tier.tolist() == expected["tier"].tolist()
    assert reasons.tolist() == expected[["reason_1", "reason_2", "reason_3"]].to_numpy(
        object).tolist()
    assert signal.tolist() == expected["exit_signal"].tolist()
    huge = matrix.copy()
    huge[3, 1] = 1e300
    assert model.inputs_of(huge, columns) is None                 # out of range
    assert model.inputs_of(matrix[:, 1:], columns[1:2] + columns[3:]) is None  # age missing
    # a categorical column needs the table path
    assert fitted.inputs_of(np.zeros((1, 4)), ["age", "balance", "active", "region"]) is None
