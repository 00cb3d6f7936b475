"""The data-preparation commands on success, with every option: `labels`, `features`,
`churn dataset`, `validate` and `simulate`. Values are compared with a hand calculation or
with the same command on the unrenamed data, never with printed words alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from uplift.cli import run

from .test_features import write_bank
from .test_labels import CUSTOMERS, EVENTS

# the hand bank of test_labels: as of 2025-06-01, gap 7, horizon 30 -> window 06-08 .. 07-08
EXPECTED_CLOSURES = {1: (1, "closed"), 3: (0, ""), 4: (0, "")}
COLUMN_MAP = "customers: {customer_id: Kundennr}\nevents: {customer_id: Kundennr, ts: Zeit}\n"


@pytest.fixture()
def hand_bank(tmp_path) -> Path:
    return write_bank(tmp_path / "bank", EVENTS, CUSTOMERS)


@pytest.fixture()
def renamed_bank(hand_bank, tmp_path) -> tuple[Path, Path]:
    """The hand bank as semicolon-free UTF-8 CSV with the bank's own column names, and the
    column map that names them."""
    folder = tmp_path / "renamed"
    folder.mkdir()
    customers = pd.read_parquet(hand_bank / "customers.parquet")
    events = pd.read_parquet(hand_bank / "events.parquet")
    customers.rename(columns={"customer_id": "Kundennr"}).to_csv(folder / "customers.csv",
                                                                 index=False)
    events.rename(columns={"customer_id": "Kundennr", "ts": "Zeit"}).to_csv(
        folder / "events.csv", index=False)
    (tmp_path / "columns.yaml").write_text(COLUMN_MAP)
    return folder, tmp_path / "columns.yaml"


def _labels(path: Path) -> dict[int, tuple[int, str]]:
    table = pd.read_csv(path, keep_default_na=False)
    return {int(r.customer_id): (int(r.churned), str(r.churn_reason))
            for r in table.itertuples()}


def test_labels_writes_the_window_by_hand(renamed_bank, tmp_path):
    folder, columns = renamed_bank
    out = tmp_path / "labels.csv"
    assert run(["--quiet", "labels", "--data", str(folder), "--as-of", "2025-06-01",
                "--horizon", "30", "--gap", "7", "--column-map", str(columns),
                "--encoding", "utf-8", "--out", str(out)]) == 0
    assert _labels(out) == EXPECTED_CLOSURES
    manifest = json.loads(out.with_name("labels.csv.manifest.json").read_text())
    assert manifest["arguments"]["horizon"] == 30 and manifest["arguments"]["gap"] == 7


def test_labels_without_a_gap_counts_the_closure_in_the_first_week(hand_bank, tmp_path):
    # customer 5 closes on 06-03: inside a 30-day window that starts on the as-of date
    out = tmp_path / "labels.csv"
    assert run(["--quiet", "labels", "--data", str(hand_bank), "--as-of", "2025-06-01",
                "--horizon", "30", "--gap", "0", "--out", str(out)]) == 0
    assert _labels(out)[5] == (1, "closed")


@pytest.mark.parametrize("min_balance, drained", [(1000.0, 1), (6000.0, 0)])
def test_labels_drain_rule_with_min_balance(hand_bank, tmp_path, min_balance, drained):
    # customer 3 holds 5,000 and moves 4,800 out: 4% left, below a 10% drain share; the rule
    # applies only to balances of at least --min-balance
    out = tmp_path / "labels.csv"
    assert run(["--quiet", "labels", "--data", str(hand_bank), "--as-of", "2025-06-01",
                "--horizon", "30", "--gap", "7", "--drain-share", "0.1", "--min-balance",
                str(min_balance), "--out", str(out)]) == 0
    labels = _labels(out)
    assert labels[3] == ((1, "drained") if drained else (0, ""))
    assert labels[1] == (1, "closed") and labels[4] == (0, "")


def test_churn_dataset_stacks_snapshots_with_the_same_labels(hand_bank, tmp_path):
    out = tmp_path / "train.parquet"
    assert run(["--quiet", "churn", "dataset", "--data", str(hand_bank), "--as-of",
                "2025-06-01", "--as-of", "2025-05-15", "--horizon", "30", "--gap", "7",
                "--threads", "2", "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    june = table[pd.to_datetime(table["as_of"]) == pd.Timestamp("2025-06-01")]
    assert {int(i): int(c) for i, c in zip(june["customer_id"], june["churned"],
                                            strict=True)} == {
        k: v[0] for k, v in EXPECTED_CLOSURES.items()}
    may = table[pd.to_datetime(table["as_of"]) == pd.Timestamp("2025-05-15")]
    # as of 05-15 (window 05-22 .. 06-21): 2 closed before, 5 (06-03) and 1 (06-20) inside
    assert {int(i): int(c) for i, c in zip(may["customer_id"], may["churned"],
                                           strict=True)} == {1: 1, 3: 0, 4: 0, 5: 1}
    assert len(table.columns) > 150                     # features beside the label


def test_features_with_a_column_map_equal_the_unrenamed_features(hand_bank, renamed_bank,
                                                                 tmp_path):
    folder, columns = renamed_bank
    plain, mapped = tmp_path / "plain.parquet", tmp_path / "mapped.parquet"
    assert run(["--quiet", "features", "--data", str(hand_bank), "--as-of", "2025-06-01",
                "--out", str(plain)]) == 0
    assert run(["--quiet", "features", "--data", str(folder), "--as-of", "2025-06-01",
                "--column-map", str(columns), "--encoding", "utf-8", "--threads", "2",
                "--memory-limit", "500MB", "--out", str(mapped)]) == 0
    a, b = pd.read_parquet(plain), pd.read_parquet(mapped)
    assert list(a.columns) == list(b.columns) and len(a) == len(CUSTOMERS)
    a["customer_id"], b["customer_id"] = (a["customer_id"].astype(str),
                                          b["customer_id"].astype(str))
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_features_list_prints_every_registered_feature(capsys):
    from uplift.features import registry_frame

    assert run(["features", "--list"]) == 0
    out = capsys.readouterr().out
    registry = registry_frame()
    assert out.strip().splitlines()[-1] == f"{len(registry)} features"
    missing = [name for name in registry["name"] if name not in out]
    assert not missing


def test_validate_with_a_column_map_and_a_campaign_log(renamed_bank, small_bank_dir, tmp_path,
                                                        capsys):
    folder, columns = renamed_bank
    assert run(["validate", "--data", str(folder), "--column-map", str(columns)]) == 0
    assert "all inputs meet their contracts" in capsys.readouterr().out
    # the same folder without the map lacks customer_id
    assert run(["validate", "--data", str(folder)]) == 2
    assert "customer_id" in capsys.readouterr().err
    log = pd.read_parquet(small_bank_dir / "campaign_log.parquet")
    assert run(["validate", "--campaign-log", str(small_bank_dir / "campaign_log.parquet")]) == 0
    bad = log.head(40).copy()
    bad.loc[bad.index[6], "propensity"] = 1.7
    bad.to_csv(tmp_path / "log.csv", index=False)
    assert run(["validate", "--campaign-log", str(tmp_path / "log.csv")]) == 2
    err = capsys.readouterr().err
    assert "log.csv" in err and "propensity" in err and "7" in err


def test_simulate_months_and_start_date(tmp_path):
    out = tmp_path / "bank"
    assert run(["--quiet", "simulate", "--customers", "40", "--months", "3", "--start-date",
                "2024-03-01", "--seed", "5", "--out", str(out)]) == 0
    events = pd.read_parquet(out / "events.parquet")
    assert events["ts"].min() >= pd.Timestamp("2024-03-01")
    assert events["ts"].max() < pd.Timestamp("2024-06-01")
    assert len(pd.read_parquet(out / "customers.parquet")) == 40
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arguments"]["start_date"] == "2024-03-01"
