"""One exception family for the whole tool.

Every error a user can cause (bad file, bad column, bad setting) is an :class:`InputError`
(CLI exit code 2); anything else raised on purpose is an :class:`UpliftError` (exit code 1).
Messages are written for a planner: what is wrong, where (file, column, rows), what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence


class UpliftError(Exception):
    """Base class of every error the tool raises on purpose."""

    exit_code: int = 1


class InputError(UpliftError):
    """The user's input (file, column, option, spec) is not acceptable."""

    exit_code = 2


class SchemaError(InputError):
    """A table breaks its data contract. Collects every problem found, not only the first."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) with the data:\n{lines}")


class SpecError(InputError):
    """A campaign spec or config file is invalid."""


class InfeasibleError(InputError):
    """The requested constraints cannot all be satisfied."""


class ModelError(UpliftError):
    """A stored model cannot be used (missing, incompatible version, wrong features)."""

    exit_code = 2
