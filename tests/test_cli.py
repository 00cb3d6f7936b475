"""The command-line boundary: exit codes, messages without tracebacks, no partial output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from uplift.cli import run

ROOT = Path(__file__).resolve().parents[1]


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def test_help_lists_every_command(capsys):
    # its speed is measured by evaluation/bench_startup.py, not asserted here
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("simulate", "validate", "features", "train", "plan", "allocate", "evaluate",
                    "simulate-policy", "outcomes", "export", "churn", "effects", "keys", "audit",
                    "serve", "tokens"):
        assert command in out, command


def test_validate_accepts_the_simulated_bank(small_bank_dir, capsys):
    code = run(["validate", "--data", str(small_bank_dir), "--campaign",
                str(ROOT / "campaigns" / "retention_demo.yaml")])
    assert code == 0, capsys.readouterr().err
    assert "all inputs meet their contracts" in capsys.readouterr().out


@pytest.mark.parametrize("offers", [["fee_waiver"], ["fee_waiver", "health_report"],
                                    ["fee_waiver", "gift_card"]])
def test_validate_takes_a_campaign_with_fewer_offers_than_the_past_arms(
        small_bank_dir, tmp_path, capsys, offers):
    """A new campaign may offer fewer things than the past one tried (the other arms still
    inform the models); an offer the past campaign never tried is refused (its effect cannot
    be learned), as `plan` refuses it."""
    import yaml

    spec = yaml.safe_load((ROOT / "campaigns" / "retention_demo.yaml").read_text())
    known = {o["name"]: o for o in spec["offers"]}
    spec["offers"] = [known.get(name, {"name": name, "channel": "email",
                                       "cost": {"fixed": 1.0}}) for name in offers]
    spec["capacities"] = []
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = run(["validate", "--data", str(small_bank_dir), "--campaign", str(path)])
    out, err = capsys.readouterr()
    if "gift_card" in offers:
        assert code == 2 and "gift_card never appear" in err and "column 'arm'" in err
    else:
        assert code == 0, err
        assert "are not offered by this campaign" in out and "advisor_visit" in out


@pytest.fixture()
def bad_inputs(tmp_path, small_bank_dir):
    customers = pd.read_parquet(small_bank_dir / "customers.parquet").head(50)
    events = pd.read_parquet(small_bank_dir / "events.parquet").head(200)
    folder = tmp_path / "inputs"
    folder.mkdir()
    customers.drop(columns="customer_id").to_csv(folder / "no_id.csv", index=False)
    pd.concat([customers, customers.head(2)]).to_csv(folder / "dupes.csv", index=False)
    bad_ts = events.astype({"ts": str})
    bad_ts.loc[bad_ts.index[[3, 7]], "ts"] = "not a date"
    bad_ts.to_csv(folder / "events.csv", index=False)
    spec = (ROOT / "campaigns" / "retention_demo.yaml").read_text()
    (folder / "neg.yaml").write_text(spec.replace("fixed: 24.0", "fixed: -24.0"))
    (folder / "cap.yaml").write_text(spec.replace("{offer: advisor_visit", "{offer: advisor"))
    return folder


@pytest.mark.parametrize("args, expected", [
    (["--customers", "{f}/no_id.csv"], ["no_id.csv", "missing required column 'customer_id'"]),
    (["--customers", "{f}/dupes.csv"], ["dupes.csv", "duplicate customer_id", "rows 1, 2, 51, 52"]),
    (["--events", "{f}/events.csv"], ["events.csv", "column 'ts'", "rows 4, 8"]),
    (["--campaign", "{f}/neg.yaml"], ["neg.yaml", "offers.1.cost.fixed",
                                      "greater than or equal to 0"]),
    (["--campaign", "{f}/cap.yaml"], ["cap.yaml", "unknown offer 'advisor'"]),
])
def test_bad_input_exits_2_with_a_named_problem(bad_inputs, capsys, args, expected):
    before = files_in(bad_inputs)
    code = run(["validate", *[a.format(f=bad_inputs) for a in args]])
    err = capsys.readouterr().err
    assert code == 2
    for fragment in expected:
        assert fragment in err
    assert "Traceback" not in err
    assert files_in(bad_inputs) == before


def test_validate_reports_every_bad_input_not_only_the_first(bad_inputs, small_bank_dir,
                                                             capsys):
    """Two bad tables and a good one: both problems in one run (before: the first only)."""
    log = pd.read_parquet(small_bank_dir / "campaign_log.parquet").head(40)
    log.loc[log.index[6], "propensity"] = 0.0
    log.to_csv(bad_inputs / "log.csv", index=False)
    code = run(["validate", "--customers", f"{bad_inputs}/dupes.csv", "--events",
                f"{bad_inputs}/events.csv", "--campaign-log", f"{bad_inputs}/log.csv"])
    err = capsys.readouterr().err
    assert code == 2 and "3 inputs with problems (every input was checked)" in err
    for fragment in ("duplicate customer_id", "column 'ts'", "rows 4, 8", "log.csv",
                     "column 'propensity'", "row 7"):
        assert fragment in err


def test_debug_flag_shows_the_traceback(bad_inputs, capsys):
    assert run(["--debug", "validate", "--customers", f"{bad_inputs}/no_id.csv"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys):
    assert run(["simulate", "--bogus"]) == 2


def test_simulate_refuses_a_folder_with_other_files(tmp_path, capsys):
    (tmp_path / "precious.csv").write_text("keep me")
    assert run(["simulate", "--customers", "10", "--out", str(tmp_path)]) == 2
    assert "other files" in capsys.readouterr().err
    assert files_in(tmp_path) == {"precious.csv"}


def test_simulate_can_refresh_its_own_output(tmp_path):
    out = tmp_path / "bank"
    assert run(["--quiet", "simulate", "--customers", "50", "--out", str(out)]) == 0
    assert run(["--quiet", "simulate", "--customers", "60", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out / "customers.parquet")) == 60
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    shutil.rmtree(out)


def test_global_options_are_accepted_after_the_command(small_bank_dir, tmp_path, capsys):
    from uplift.cli import global_options_first

    assert global_options_first(["plan", "--quiet", "--budget", "5"]) == [
        "--quiet", "plan", "--budget", "5"]
    assert global_options_first(["plan", "-q", "--debug=true"]) == ["--quiet", "--debug",
                                                                    "plan"]
    assert global_options_first(["--debug=false", "plan"]) == ["plan"]
    assert run(["validate", "--data", str(small_bank_dir), "--quiet"]) == 0
    assert run(["validate", "--data", str(small_bank_dir), "--debug=true"]) == 0
    capsys.readouterr()
    assert run(["simulate", "--out", str(tmp_path / "b"), "--customers", "0", "-q"]) == 2
    assert "error:" in capsys.readouterr().err        # errors still shown when quiet


def test_validate_checks_eligibility_columns_against_the_data(small_bank_dir, tmp_path, capsys):
    spec = (ROOT / "campaigns" / "retention_demo.yaml").read_text()
    (tmp_path / "typo.yaml").write_text(spec.replace('eligibility: "aum >= 100000"',
                                                     'eligibility: "balance >= 100000"'))
    code = run(["validate", "--data", str(small_bank_dir), "--campaign",
                str(tmp_path / "typo.yaml")])
    assert code == 2
    err = capsys.readouterr().err
    assert "advisor_visit" in err and "balance" in err and "customers" in err
    assert run(["validate", "--data", str(small_bank_dir), "--campaign",
                str(ROOT / "campaigns" / "retention_demo.yaml")]) == 0
    assert "offer advisor_visit:" in capsys.readouterr().out
