"""Encryption at rest: round trip, tampering, truncation, wrong key, rotation."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplift import io
from uplift.cli import run
from uplift.security import envelope
from uplift.security.envelope import ProtectionError, decrypt_file, encrypt_to, rewrap
from uplift.security.keys import key_id, new_key

KEY = bytes(range(32))


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=600), chunk=st.integers(1, 200))
def test_round_trip_any_size_and_chunking(tmp_path_factory, data, chunk):
    path = tmp_path_factory.mktemp("enc") / "f.bin"
    encrypt_to(path, data, KEY, chunk_bytes=chunk)
    assert decrypt_file(path, KEY) == data
    assert len(data) < 16 or data not in path.read_bytes()[envelope.HEADER_BYTES:]


def test_every_changed_byte_and_every_truncation_is_refused(tmp_path):
    path = tmp_path / "f.bin"
    encrypt_to(path, os.urandom(300), KEY, chunk_bytes=64)
    original = path.read_bytes()
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(ProtectionError):
            decrypt_file(path, KEY)
    for length in range(len(original)):
        path.write_bytes(original[:length])
        if length < len(envelope.MAGIC):
            assert not envelope.is_encrypted(path)
            continue
        with pytest.raises(ProtectionError):
            decrypt_file(path, KEY)
    path.write_bytes(original + b"\0")
    with pytest.raises(ProtectionError, match="truncated or was tampered"):
        decrypt_file(path, KEY)


def test_wrong_or_missing_key_names_the_key_ids(tmp_path):
    path = tmp_path / "f.bin"
    encrypt_to(path, b"secret", KEY)
    other = new_key()
    with pytest.raises(ProtectionError, match=key_id(KEY)):
        decrypt_file(path, other)
    with pytest.raises(ProtectionError, match="UPLIFT_MASTER_KEY_FILE"):
        decrypt_file(path, None)


def test_rotation_rewraps_the_data_key_without_touching_the_data(tmp_path):
    path = tmp_path / "f.bin"
    encrypt_to(path, os.urandom(5000), KEY, chunk_bytes=1024)
    before = path.read_bytes()
    plain = decrypt_file(path, KEY)
    new = new_key()
    assert rewrap(path, KEY, new)
    after = path.read_bytes()
    assert after[envelope.HEADER_BYTES:] == before[envelope.HEADER_BYTES:]
    assert after[:envelope.HEADER_BYTES] != before[:envelope.HEADER_BYTES]
    assert decrypt_file(path, new) == plain
    with pytest.raises(ProtectionError):
        decrypt_file(path, KEY)
    assert not rewrap(path, KEY, new)      # rerun after an interruption: nothing to do


def frame() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [10000001, 10000002, 10000003],
                         "offer": ["rate_coupon", "none", "fee_waiver"],
                         "cost": [4.0, 0.0, 24.0]})


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.csv.gz"])
def test_tables_are_encrypted_and_read_back_transparently(tmp_path, monkeypatch, name):
    monkeypatch.setenv("UPLIFT_MASTER_KEY", KEY.hex())
    path = io.write_table(frame(), tmp_path / name)
    assert envelope.is_encrypted(path)
    with pytest.raises(Exception):  # noqa: B017 - any reader but ours must fail
        pd.read_parquet(path) if name.endswith("parquet") else pd.read_csv(path)
    back = io.read_table(path)
    expected = frame() if name.endswith("parquet") else frame().astype({"customer_id": str})
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)


def test_key_rotation_from_the_cli(tmp_path, monkeypatch):
    assert run(["keys", "new", "--out", str(tmp_path / "old.key")]) == 0
    assert run(["keys", "new", "--out", str(tmp_path / "new.key")]) == 0
    assert run(["keys", "new", "--out", str(tmp_path / "new.key")]) == 2   # never overwritten
    assert oct((tmp_path / "old.key").stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv("UPLIFT_MASTER_KEY_FILE", str(tmp_path / "old.key"))
    io.write_table(frame(), tmp_path / "data" / "plan.parquet")
    io.write_table(frame(), tmp_path / "data" / "sub" / "scores.csv")
    assert run(["keys", "rotate", str(tmp_path / "data"), "--old-key-file",
                str(tmp_path / "old.key"), "--new-key-file", str(tmp_path / "new.key")]) == 0
    with pytest.raises(ProtectionError, match="wrong key"):
        io.read_table(tmp_path / "data" / "plan.parquet")
    monkeypatch.setenv("UPLIFT_MASTER_KEY_FILE", str(tmp_path / "new.key"))
    pd.testing.assert_frame_equal(io.read_table(tmp_path / "data" / "sub" / "scores.csv"),
                                  frame().astype({"customer_id": str}), check_dtype=False)


def test_cli_reports_a_wrong_key_as_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UPLIFT_MASTER_KEY", KEY.hex())
    table = frame().assign(churned=[0, 1, 0])
    io.write_table(table, tmp_path / "t.parquet")
    monkeypatch.setenv("UPLIFT_MASTER_KEY", new_key().hex())
    code = run(["churn", "fit", "--table", str(tmp_path / "t.parquet"), "--label", "churned",
                "--out", str(tmp_path / "model")])
    err = capsys.readouterr().err
    assert code == 2 and "wrong key" in err and "Traceback" not in err
    assert not (tmp_path / "model").exists()
    monkeypatch.setenv("UPLIFT_MASTER_KEY", "abc")
    assert run(["churn", "fit", "--table", str(tmp_path / "t.parquet"), "--label", "churned",
                "--out", str(tmp_path / "model")]) == 2
    assert "64 hexadecimal characters" in capsys.readouterr().err
