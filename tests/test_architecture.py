"""The layering of ARCHITECTURE.md, checked on every import in the package, those inside
functions included: a forbidden import fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "uplift"

SHELLS = ("uplift.cli", "uplift.commands", "uplift.service", "uplift.console")
ORCHESTRATION = ("uplift.pipeline", "uplift.planner", "uplift.tasks", "uplift.validation",
                 "uplift.security.export")
# (importer, modules it must never import, why)
CONTRACTS: list[tuple[str, tuple[str, ...], str]] = [
    ("uplift.errors", ("uplift.",), "the ground floor imports nothing of the project"),
    ("uplift.files", ("uplift.",), "the ground floor imports nothing of the project"),
    ("uplift.valuation", ("uplift.",), "the money arithmetic imports nothing of the project"),
    ("uplift.ids", ("uplift.io",) + ORCHESTRATION + SHELLS, "ids are a contract, below io"),
    ("uplift.security.keys", ("uplift.io", "uplift.schema") + ORCHESTRATION + SHELLS,
     "security sits below io"),
    ("uplift.security.envelope", ("uplift.io",) + ORCHESTRATION + SHELLS,
     "security sits below io"),
    ("uplift.security.pseudonym", ("uplift.io",) + ORCHESTRATION + SHELLS,
     "security sits below io"),
    ("uplift.security.audit", ("uplift.io",) + ORCHESTRATION + SHELLS,
     "security sits below io"),
    ("uplift.allocate", ("uplift.io", "uplift.features", "uplift.churn", "uplift.effects",
                         "uplift.evaluate", "uplift.simulate", "uplift.report")
     + ORCHESTRATION + SHELLS,
     "the allocator works on loaded tables and a parsed spec: no file reads"),
    ("uplift.features", ("uplift.churn", "uplift.effects", "uplift.allocate",
                         "uplift.evaluate", "uplift.report") + ORCHESTRATION[:3] + SHELLS,
     "features sit below the models"),
    ("uplift.churn", ("uplift.effects", "uplift.allocate", "uplift.evaluate")
     + ORCHESTRATION + SHELLS, "the churn model knows nothing of offers"),
    ("uplift.effects", ("uplift.churn", "uplift.allocate", "uplift.evaluate")
     + ORCHESTRATION + SHELLS, "offer effects know nothing of churn models or plans"),
    ("uplift.evaluate", ORCHESTRATION + SHELLS, "evaluation works on loaded tables"),
    ("uplift.report", ORCHESTRATION + SHELLS, "reports render results they are given"),
    ("uplift.simulate", ORCHESTRATION + SHELLS, "the simulator is a data source"),
    ("uplift.io", ORCHESTRATION + SHELLS, "io is below every workflow"),
    ("uplift.schema", ORCHESTRATION + SHELLS, "contracts are below every workflow"),
    ("uplift.campaign", ("uplift.io",) + ORCHESTRATION + SHELLS,
     "a spec is parsed, its files are read by the workflows"),
    ("uplift.pipeline", SHELLS, "the library never imports its shells"),
    ("uplift.planner", SHELLS, "the library never imports its shells"),
    ("uplift.tasks", SHELLS, "the library never imports its shells"),
    ("uplift.validation", SHELLS, "the library never imports its shells"),
]
# effects use the pure estimators of evaluate.ope (no project imports) for paired intervals
ALLOWED = {("uplift.effects.netvalue", "uplift.evaluate.ope")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, is_package: bool) -> list[tuple[str, str | None, int]]:
    """Every import in ``source`` (module-level and inside functions): (module, imported
    name or None, line)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(base, alias.name, node.lineno) for alias in node.names]
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix.rstrip(".") + ".") or (
        prefix.endswith(".") and module.startswith(prefix))


def violations(name: str, found: list[tuple[str, str | None, int]]) -> list[str]:
    """Imports of ``name`` that break a contract or reach for another module's private
    name."""
    problems = []
    for imported, member, line in found:
        target = f"{imported}.{member}" if member else imported
        if not imported.startswith("uplift"):
            continue
        for importer, forbidden, why in CONTRACTS:
            if not within(name, importer) or (name, imported) in ALLOWED:
                continue
            if within(imported, importer):          # inside its own package
                continue
            if any(within(imported, f) or within(target, f) for f in forbidden):
                problems.append(f"{name}:{line} imports {target} ({why})")
        if member and member.startswith("_") and imported != name and not member.startswith(
                "__"):
            problems.append(f"{name}:{line} imports the private name {target}")
    return problems


def all_modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for p in sorted(PACKAGE.rglob("*.py"))]


def test_every_import_keeps_the_layering() -> None:
    problems = []
    for name, path in all_modules():
        problems += violations(name, imports_of(path.read_text(encoding="utf-8"), name,
                                                path.name == "__init__.py"))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "source"), [
    ("uplift.allocate.plan", "def f():\n    from uplift import io\n"),
    ("uplift.allocate.plan", "from uplift.io import read_table\n"),
    ("uplift.security.audit", "def f():\n    from uplift.io import write_json\n"),
    ("uplift.effects.model", "from uplift.schema import _rows\n"),
    ("uplift.planner", "import uplift.cli\n"),
    ("uplift.files", "from uplift.errors import InputError\n"),
])
def test_a_forbidden_import_is_caught(name: str, source: str) -> None:
    assert violations(name, imports_of(source, name, False))


def test_the_shells_may_import_the_library() -> None:
    source = "from uplift.planner import plan\nfrom uplift.tasks.data import open_inputs\n"
    assert not violations("uplift.commands.planning", imports_of(source, "uplift.commands."
                                                                 "planning", False))
