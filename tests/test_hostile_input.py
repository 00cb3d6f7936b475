"""Hostile input corpus: every command on every damaged or unusual file.

Each case is a variant of a command's valid input table. Damaged files must end with exit code
2, a message naming the file (and column and row where one applies), no traceback, and no
output file left behind. Readable oddities (a UTF-8 byte-order mark; GBK text with
``--encoding gbk``) must be read correctly, not rejected.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uplift.cli import run

CHINESE = "零售客户"
ROW = 5  # data row (1-based) that carries the damage


# -- valid base tables ------------------------------------------------------------------
def churn_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    logins = rng.poisson(8, n).astype(float)
    balance = rng.lognormal(8, 1, n)
    risk = 1 / (1 + np.exp(0.4 * logins - 2))
    return pd.DataFrame({
        "customer_id": np.arange(1, n + 1) + 50_000_000,
        "as_of": np.where(np.arange(n) < n // 2, "2025-05-01", "2025-06-01"),
        "segment": rng.choice(["retail", "premier"], n),
        "balance": balance.round(2), "logins_30d": logins,
        "churned": (rng.random(n) < risk).astype(int)})


def effects_table(n: int = 900, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "coupon", "waiver"], n)
    x = rng.normal(size=n)
    churn = rng.random(n) < 0.3 - 0.1 * (arm == "coupon") * (x > 0)
    return pd.DataFrame({"customer_id": np.arange(n) + 60_000_000, "arm": arm,
                         "segment": rng.choice(["retail", "premier"], n), "x": x.round(4),
                         "balance": rng.lognormal(8, 1, n).round(2),
                         "propensity": 1 / 3, "churned": churn.astype(int)})


def scores_table(n: int = 300, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"customer_id": np.arange(n) + 70_000_000,
                          "segment": rng.choice(["retail", "premier"], n),
                          "marketing_consent": True})
    for k, offer in enumerate(("coupon", "waiver")):
        table[f"gain_{offer}"] = rng.normal(5 + k, 3, n).round(3)
        table[f"cost_{offer}"] = [2.0, 6.0][k]
    return table


def outcomes_table(n: int = 800, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "coupon"], n, p=[0.2, 0.8])
    return pd.DataFrame({"customer_id": np.arange(n) + 80_000_000, "arm": arm,
                         "segment": rng.choice(["retail", "premier"], n),
                         "retained": (rng.random(n) < 0.8 + 0.05 * (arm == "coupon")).astype(int),
                         "cost": np.where(arm == "coupon", 2.5, 0.0)})


CAMPAIGN = """name: hostile
budget: 400
holdout_fraction: 0.1
offers:
  - {name: coupon, channel: email, cost: {fixed: 2.0}}
  - {name: waiver, channel: app, cost: {fixed: 6.0}}
"""


@dataclass
class Target:
    """One command with the columns its cases damage."""

    name: str
    base: Callable[[Path], pd.DataFrame]
    argv: Callable[[Path, Path], list[str]]          # (input file, work folder) -> argv
    outputs: Callable[[Path], list[Path]]
    numeric: str                                      # a money/number column it needs
    text: str                                         # a text column (for GBK content)
    date: str | None = None                           # a date column it parses
    encoding_option: bool = True
    one_row_ok: bool = False
    nan_ok: bool = False                              # NaN in `numeric` is legitimate data
    folder_table: str | None = None                   # the file is placed in a data folder

    def shown_as(self, path: Path) -> str:
        """The file name the command's messages use for the hostile file."""
        if self.folder_table is None:
            return path.name
        return self.folder_table + ("".join(path.suffixes) or ".csv")


