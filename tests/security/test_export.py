"""`uplift export` of a plan with raw ids: canonical ids, yes/no holdout flags, a check
against the customers table the user named, and never a write over one of the bank's
tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from uplift.cli import run


def plan(ids: list, holdout: list) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "holdout": holdout,
                         "offer": ["fee_waiver"] * len(ids),
                         "expected_gain": [30.0, 20.0, 10.0, 5.0][:len(ids)]})


@pytest.fixture
def bank(tmp_path):
    folder = tmp_path / "bank"
    folder.mkdir()
    pd.DataFrame({"customer_id": ["0001", "0002", "0003", "0004"],
                  "segment": ["a"] * 4, "open_date": ["2020-01-01"] * 4}).to_csv(
        folder / "customers.csv", index=False)
    pd.DataFrame({"customer_id": ["0001"], "ts": ["2025-01-01"], "event_type": ["login"],
                  "amount": [0.0]}).to_csv(folder / "events.csv", index=False)
    return folder


@pytest.mark.parametrize(("ids", "holdout"), [
    ([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 0]),
    (["1", "2", "3", "4"], ["N", "J", "N", "N"]),
    ([1, 2, 3, 4], ["no", "yes", "no", "no"]),
])
def test_ids_are_canonical_and_the_holdout_is_a_flag(tmp_path, ids, holdout):
    plan(ids, holdout).to_csv(tmp_path / "plan.csv", index=False)
    assert run(["--quiet", "export", "--plan", str(tmp_path / "plan.csv"), "--out",
                str(tmp_path / "list.csv")]) == 0
    listed = pd.read_csv(tmp_path / "list.csv", dtype={"customer_id": str})
    assert listed["customer_id"].tolist() == ["1", "3", "4"]
    manifest = json.loads((tmp_path / "list.csv.manifest.json").read_text())
    assert manifest["command"] == "export" and manifest["outputs"] == {"list.csv": 3}


@pytest.mark.parametrize("table", ["customers.csv", "events.csv"])
def test_the_banks_tables_are_never_written_over(tmp_path, bank, capsys, table):
    plan(["0001", "0002", "0003", "0004"], [0, 1, 0, 0]).to_csv(tmp_path / "plan.csv",
                                                               index=False)
    before = (bank / table).read_bytes()
    code = run(["export", "--plan", str(tmp_path / "plan.csv"), "--data", str(bank),
                "--out", str(bank / table)])
    assert code == 2 and "overwrite" in capsys.readouterr().err
    assert (bank / table).read_bytes() == before


def test_a_plan_of_other_ids_than_the_named_customers_is_refused(tmp_path, bank, capsys):
    plan([1, 2, 3, 4], [0, 1, 0, 0]).to_csv(tmp_path / "plan.csv", index=False)
    code = run(["export", "--plan", str(tmp_path / "plan.csv"), "--data", str(bank), "--out",
                str(tmp_path / "list.csv")])
    assert code == 2 and "leading zeros" in capsys.readouterr().err
    assert not (tmp_path / "list.csv").exists()
    plan(["0001", "0002", "0003", "0004"], [0, 1, 0, 0]).to_csv(tmp_path / "plan.csv",
                                                               index=False)
    assert run(["--quiet", "export", "--plan", str(tmp_path / "plan.csv"), "--data", str(bank),
                "--out", str(tmp_path / "list.csv")]) == 0
    assert pd.read_csv(tmp_path / "list.csv", dtype={"customer_id": str})[
        "customer_id"].tolist() == ["0001", "0003", "0004"]


def test_a_blank_holdout_is_refused_not_contacted(tmp_path, capsys):
    """A blank holdout flag is unknown: refused, never read as 'contact'."""
    plan([1, 2, 3, 4], ["", "X", "", ""]).to_csv(tmp_path / "plan.csv", index=False)
    code = run(["export", "--plan", str(tmp_path / "plan.csv"), "--out",
                str(tmp_path / "list.csv")])
    assert code == 2 and "column 'holdout': empty values in rows 1, 3, 4" in (
        capsys.readouterr().err)
    assert not (tmp_path / "list.csv").exists()


@pytest.mark.parametrize("edit", ["holdout 0 without an offer", "action says held out"])
def test_a_plan_whose_rows_contradict_their_holdout_is_refused(tmp_path, capsys, edit):
    rows = plan(["1", "2", "3", "4"], [0, 1, 0, 0]).assign(
        action=["contact", "hold out: do not contact", "contact", "contact"],
        offer=["fee_waiver", "", "fee_waiver", "fee_waiver"])
    if edit == "holdout 0 without an offer":
        rows.loc[1, "holdout"] = 0
        rows.loc[1, "action"] = "contact"
        expected = "0 (contacted) but no offer in row 2"
    else:
        rows.loc[2, "action"] = "hold out: do not contact"
        expected = "'holdout' and 'action' disagree in row 3"
    rows.to_csv(tmp_path / "plan.csv", index=False)
    code = run(["export", "--plan", str(tmp_path / "plan.csv"), "--out",
                str(tmp_path / "list.csv")])
    assert code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "list.csv").exists()
