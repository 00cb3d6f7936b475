"""Keyed pseudonyms: stable, joinable across types, idempotent, never mixed."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplift.errors import InputError
from uplift.security.pseudonym import is_pseudonym, protect_ids, pseudonymise

KEY, OTHER = b"k" * 32, b"o" * 32


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=50))
def test_same_id_same_pseudonym_whatever_its_type(ids):
    as_int = pseudonymise(pd.Series(ids), KEY)
    as_text = pseudonymise(pd.Series([f" {i} " for i in ids]), KEY)
    as_float = pseudonymise(pd.Series(ids, dtype=float), KEY) if max(ids) < 2**53 else as_int
    assert list(as_int) == list(as_text) == list(as_float)
    assert is_pseudonym(as_int).all()
    assert as_int.nunique() == len(set(ids))
    assert not set(as_int) & set(pseudonymise(pd.Series(ids), OTHER))
    assert not any(str(i) in p for i in ids for p in as_int if len(str(i)) > 6)


def test_protect_is_idempotent_and_off_without_a_key(monkeypatch):
    frame = pd.DataFrame({"customer_id": [5, 6], "x": [1, 2]})
    monkeypatch.delenv("UPLIFT_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("UPLIFT_PSEUDONYM_KEY_FILE", raising=False)
    assert protect_ids(frame) is frame
    once = protect_ids(frame, key=KEY)
    assert frame["customer_id"].tolist() == [5, 6]      # the caller's frame is untouched
    pd.testing.assert_frame_equal(protect_ids(once, key=KEY), once)
    mixed = pd.concat([once, frame], ignore_index=True)
    with pytest.raises(InputError, match="data row 3"):
        protect_ids(mixed, key=KEY, source="scores.csv")


def test_scores_carry_pseudonyms_in_a_custom_id_column(tmp_path, monkeypatch):
    import numpy as np

    from uplift import io
    from uplift.cli import run

    rng = np.random.default_rng(0)
    n = 400
    logins = rng.poisson(6, n)
    table = pd.DataFrame({"client_no": np.arange(n) + 90_000_000, "logins": logins,
                          "balance": rng.lognormal(8, 1, n),
                          "left": (rng.random(n) < 1 / (1 + np.exp(logins - 5))).astype(int)})
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run(["--quiet", "churn", "fit", "--table", str(tmp_path / "t.csv"), "--label", "left",
                "--id", "client_no", "--out", str(tmp_path / "model")]) == 0
    monkeypatch.setenv("UPLIFT_PSEUDONYM_KEY", KEY.hex())
    table.drop(columns=["left"]).to_csv(tmp_path / "new.csv", index=False)
    assert run(["--quiet", "churn", "score", "--model", str(tmp_path / "model"), "--table",
                str(tmp_path / "new.csv"), "--out", str(tmp_path / "scores.csv")]) == 0
    scores = io.read_table(tmp_path / "scores.csv")
    assert is_pseudonym(scores["client_no"]).all()
    assert "90000001" not in (tmp_path / "scores.csv").read_text()
