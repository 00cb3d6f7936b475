"""The README's library example runs as written and its plan is consistent."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def library_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Library (Python API)"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_library_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UPLIFT_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(library_example(), "README.md", "exec"), namespace)
    result = namespace["result"]
    summary = result.summary
    assert summary["contacted"] == int((result.plan["holdout"] == 0).sum()) > 0
    assert len(result.call_list) == summary["contacted"]
    assert summary["spend"] <= 20_000 + 1e-6
    contacted = result.plan[result.plan["holdout"] == 0]
    assert set(contacted["offer"]) <= {"fee_waiver", "advisor_visit"}
    assert 0 <= result.certificate["gap"] < 0.01
    assert result.certificate["bound"] >= result.certificate["value"] - 1e-6
    assert f"{summary['contacted']} contacted" in capsys.readouterr().out
    # the same tables and seed again: the cached models give the identical plan
    again = namespace["uplift"].plan(20_000, customers=namespace["bank"].customers,
                                     events=namespace["bank"].events,
                                     campaign_log=namespace["bank"].campaign_log,
                                     campaign=result.spec, seed=0)
    assert again.plan.equals(result.plan)
