"""One exception family for the whole tool.

Every error a user can cause (bad file, bad column, bad setting) is an :class:`InputError`;
a stored model that cannot be used is a :class:`ModelError` (a model asked for before it is
fitted: :class:`NotFittedError`); anything else raised on purpose is an :class:`UpliftError`.
The command line maps them to exit codes (:func:`uplift.cli.exit_code`).
Messages are written for a planner: what is wrong, where (file, column, rows), what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence


class UpliftError(Exception):
    """Base class of every error the tool raises on purpose."""


class InputError(UpliftError):
    """The user's input (file, column, option, spec) is not acceptable."""


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


class NotFittedError(ModelError, ValueError, AttributeError):
    """A model was used before ``fit`` (the same contract as scikit-learn's NotFittedError:
    also a ValueError and an AttributeError)."""
