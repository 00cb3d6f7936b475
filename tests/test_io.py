"""Reading by extension, atomic writes, input protection, manifests."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from uplift import io
from uplift.errors import InputError


def test_csv_with_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("\ufeffcustomer_id,segment\n1,silent\n".encode())
    assert list(io.read_table(path).columns) == ["customer_id", "segment"]


def test_gbk_csv_needs_its_encoding_named(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes("客户,segment\n1,沉默\n".encode("gbk"))
    with pytest.raises(InputError, match="encoding gbk"):
        io.read_table(path)
    frame = io.read_table(path, encoding="gbk")
    assert frame.columns[0] == "客户" and frame.iloc[0, 1] == "沉默"


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"a,b\n", "no data rows"),
    (b"a,a\n1,2\n", "duplicate column"),
])
def test_bad_csv_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        io.read_table(path)


def test_truncated_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(1000)}).to_parquet(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError, match="not a readable Parquet file"):
        io.read_table(path)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unsupported file type"):
        io.read_table(tmp_path / "x.xlsx")
    with pytest.raises(InputError, match="not found"):
        io.read_table(tmp_path / "x.csv")


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_staged_directory_adds_nothing_on_failure(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with io.staged_directory(out) as stage:
            (stage / "a.parquet").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_output_may_not_overwrite_an_input(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    with pytest.raises(InputError, match="overwrite the input"):
        io.ensure_not_input([tmp_path / "in.csv"], [src])
    io.ensure_not_input([tmp_path / "out.csv"], [src])


def test_manifest_records_inputs_versions_and_rows(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    manifest = io.build_manifest("score", {"out": tmp_path / "o.csv"}, seed=3, inputs=[src],
                                 outputs={"o.csv": 1})
    io.write_json(manifest, io.manifest_path_for(tmp_path / "o.csv"))
    stored = json.loads((tmp_path / "o.csv.manifest.json").read_text())
    assert stored["seed"] == 3 and stored["outputs"] == {"o.csv": 1}
    assert len(stored["inputs"][str(src)]) == 64
    assert "pandas" in stored["versions"]