def _bank_frame(bank: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(bank / f"{table}.parquet")


def _folder_with(file: Path, work: Path, bank: Path, table: str) -> Path:
    """A data folder with the hostile file in place of ``table`` and the bank's others."""
    folder = work / "data"
    folder.mkdir(exist_ok=True)
    for other in ("customers", "events", "campaign_log"):
        if other != table:
            shutil.copy(bank / f"{other}.parquet", folder / f"{other}.parquet")
    suffix = "".join(file.suffixes) or ".csv"
    shutil.copy(file, folder / f"{table}{suffix}")
    return folder


def targets(bank: Path, churn_model: Path, effects_model: Path) -> list[Target]:
    out = "out.csv"
    return [
        Target("validate customers", lambda w: _bank_frame(bank, "customers"),
               lambda f, w: ["validate", "--customers", str(f)], lambda w: [],
               numeric="aum", text="segment", date="open_date", one_row_ok=True),
        Target("validate events", lambda w: _bank_frame(bank, "events").head(3000),
               lambda f, w: ["validate", "--events", str(f)], lambda w: [],
               numeric="amount", text="channel", date="ts", one_row_ok=True),
        Target("features (customers)", lambda w: _bank_frame(bank, "customers"),
               lambda f, w: ["features", "--data", str(_folder_with(f, w, bank, "customers")),
                             "--as-of", "2025-05-01", "--out", str(w / out)],
               lambda w: [w / out], numeric="aum", text="segment", date="open_date",
               # one customer against the whole bank's events: the join refuses it
               one_row_ok=False, folder_table="customers"),
        Target("features (events)", lambda w: _bank_frame(bank, "events"),
               lambda f, w: ["features", "--data", str(_folder_with(f, w, bank, "events")),
                             "--as-of", "2025-05-01", "--out", str(w / out)],
               lambda w: [w / out], numeric="amount", text="channel", date="ts",
               folder_table="events"),
        Target("churn fit", lambda w: churn_table(),
               lambda f, w: ["churn", "fit", "--table", str(f), "--label", "churned", "--id",
                             "customer_id", "--time-col", "as_of", "--out", str(w / "model")],
               lambda w: [w / "model"], numeric="churned", text="segment", date="as_of"),
        Target("churn score", lambda w: churn_table().drop(columns=["churned"]),
               lambda f, w: ["churn", "score", "--model", str(churn_model), "--table", str(f),
                             "--out", str(w / out)],
               lambda w: [w / out], numeric="balance", text="segment", one_row_ok=True,
               nan_ok=True),
        Target("effects fit", lambda w: effects_table(),
               lambda f, w: ["effects", "fit", "--table", str(f), "--treatment", "arm",
                             "--control", "control", "--outcome", "churned", "--goal",
                             "decrease", "--id", "customer_id", "--propensity", "propensity",
                             "--learners", "t", "--folds", "2", "--out", str(w / "model")],
               lambda w: [w / "model"], numeric="churned", text="segment"),
        Target("effects predict", lambda w: effects_table().drop(columns=["arm", "churned"]),
               lambda f, w: ["effects", "predict", "--model", str(effects_model), "--table",
                             str(f), "--out", str(w / out)],
               lambda w: [w / out], numeric="balance", text="segment", one_row_ok=True,
               nan_ok=True),
        Target("allocate", lambda w: scores_table(),
               lambda f, w: ["allocate", "--scores", str(f), "--campaign",
                             str(w / "campaign.yaml"), "--out", str(w / out)],
               lambda w: [w / out], numeric="cost_coupon", text="segment",
               encoding_option=False, one_row_ok=True),
        Target("evaluate", lambda w: outcomes_table(),
               lambda f, w: ["evaluate", "--outcomes", str(f), "--arm", "arm", "--control",
                             "control", "--metric", "retained", "--cost", "cost", "--retention",
                             "--report", str(w / "ab.html"), "--json", str(w / "ab.json")],
               lambda w: [w / "ab.html", w / "ab.json"], numeric="retained", text="segment"),
        Target("plan", lambda w: _bank_frame(bank, "customers"),
               lambda f, w: ["plan", "--budget", "1000", "--data",
                             str(_folder_with(f, w, bank, "customers")), "--out",
                             str(w / out), "--report", str(w / "plan.html")],
               lambda w: [w / out, w / "plan.html"], numeric="aum", text="segment",
               date="open_date", encoding_option=False, folder_table="customers"),
    ]


# -- the corpus ---------------------------------------------------------------------------
@dataclass
class Case:
    path: Path
    extra: list[str] = field(default_factory=list)
    ok: bool = False                                  # must succeed (read correctly)
    mentions: tuple[str, ...] = ()                    # the error names these


def _csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> Path:
    frame.to_csv(path, index=False, encoding=encoding)
    return path


def _damage(frame: pd.DataFrame, column: str, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[frame.index[ROW - 1], column] = value
    return frame


def make_case(name: str, target: Target, work: Path) -> Case | None:
    base = target.base(work)
    file = work / "input.csv"
    if name == "truncated parquet":
        base.to_parquet(work / "input.parquet", index=False)
        data = (work / "input.parquet").read_bytes()
        (work / "input.parquet").write_bytes(data[: len(data) * 3 // 5])
        return Case(work / "input.parquet", mentions=("input.parquet",))
    if name == "corrupted parquet":
        base.to_parquet(work / "input.parquet", index=False)
        data = bytearray((work / "input.parquet").read_bytes())
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(64)
        data[-12:-8] = b"\xff\xff\xff\x7f"          # footer length points nowhere
        (work / "input.parquet").write_bytes(bytes(data))
        return Case(work / "input.parquet", mentions=("input.parquet",))
    if name in ("GBK without --encoding", "GBK with --encoding gbk"):
        frame = base.copy()
        frame[target.text] = frame[target.text].astype(str) + CHINESE
        _csv(frame, file, "gbk")
        if name.startswith("GBK with"):
            if not target.encoding_option:
                return None
            return Case(file, ["--encoding", "gbk"], ok=True)
        return Case(file, mentions=("input.csv", "encoding"))
    if name == "UTF-8 with BOM":
        return Case(_csv(base, file, "utf-8-sig"), ok=True)
    if name == "Chinese column names":
        renamed = base.rename(columns={c: f"列{k}" for k, c in enumerate(base.columns)})
        return Case(_csv(renamed, file), mentions=("input.csv",))
    if name == "mixed types in a column":
        return Case(_csv(_damage(base, target.numeric, "abc"), file),
                    mentions=("input.csv", target.numeric, str(ROW)))
    if name == "NaN in a number column":
        return Case(_csv(_damage(base, target.numeric, np.nan), file), ok=target.nan_ok,
                    mentions=("input.csv", target.numeric, str(ROW)))
    if name == "inf in a number column":
        return Case(_csv(_damage(base, target.numeric, np.inf), file),
                    mentions=("input.csv", target.numeric, str(ROW)))
    if name == "gigantic value":
        return Case(_csv(_damage(base, target.numeric, 1e300), file),
                    mentions=("input.csv", target.numeric, str(ROW)))
    if name == "dates in several formats":
        if target.date is None:
            return None
        frame = base.copy()
        frame[target.date] = pd.to_datetime(frame[target.date]).dt.strftime("%Y-%m-%d")
        frame = _damage(frame, target.date, "03/04/2025")
        frame.loc[frame.index[ROW], target.date] = "4 March 2025"
        return Case(_csv(frame, file), mentions=("input.csv", target.date, str(ROW)))
    if name == "future dates":
        if target.date is None:
            return None
        return Case(_csv(_damage(base, target.date, "2099-01-01"), file),
                    mentions=("input.csv", target.date, str(ROW)))
    if name == "empty file":
        file.write_bytes(b"")
        return Case(file, mentions=("input.csv", "empty"))
    if name == "header only":
        return Case(_csv(base.head(0), file), mentions=("input.csv",))
    if name == "one row":
        return Case(_csv(base.head(1), file), ok=target.one_row_ok, mentions=("input.csv",))
    if name == "duplicate headers":
        text = _csv(base, file).read_text(encoding="utf-8").splitlines()
        header = text[0].split(",")
        header[1] = header[0]
        file.write_text("\n".join([",".join(header), *text[1:]]) + "\n", encoding="utf-8")
        return Case(file, mentions=("input.csv", "duplicate", header[0]))
    raise AssertionError(name)


CASES = ["truncated parquet", "corrupted parquet", "GBK without --encoding",
         "GBK with --encoding gbk", "UTF-8 with BOM", "Chinese column names",
         "mixed types in a column", "NaN in a number column", "inf in a number column",
         "gigantic value", "dates in several formats", "future dates", "empty file",
         "header only", "one row", "duplicate headers"]
TARGETS = ["validate customers", "validate events", "features (customers)",
           "features (events)", "churn fit", "churn score", "effects fit", "effects predict",
           "allocate", "evaluate", "plan"]


@pytest.fixture(scope="module")
def fitted(small_bank_dir, tmp_path_factory):
    """Reference models for the scoring commands, fitted once on the valid tables."""
    work = tmp_path_factory.mktemp("hostile_models")
    churn_table().to_csv(work / "churn.csv", index=False)
    effects_table().to_csv(work / "effects.csv", index=False)
    assert run(["--quiet", "churn", "fit", "--table", str(work / "churn.csv"), "--label",
                "churned", "--id", "customer_id", "--time-col", "as_of", "--out",
                str(work / "churn_model")]) == 0
    assert run(["--quiet", "effects", "fit", "--table", str(work / "effects.csv"),
                "--treatment", "arm", "--control", "control", "--outcome", "churned",
                "--goal", "decrease", "--id", "customer_id", "--propensity", "propensity",
                "--learners", "t", "--folds", "2", "--out", str(work / "effects_model")]) == 0
    return {t.name: t for t in targets(small_bank_dir, work / "churn_model",
                                        work / "effects_model")}


def _spy_on_reads(monkeypatch, names: set[str]) -> list[pd.DataFrame]:
    """Every table the command decodes from a file named in ``names``: frames from
    ``io.read_table``, and the UTF-8 copies handed to DuckDB by ``io.utf8_csv``."""
    from uplift import io

    seen: list[pd.DataFrame] = []
    read_table, utf8_csv = io.read_table, io.utf8_csv

    def reading(path, *args, **kwargs):
        frame = read_table(path, *args, **kwargs)
        if Path(path).name in names:
            seen.append(frame)
        return frame

    def converting(path, encoding):
        readable = utf8_csv(path, encoding)
        if Path(path).name in names:
            seen.append(pd.read_csv(readable, encoding="utf-8-sig", dtype=str,
                                    keep_default_na=False))
        return readable

    monkeypatch.setattr(io, "read_table", reading)
    monkeypatch.setattr(io, "utf8_csv", converting)
    return seen


@pytest.mark.parametrize("case_name", CASES)
@pytest.mark.parametrize("target_name", TARGETS)
def test_command_on_hostile_file(fitted, tmp_path, capsys, monkeypatch, target_name,
                                 case_name):
    monkeypatch.setenv("UPLIFT_CACHE", str(tmp_path / "cache"))
    target = fitted[target_name]
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    case = make_case(case_name, target, tmp_path)
    if case is None or (case.ok and target_name == "plan"):
        pytest.skip("not applicable")
    seen = _spy_on_reads(monkeypatch, {case.path.name, target.shown_as(case.path)})
    code = run([*target.argv(case.path, tmp_path), *case.extra])
    captured = capsys.readouterr()
    message = captured.err + captured.out
    assert "Traceback" not in message and "internal error" not in message, message
    if case.ok:
        assert code == 0, message
        # what the command decoded is the source table: same column names (no byte-order
        # mark glued to the first), the same text in the text column (GBK decoded, not mangled)
        source = pd.read_csv(case.path, dtype=str, keep_default_na=False,
                             encoding="gbk" if case_name.startswith("GBK") else "utf-8-sig")
        assert seen, "the command read the file by neither io.read_table nor io.utf8_csv"
        for frame in seen:
            assert list(frame.columns) == list(source.columns)
            decoded = frame[target.text].astype(str).tolist()
            assert decoded == source[target.text].tolist()
            if case_name.startswith("GBK"):
                assert all(text.endswith(CHINESE) for text in decoded)
        return
    assert code == 2, message
    for word in case.mentions:
        word = target.shown_as(case.path) if word == case.path.name else word
        assert word in message, (word, message)
    for output in target.outputs(tmp_path):
        assert not output.exists(), output
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith((".part", ".staging"))]
    assert not leftovers


def test_campaign_yaml_hostile_cases(tmp_path, capsys):
    scores_table().to_csv(tmp_path / "scores.csv", index=False)
    cases = {
        "unknown key": CAMPAIGN + "budgett: 5\n",
        "wrong type": CAMPAIGN.replace("budget: 400", "budget: lots"),
        "wrong nested type": CAMPAIGN.replace("fixed: 2.0", "fixed: [1, 2]"),
        "not YAML": "name: [unclosed\n  offers: {",
        "empty": "",
        "binary": "\x00\x01\x02",
    }
    for name, text in cases.items():
        spec = tmp_path / f"{name.replace(' ', '_')}.yaml"
        spec.write_text(text, encoding="utf-8")
        for argv in (["allocate", "--scores", str(tmp_path / "scores.csv"), "--campaign",
                      str(spec), "--out", str(tmp_path / "plan.csv")],
                     ["validate", "--campaign", str(spec)],
                     ["plan", "--budget", "100", "--campaign", str(spec), "--data",
                      str(tmp_path / "nowhere"), "--out", str(tmp_path / "plan.csv")]):
            code = run(argv)
            err = capsys.readouterr().err
            assert code == 2 and spec.name in err and "Traceback" not in err, (name, err)
            assert not (tmp_path / "plan.csv").exists()
