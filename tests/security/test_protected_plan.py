"""`uplift plan` with pseudonymisation and encryption on: no raw id in any artefact, nothing
readable without the key, and the plan maps back exactly to the unprotected plan."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from uplift import io
from uplift.cli import run
from uplift.security.envelope import is_encrypted

TABLE_SUFFIXES = (".parquet", ".csv", ".txt", ".pkl", ".gz")


def plan_args(bank: Path, out: Path) -> list[str]:
    # the bank's source tables are plaintext: with a master key they need --allow-plaintext
    return ["--quiet", "--allow-plaintext", "plan", "--budget", "20000", "--data", str(bank),
            "--out", str(out / "plan.parquet"), "--report", str(out / "plan.html")]


@pytest.fixture(scope="module")
def runs(small_bank_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("protected")
    patch = pytest.MonkeyPatch()
    patch.setenv("UPLIFT_CACHE", str(work / "cache"))
    patch.setenv("UPLIFT_AUDIT_LOG", str(work / "audit.jsonl"))
    (work / "plain").mkdir()
    assert run(plan_args(small_bank_dir, work / "plain")) == 0
    assert run(["keys", "new", "--out", str(work / "keys" / "pseudonym.key")]) == 0
    assert run(["keys", "new", "--out", str(work / "keys" / "master.key")]) == 0
    patch.setenv("UPLIFT_PSEUDONYM_KEY_FILE", str(work / "keys" / "pseudonym.key"))
    patch.setenv("UPLIFT_MASTER_KEY_FILE", str(work / "keys" / "master.key"))
    assert run(plan_args(small_bank_dir, work / "protected")) == 0
    yield work, patch
    patch.undo()


def artefacts(work: Path) -> list[Path]:
    """Every file the protected run wrote: plan folder, its models, features cache, audit."""
    manifest = json.loads((work / "protected" / "plan.parquet.manifest.json").read_text())
    models = Path(manifest["summary"]["models"])
    roots = [work / "protected", models, work / "cache" / "features" / f"{models.name}.parquet",
             work / "audit.jsonl"]
    files = []
    for root in roots:
        assert root.exists(), root
        files += [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return files


def test_no_raw_customer_id_in_any_artefact(runs, small_bank_dir):
    work, _ = runs
    raw = set(pd.read_parquet(small_bank_dir / "customers.parquet")["customer_id"].astype(str))
    width = {len(i) for i in raw}
    assert len(width) == 1
    digits = re.compile(rf"(?<!\d)\d{{{width.pop()}}}(?!\d)")
    files = artefacts(work)
    for path in files:
        plain = io.read_bytes(path) if is_encrypted(path) else path.read_bytes()   # decrypted
        assert not set(digits.findall(plain.decode("latin-1"))) & raw, path
        if path.name.endswith((".parquet", ".csv")):
            table = io.read_table(path)
            for column in table.columns:
                assert not set(table[column].astype(str)) & raw, (path, column)
    assert len(files) >= 15
    control = pd.read_parquet(small_bank_dir / "customers.parquet").head(50).to_csv()
    assert set(digits.findall(control)) & raw          # the check can fail: raw ids are found


def test_nothing_tabular_is_readable_without_the_key(runs):
    work, _ = runs
    tables = [p for p in artefacts(work) if p.name.endswith(TABLE_SUFFIXES)]
    assert len(tables) >= 6
    assert all(is_encrypted(p) for p in tables), [p for p in tables if not is_encrypted(p)]
    with pytest.raises(Exception):  # noqa: B017 - pyarrow cannot parse it
        pd.read_parquet(work / "protected" / "plan.parquet")


def test_plan_round_trips_exactly_through_the_audited_export(runs, small_bank_dir, capsys):
    work, _ = runs
    listed = work / "export" / "campaign_list.parquet"
    assert run(["--allow-plaintext", "export", "--plan", str(work / "protected" /
                                                             "plan.parquet"), "--data",
                str(small_bank_dir), "--out", str(listed), "--include-holdout"]) == 0
    plain = pd.read_parquet(work / "plain" / "plan.parquet")
    exported = pd.read_parquet(listed)
    plain["customer_id"] = plain["customer_id"].astype(str)
    key = ["customer_id"]
    pd.testing.assert_frame_equal(
        exported.sort_values(key).reset_index(drop=True),
        plain.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert run(["audit", "verify", "--log", str(work / "audit.jsonl")]) == 0
    entries = (work / "audit.jsonl").read_text().splitlines()
    assert '"command": "export"' in entries[-2]


def test_a_plaintext_plan_or_model_is_refused_while_a_master_key_is_set(runs, small_bank_dir,
                                                                        capsys):
    """A forged plaintext plan (holdout flags cleared) must not release anything; a plaintext
    booster planted in the model folder must not be read."""
    work, _ = runs
    forged = io.read_table(work / "protected" / "plan.parquet").assign(holdout=0)
    forged.to_parquet(work / "forged.parquet")                        # written without the key
    out = work / "export" / "forged_list.csv"
    assert run(["--allow-plaintext", "export", "--plan", str(work / "forged.parquet"),
                "--data", str(small_bank_dir), "--out", str(out)]) == 2
    assert "plaintext file written by this tool" in capsys.readouterr().err
    assert not out.exists()
    manifest = json.loads((work / "protected" / "plan.parquet.manifest.json").read_text())
    models = Path(manifest["summary"]["models"])
    from uplift.churn import ChurnModel
    from uplift.errors import InputError

    copy = work / "planted_churn"
    copy.mkdir()
    for item in (models / "churn").iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    (copy / "booster.txt").write_bytes(io.read_bytes(models / "churn" / "booster.txt"))
    with pytest.raises(InputError, match="plaintext file written by this tool"):
        ChurnModel.load(copy)


def test_sealed_source_tables_are_read_without_allow_plaintext(runs, small_bank_dir, tmp_path,
                                                               capsys):
    work, _ = runs
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    for table in ("customers", "events", "campaign_log"):
        assert run(["keys", "seal", str(small_bank_dir / f"{table}.parquet"), "--out",
                    str(sealed / f"{table}.parquet")]) == 0
        assert is_encrypted(sealed / f"{table}.parquet")
    out = tmp_path / "f.parquet"
    assert run(["features", "--data", str(small_bank_dir), "--as-of", "2026-01-01",
                "--out", str(out)]) == 2
    assert "allow_plaintext" in capsys.readouterr().err and not out.exists()
    assert run(["--quiet", "features", "--data", str(sealed), "--as-of", "2026-01-01",
                "--out", str(out)]) == 0
    reference = tmp_path / "ref.parquet"
    assert run(["--quiet", "--allow-plaintext", "features", "--data", str(small_bank_dir),
                "--as-of", "2026-01-01", "--out", str(reference)]) == 0
    pd.testing.assert_frame_equal(io.read_table(out), io.read_table(reference))


def test_call_list_of_a_pseudonymised_plan_comes_from_the_export(runs, small_bank_dir):
    work, _ = runs
    assert not (work / "protected" / "contacts.csv").exists()   # no raw ids written by plan
    listed = work / "export" / "contacts.csv"
    assert run(["--allow-plaintext", "export", "--plan", str(work / "protected" /
                                                             "plan.parquet"),
                "--data", str(small_bank_dir), "--out", str(listed)]) == 0
    calls = pd.read_csv(listed, dtype={"customer_id": str})
    plain = pd.read_csv(work / "plain" / "contacts.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(calls, plain)                  # same list, raw ids
    held = set(pd.read_parquet(work / "plain" / "plan.parquet").query("holdout == 1")
               ["customer_id"])
    assert held and not held & set(calls["customer_id"])


def test_export_lists_a_plan_with_raw_ids_without_a_key(runs, tmp_path, monkeypatch):
    work, _ = runs
    monkeypatch.delenv("UPLIFT_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.delenv("UPLIFT_MASTER_KEY_FILE", raising=False)   # a plaintext plan, no keys
    assert run(["export", "--plan", str(work / "plain" / "plan.parquet"), "--out",
                str(tmp_path / "calls.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "calls.csv"),
                                  pd.read_csv(work / "plain" / "contacts.csv"))
