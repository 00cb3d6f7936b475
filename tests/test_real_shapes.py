"""Well-formed data shaped unlike the simulator's: padded or float ids, bank flag markers, missing
consent columns, numeric event codes, planted model files. Each case ends in exit 2 with the
file named, or in a plan that contacts no one who must not be contacted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from uplift import io
from uplift.cli import run
from uplift.effects.model import FORMAT_VERSION as EFFECTS_FORMAT_VERSION
from uplift.ids import canonical_ids

OFFERS = ["coupon", "waiver"]


def scores(n: int = 200, ids: object = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": np.arange(1000, 1000 + n) if ids is None else ids,
        "segment": rng.choice(["a", "b"], n), "marketing_consent": "yes",
        "balance": rng.uniform(0, 5000, n)})
    for offer in OFFERS:
        frame[f"gain_{offer}"] = rng.uniform(5, 50, n)      # everyone is worth contacting
        frame[f"cost_{offer}"] = 1.0
    return frame


def write_spec(folder: Path, **extra: object) -> Path:
    spec = {"name": "t", "holdout_fraction": 0.0, "require_consent": True,
            "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0}} for o in OFFERS],
            **extra}
    path = folder / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def allocate_cli(folder: Path, table: pd.DataFrame, name: str = "scores.csv",
                 **spec: object) -> tuple[int, Path]:
    path = folder / name
    if name.endswith(".parquet"):
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False, sep=";" if name.endswith(".txt") else ",")
    out = folder / "plan.csv"
    code = run(["--quiet", "allocate", "--scores", str(path), "--campaign",
                str(write_spec(folder, **spec)), "--budget", "100000", "--out", str(out)])
    return code, out


def contacted(plan_path: Path) -> set[str]:
    plan = pd.read_csv(plan_path, dtype={"customer_id": str})
    return set(plan.loc[plan["holdout"] == 0, "customer_id"])


# --- do-not-contact lists ----------------------------------------------------------------------

def test_padded_text_list_against_numeric_ids_is_refused_with_the_cause(tmp_path, capsys):
    listed = pd.DataFrame({"customer_id": [f"{i:07d}" for i in range(1000, 1200)]})
    listed.to_csv(tmp_path / "dnc.csv", index=False)
    code, out = allocate_cli(tmp_path, scores(), do_not_contact=str(tmp_path / "dnc.csv"))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "dnc.csv" in err and "200 of 200 do-not-contact entries" in err
    assert "leading zeros" in err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_list_with_one_text_entry_still_blocks_every_matching_customer(tmp_path, capsys, fmt):
    listed = pd.DataFrame({"customer_id": [str(i) for i in range(1000, 1100)] + ["ABC-1"]})
    path = tmp_path / f"dnc.{fmt}"
    listed.to_csv(path, index=False) if fmt == "csv" else listed.to_parquet(path)
    code, out = allocate_cli(tmp_path, scores(), do_not_contact=str(path))
    assert code == 0
    assert not contacted(out) & {str(i) for i in range(1000, 1100)}
    assert len(contacted(out)) == 100
    assert "1 of 101 do-not-contact entries" in capsys.readouterr().err


def test_list_matching_no_customer_is_an_error(tmp_path, capsys):
    pd.DataFrame({"customer_id": [5, 6, 7]}).to_csv(tmp_path / "dnc.csv", index=False)
    code, out = allocate_cli(tmp_path, scores(), do_not_contact=str(tmp_path / "dnc.csv"))
    assert code == 2 and not out.exists()
    assert "3 of 3 do-not-contact entries" in capsys.readouterr().err


def test_pseudonymised_scores_and_a_padded_list_are_refused_without_raw_ids(tmp_path, capsys,
                                                                           monkeypatch):
    from uplift.security.pseudonym import protect_ids

    key = b"k" * 32
    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", key.hex())
    table = protect_ids(scores(), key=key)
    listed = pd.DataFrame({"customer_id": [f"{i:07d}" for i in range(1000, 1050)]})
    listed.to_csv(tmp_path / "dnc.csv", index=False)
    code, out = allocate_cli(tmp_path, table, do_not_contact=str(tmp_path / "dnc.csv"))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "0001000" not in err and "data rows 1, 2" in err


# --- flags ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("marker", ["X", "x", "J", "ja", "on", "Y", "1", "TRUE"])
def test_bank_markers_flag_do_not_contact(tmp_path, marker):
    table = scores()
    table["do_not_contact"] = np.where(np.arange(len(table)) % 4 == 0, marker, "")
    code, out = allocate_cli(tmp_path, table)
    assert code == 0
    flagged = set(canonical_ids(table.loc[table["do_not_contact"] == marker, "customer_id"]))
    assert len(flagged) == 50 and not contacted(out) & flagged
    assert len(contacted(out)) == 150


@pytest.mark.parametrize("value", ["DNC", "2", "maybe", "-"])
@pytest.mark.parametrize("column", ["do_not_contact", "marketing_consent"])
def test_unknown_flag_values_are_refused_never_read_as_no(tmp_path, capsys, value, column):
    table = scores()
    table["do_not_contact"] = "0"
    table.loc[[3, 9], column] = value
    code, out = allocate_cli(tmp_path, table)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert f"column '{column}'" in err and "rows 4, 10" in err


def test_blank_consent_means_no_contact(tmp_path):
    table = scores()
    table.loc[:9, "marketing_consent"] = ""
    code, out = allocate_cli(tmp_path, table)
    assert code == 0 and not contacted(out) & set(canonical_ids(table["customer_id"][:10]))


def test_semicolon_separated_scores_are_read_and_reported(tmp_path, capsys):
    table = scores()
    table.loc[:49, "marketing_consent"] = "N"
    code, out = allocate_cli(tmp_path, table, name="scores.txt")
    assert code == 0 and "semicolon-separated" in capsys.readouterr().err
    assert contacted(out) == set(canonical_ids(table["customer_id"][50:]))


# --- identifiers across tables -------------------------------------------------------------------

@pytest.fixture(scope="module")
def reshaped_bank(small_bank_dir, tmp_path_factory) -> dict[str, Path]:
    """The small bank with its tables re-shaped the way real exports look."""
    base = tmp_path_factory.mktemp("reshaped")
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    events = pd.read_parquet(small_bank_dir / "events.parquet")
    log = pd.read_parquet(small_bank_dir / "campaign_log.parquet")
    banks = {}

    def bank(name: str, c: pd.DataFrame, e: pd.DataFrame, lg: pd.DataFrame, csv: bool) -> None:
        folder = base / name
        folder.mkdir()
        for table, frame in (("customers", c), ("events", e), ("campaign_log", lg)):
            if csv:
                frame.to_csv(folder / f"{table}.csv", index=False)
            else:
                frame.to_parquet(folder / f"{table}.parquet")
        banks[name] = folder

    padded = {"customer_id": lambda d: d["customer_id"].map(lambda v: f"{v:012d}")}
    bank("padded_vs_int", customers.assign(**padded), events, log.assign(**padded), csv=True)
    bank("float_events", customers, events.assign(customer_id=events["customer_id"]
                                                  .astype(float)), log, csv=False)
    bank("padded_everywhere", customers.assign(**padded), events.assign(**padded),
         log.assign(**padded), csv=True)
    codes = {t: i for i, t in enumerate(sorted(events["event_type"].unique()))}
    bank("numeric_event_codes", customers, events.assign(event_type=events["event_type"]
                                                         .map(codes)), log, csv=False)
    bank("no_consent", customers.drop(columns=["marketing_consent"]), events, log, csv=False)
    return banks


def test_padded_customers_against_numeric_events_are_refused(reshaped_bank, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    code = run(["features", "--data", str(reshaped_bank["padded_vs_int"]), "--as-of",
                "2026-01-01", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "events.csv" in err and "customers.csv" in err and "leading zeros" in err
    code = run(["validate", "--data", str(reshaped_bank["padded_vs_int"])])
    assert code == 2 and "leading zeros" in capsys.readouterr().err


def test_float_ids_in_events_match_integer_customers(reshaped_bank, small_bank_dir, tmp_path):
    out = tmp_path / "f.parquet"
    assert run(["--quiet", "features", "--data", str(reshaped_bank["float_events"]),
                "--as-of", "2026-01-01", "--out", str(out)]) == 0
    reference = tmp_path / "ref.parquet"
    assert run(["--quiet", "features", "--data", str(small_bank_dir), "--as-of", "2026-01-01",
                "--out", str(reference)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(reference))


def test_padded_ids_everywhere_keep_their_zeros(reshaped_bank, tmp_path):
    out = tmp_path / "f.csv"
    assert run(["--quiet", "features", "--data", str(reshaped_bank["padded_everywhere"]),
                "--as-of", "2026-01-01", "--out", str(out)]) == 0
    ids = pd.read_csv(out, dtype={"customer_id": str})["customer_id"]
    assert ids.str.len().eq(12).all() and ids.str.startswith("0000").all()
    assert pd.read_csv(out)["beh_logins_30d"].sum() > 0        # the events were joined


def test_numeric_event_type_codes_are_refused(reshaped_bank, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    code = run(["features", "--data", str(reshaped_bank["numeric_event_codes"]), "--as-of",
                "2026-01-01", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "column 'event_type'" in capsys.readouterr().err


def test_plan_refuses_a_missing_consent_column_before_any_work(reshaped_bank, tmp_path,
                                                               capsys, monkeypatch):
    monkeypatch.setenv("UPLIFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "plan.csv"
    code = run(["plan", "--budget", "10000", "--data", str(reshaped_bank["no_consent"]),
                "--out", str(out), "--report", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "customers.parquet" in err and "marketing_consent" in err
    assert not (tmp_path / "cache" / "models").exists()              # refused before training


# --- model folders -------------------------------------------------------------------------------

class _Payload:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def test_planted_pickle_never_runs(tmp_path, capsys):
    import hashlib

    folder = tmp_path / "model"
    folder.mkdir()
    marker = tmp_path / "marker.txt"
    payload = pickle.dumps(_Payload(marker))
    (folder / "estimator.pkl").write_bytes(payload)
    # the attacker can write model.json too: a matching SHA-256, a made-up signature
    (folder / "model.json").write_text(json.dumps({
        "format": "uplift-effects-model", "format_version": EFFECTS_FORMAT_VERSION,
        "estimator_sha256": hashlib.sha256(payload).hexdigest(),
        "estimator_hmac": hashlib.sha256(b"forged" + payload).hexdigest()}))
    table = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(table, index=False)
    code = run(["effects", "predict", "--model", str(folder), "--table", str(table), "--out",
                str(tmp_path / "p.csv")])
    assert code == 2 and not marker.exists()
    assert "estimator.pkl" in capsys.readouterr().err


def test_model_signed_under_another_key_is_refused(tmp_path, monkeypatch):
    from uplift.effects.model import EffectsModel
    from uplift.errors import ModelError
    from uplift.security import keys

    folder = tmp_path / "model"
    folder.mkdir()
    data = pickle.dumps({"not": "a model"})
    (folder / "estimator.pkl").write_bytes(data)
    monkeypatch.setenv("UPLIFT_MODEL_KEY", ("ab" * 32))
    signature = keys.model_signature(data, "uplift effects pickle")
    (folder / "model.json").write_text(json.dumps({
        "format": "uplift-effects-model", "format_version": EFFECTS_FORMAT_VERSION,
        "estimator_hmac": signature}))
    with pytest.raises(ModelError, match="not an effects model"):
        EffectsModel.load(folder)                     # right key: unpickled, then type-checked
    monkeypatch.setenv("UPLIFT_MODEL_KEY", ("cd" * 32))
    with pytest.raises(ModelError, match="not signed with this installation's model key"):
        EffectsModel.load(folder)


def test_damaged_booster_is_refused_before_lightgbm_reads_it(tmp_path, capsys):
    from uplift.churn import ChurnModel

    rng = np.random.default_rng(0)
    table = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})
    table["churned"] = (table["x"] + rng.normal(size=400) > 0.5).astype(int)
    model = ChurnModel().fit(table, label="churned")
    model.save(tmp_path / "churn")
    booster = tmp_path / "churn" / "booster.txt"
    booster.write_bytes(booster.read_bytes()[:200] + b"\x00garbage" * 50)
    table.to_csv(tmp_path / "t.csv", index=False)
    code = run(["churn", "score", "--model", str(tmp_path / "churn"), "--table",
                str(tmp_path / "t.csv"), "--out", str(tmp_path / "s.csv")])
    assert code == 2 and "booster.txt" in capsys.readouterr().err


def test_model_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "models"
    with io.replaced_directory(target, marker="fingerprint.json") as stage:
        (stage / "fingerprint.json").write_text("{}")
        (stage / "backtest.parquet").write_text("old backtest")
        (stage / "churn").mkdir()
        (stage / "churn" / "booster.txt").write_text("old booster")
    with pytest.raises(RuntimeError), \
            io.replaced_directory(target, marker="fingerprint.json") as stage:
        (stage / "backtest.parquet").write_text("new backtest")
        raise RuntimeError("training failed half-way")
    assert (target / "backtest.parquet").read_text() == "old backtest"
    assert (target / "churn" / "booster.txt").read_text() == "old booster"
    assert not list(tmp_path.glob(".models.*"))                          # no staging left
    with io.replaced_directory(target, marker="fingerprint.json") as stage:
        (stage / "fingerprint.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["fingerprint.json"]


def test_a_folder_of_the_users_is_never_replaced(tmp_path):
    from uplift.errors import InputError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("precious")
    with pytest.raises(InputError, match="not a folder this tool wrote"), \
            io.replaced_directory(mine, marker="fingerprint.json"):
        pass
    assert (mine / "thesis.docx").read_text() == "precious"


def test_stale_staging_from_a_killed_run_is_cleaned_under_the_lock(tmp_path):
    (tmp_path / ".models.abc123.staging").mkdir()
    (tmp_path / ".models.xyz.part").write_text("half")
    with io.directory_lock(tmp_path / "models"):
        assert not list(tmp_path.glob(".models.*.staging"))
        assert not list(tmp_path.glob(".models.*.part"))


# --- what used to end in "internal error" ---------------------------------------------------

@pytest.mark.parametrize("rule, message", [
    ("1/0 > 1", "ZeroDivisionError"),
    ("segment * 3 == 'aaa'", "arithmetic on column(s) segment"),
    ("'a' * 1000000000 == segment", "for numbers only"),
    ("balance", "not true/false"),
    (" or ".join(["balance > 1"] * 60), "at most 500"),
    ("not " * 30 + "balance > 1", "too complex"),
])
def test_bad_eligibility_rules_are_input_errors(tmp_path, capsys, rule, message):
    spec = {"name": "t", "holdout_fraction": 0.0, "require_consent": True,
            "offers": [{"name": o, "channel": "email", "cost": {"fixed": 1.0},
                        "eligibility": rule} for o in OFFERS]}
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(spec))
    scores().to_csv(tmp_path / "s.csv", index=False)
    code = run(["allocate", "--scores", str(tmp_path / "s.csv"), "--campaign",
                str(tmp_path / "campaign.yaml"), "--budget", "100", "--out",
                str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "internal error" not in err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("budget", ["inf", "1e300", "nan", "-5"])
def test_absurd_budgets_are_refused(tmp_path, capsys, budget):
    scores().to_csv(tmp_path / "s.csv", index=False)
    code = run(["allocate", "--scores", str(tmp_path / "s.csv"), "--campaign",
                str(write_spec(tmp_path)), "--budget", budget, "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "budget" in err and "internal error" not in err


def test_a_folder_given_as_a_table_and_an_unwritable_output_are_refused_up_front(tmp_path,
                                                                                 capsys):
    (tmp_path / "folder.csv").mkdir()
    code = run(["allocate", "--scores", str(tmp_path / "folder.csv"), "--campaign",
                str(write_spec(tmp_path)), "--budget", "100", "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "is a folder" in capsys.readouterr().err
    scores().to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    code = run(["allocate", "--scores", str(tmp_path / "s.csv"), "--campaign",
                str(write_spec(tmp_path)), "--budget", "100", "--out",
                str(tmp_path / "blocker" / "p.csv")])
    assert code == 2 and "cannot be written" in capsys.readouterr().err


def test_a_header_beyond_the_csv_field_limit_is_an_input_error(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("customer_id," + "x" * 200_000 + "\n1,2\n")
    code = run(["validate", "--customers", str(tmp_path / "c.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "c.csv" in err and "internal error" not in err


def test_a_second_writer_waits_for_the_first(tmp_path):
    import threading

    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with io.directory_lock(tmp_path / "models"):
            order.append("first in")
            holding.set()
            threading.Event().wait(0.3)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    with io.directory_lock(tmp_path / "models"):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


# --- found by trying the product on re-shaped exports --------------------------------------------

def test_float_ids_beyond_two_to_the_53_are_refused(tmp_path, capsys):
    big = [12345678901234500 + i for i in range(100)]
    table = scores(100, ids=[str(i) for i in big])
    pd.DataFrame({"customer_id": np.array(big, dtype=float)}).to_parquet(tmp_path / "dnc.parquet")
    code, out = allocate_cli(tmp_path, table, do_not_contact=str(tmp_path / "dnc.parquet"))
    assert code == 2 and not out.exists()
    assert "not exact whole numbers" in capsys.readouterr().err


def test_float_event_ids_beyond_two_to_the_53_are_refused(reshaped_bank, tmp_path, capsys,
                                                        small_bank_dir):
    bank = tmp_path / "bank"
    bank.mkdir()
    for table in ("customers", "campaign_log"):
        frame = pd.read_parquet(small_bank_dir / f"{table}.parquet")
        frame.assign(customer_id=frame["customer_id"] + 12345678900000000).to_parquet(
            bank / f"{table}.parquet")
    events = pd.read_parquet(small_bank_dir / "events.parquet")
    events.assign(customer_id=(events["customer_id"] + 12345678900000000).astype(float)
                  ).to_parquet(bank / "events.parquet")
    out = tmp_path / "f.parquet"
    assert run(["features", "--data", str(bank), "--as-of", "2026-01-01", "--out",
                str(out)]) == 2
    assert "beyond 2^53" in capsys.readouterr().err and not out.exists()
    assert run(["validate", "--data", str(bank)]) == 2
    assert "not exact whole numbers" in capsys.readouterr().err


def contact_limit_cli(folder: Path, contacts: pd.DataFrame) -> tuple[int, Path]:
    contacts.to_csv(folder / "contacts.csv", index=False)
    table = scores()
    table.to_csv(folder / "scores.csv", index=False)
    out = folder / "plan.csv"
    code = run(["--quiet", "allocate", "--scores", str(folder / "scores.csv"), "--campaign",
                str(write_spec(folder, contact_limit={"max_contacts": 2, "window_days": 90})),
                "--budget", "100000", "--contacts", str(folder / "contacts.csv"), "--as-of",
                "2026-01-01", "--out", str(out)])
    return code, out


def test_contact_history_written_another_way_is_refused(tmp_path, capsys):
    padded = pd.DataFrame({"customer_id": [f"{i:012d}" for i in range(1000, 1050)] * 2,
                           "contacted_at": "2025-12-05"})
    code, out = contact_limit_cli(tmp_path, padded)
    assert code == 2 and not out.exists() and "leading zeros" in capsys.readouterr().err
    german = pd.DataFrame({"customer_id": list(range(1000, 1050)) * 2,
                           "contacted_at": "05.12.2025"})
    code, out = contact_limit_cli(tmp_path, german)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "contacted_at" in err and "ISO 8601" in err
    iso = german.assign(contacted_at="2025-12-05")
    code, out = contact_limit_cli(tmp_path, iso)
    assert code == 0 and not contacted(out) & {str(i) for i in range(1000, 1050)}


def test_a_partly_padded_do_not_contact_list_is_refused(tmp_path, capsys):
    ids = [str(i) for i in range(1000, 1050)] + [f"{i:07d}" for i in range(1050, 1100)]
    pd.DataFrame({"customer_id": ids}).to_csv(tmp_path / "dnc.csv", index=False)
    code, out = allocate_cli(tmp_path, scores(), do_not_contact=str(tmp_path / "dnc.csv"))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "50 of 100" in err and "leading zeros" in err


def test_one_customer_written_two_ways_is_a_duplicate(tmp_path, capsys):
    table = scores(3, ids=["10000004", "10000004.0", " 10000005 "])
    code, out = allocate_cli(tmp_path, table)
    assert code == 2 and "duplicate customer_id" in capsys.readouterr().err
    floats = scores(3, ids=[10000004.0, 10000005.0, 10000006.0])
    code, out = allocate_cli(tmp_path, floats, name="scores.parquet")
    assert code == 0
    assert pd.read_csv(out, dtype={"customer_id": str})["customer_id"].tolist() == [
        "10000004", "10000005", "10000006"]


def test_features_are_protected_like_every_derived_table(small_bank_dir, tmp_path,
                                                         monkeypatch):
    from uplift.security.envelope import is_encrypted

    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", "ab" * 32)
    out = tmp_path / "f.parquet"
    assert run(["--quiet", "features", "--data", str(small_bank_dir), "--as-of", "2026-01-01",
                "--out", str(out)]) == 0
    assert pd.read_parquet(out)["customer_id"].str.startswith("p-").all()
    monkeypatch.setenv("UPLIFT_MASTER_KEY", "cd" * 32)
    out = tmp_path / "g.csv"
    assert run(["--quiet", "--allow-plaintext", "features", "--data", str(small_bank_dir),
                "--as-of", "2026-01-01", "--out", str(out)]) == 0
    assert is_encrypted(out)


def test_validate_reads_flags_like_plan_does(small_bank_dir, tmp_path, capsys):
    customers = pd.read_parquet(small_bank_dir / "customers.parquet")
    customers["marketing_consent"] = np.where(customers.index % 3 == 0, "X", "")
    customers["do_not_contact"] = np.where(customers.index % 5 == 0, "X", "")
    customers.to_csv(tmp_path / "c.csv", index=False)
    assert run(["--quiet", "validate", "--customers", str(tmp_path / "c.csv")]) == 0
    customers.loc[[4, 8], "do_not_contact"] = "DNC"
    customers.to_csv(tmp_path / "c.csv", index=False)
    assert run(["validate", "--customers", str(tmp_path / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert "column 'do_not_contact'" in err and "rows 5, 9" in err


def test_an_eligibility_rule_matching_no_one_is_reported(tmp_path, capsys):
    spec = {"name": "t", "holdout_fraction": 0.0, "require_consent": True,
            "offers": [{"name": "coupon", "channel": "email", "cost": {"fixed": 1.0},
                        "eligibility": "segment == 'Private Banking'"}]}
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(spec))
    table = scores().drop(columns=["gain_waiver", "cost_waiver"])
    table.to_csv(tmp_path / "s.csv", index=False)
    assert run(["allocate", "--scores", str(tmp_path / "s.csv"), "--campaign",
                str(tmp_path / "campaign.yaml"), "--budget", "100", "--out",
                str(tmp_path / "p.csv")]) == 0
    assert "matches no customer" in capsys.readouterr().err
